package rkt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
	"time"
)

// manifestVersion is the version of the pod manifest format written here.
const manifestVersion = 1

// PodManifest is everything a pod is, resolved at prepare time: the images
// by digest, each app's command, environment and isolators, the volumes and
// the pod options. It is the pod directory's "pod" file, what cat-manifest
// prints, and all run-prepared needs.
type PodManifest struct {
	Version     int           `json:"version"`
	UUID        string        `json:"uuid"`
	Created     time.Time     `json:"created"`
	Apps        []AppManifest `json:"apps"`
	Volumes     []Volume      `json:"volumes,omitempty"`
	Net         string        `json:"net"` // default, host or none
	Hostname    string        `json:"hostname"`
	DNS         []string      `json:"dns,omitempty"` // addresses, or "host" / "none"
	Ports       []PortMapping `json:"ports,omitempty"`
	Interactive bool          `json:"interactive,omitempty"`
}

// ImageRef names an app's image as the user gave it and as the store has it.
type ImageRef struct {
	Name string `json:"name"` // as given on the command line
	ID   string `json:"id"`   // the store's image ID (a digest)
}

// AppManifest is one app of a pod.
type AppManifest struct {
	Name              string           `json:"name"`
	Image             ImageRef         `json:"image"`
	Exec              []string         `json:"exec"` // argv
	Env               []EnvVar         `json:"environment,omitempty"`
	WorkingDir        string           `json:"workingDirectory,omitempty"`
	User              string           `json:"user"`  // a number or a name in the image's /etc/passwd
	Group             string           `json:"group"` // a number or a name in the image's /etc/group
	SupplementaryGIDs []uint32         `json:"supplementaryGIDs,omitempty"`
	Memory            int64            `json:"memory,omitempty"`   // bytes; 0: no limit
	CPUMilli          int64            `json:"cpuMilli,omitempty"` // millicores; 0: no limit
	Pids              int64            `json:"pids,omitempty"`     // most tasks; 0: no limit
	Capabilities      []string         `json:"capabilities"`       // the app's bounding, permitted and effective set
	Seccomp           *SeccompOverride `json:"seccomp,omitempty"`  // nil: the default profile
	NoSeccomp         bool             `json:"noSeccomp,omitempty"`
	ReadOnlyRootfs    bool             `json:"readOnlyRootfs,omitempty"`
	Mounts            []Mount          `json:"mounts,omitempty"`
}

// decodeManifest reads and validates a pod manifest; unknown fields are
// errors, so that a manifest from a newer rkt is not half-understood.
func decodeManifest(r io.Reader) (*PodManifest, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var m PodManifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding pod manifest: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decoding pod manifest: data after the manifest")
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("pod manifest: %w", err)
	}
	return &m, nil
}

// encode returns the manifest as indented JSON.
func (m *PodManifest) encode() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "\t")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encoding pod manifest: %w", err)
	}
	return b.Bytes(), nil
}

// validate checks what decoding cannot: what run relies on.
func (m *PodManifest) validate() error {
	if m.Version != manifestVersion {
		return fmt.Errorf("version %d: this rkt reads version %d", m.Version, manifestVersion)
	}
	if !isUUID(m.UUID) {
		return fmt.Errorf("uuid %q is not a UUID", m.UUID)
	}
	if len(m.Apps) == 0 {
		return fmt.Errorf("no apps")
	}
	if _, err := parseNet(m.Net); err != nil || m.Net == "" {
		return fmt.Errorf("net %q: want default, host or none", m.Net)
	}
	if err := checkHostname(m.Hostname); err != nil {
		return err
	}
	if err := checkPorts(m.Net, m.Ports); err != nil {
		return err
	}
	for _, d := range m.DNS {
		if _, err := parseDNS(d); err != nil {
			return err
		}
	}
	if m.Interactive && len(m.Apps) != 1 {
		return fmt.Errorf("interactive pods have exactly one app, not %d", len(m.Apps))
	}
	volumes := map[string]bool{}
	for _, v := range m.Volumes {
		if err := checkName("volume", v.Name); err != nil {
			return err
		}
		if volumes[v.Name] {
			return fmt.Errorf("volume %q defined twice", v.Name)
		}
		volumes[v.Name] = true
		switch {
		case v.Kind == "host" && (v.Source == "" || !path.IsAbs(v.Source)):
			return fmt.Errorf("volume %q: host source %q is not an absolute path", v.Name, v.Source)
		case v.Kind != "host" && v.Kind != "empty":
			return fmt.Errorf("volume %q: kind %q: want host or empty", v.Name, v.Kind)
		case v.Mode > 0o7777:
			return fmt.Errorf("volume %q: mode %o", v.Name, v.Mode)
		}
	}
	names := map[string]bool{}
	for _, a := range m.Apps {
		if err := checkName("app", a.Name); err != nil {
			return err
		}
		if names[a.Name] {
			return fmt.Errorf("app name %q used twice (use --name)", a.Name)
		}
		names[a.Name] = true
		if err := a.validate(volumes); err != nil {
			return fmt.Errorf("app %q: %w", a.Name, err)
		}
	}
	return nil
}

func (a *AppManifest) validate(volumes map[string]bool) error {
	if a.Image.ID == "" {
		return fmt.Errorf("no image ID")
	}
	if len(a.Exec) == 0 || a.Exec[0] == "" {
		return fmt.Errorf("no command: the image has no entrypoint or cmd (use --exec)")
	}
	if a.WorkingDir != "" && !path.IsAbs(a.WorkingDir) {
		return fmt.Errorf("working directory %q is not absolute", a.WorkingDir)
	}
	if err := checkUserGroup("user", a.User); err != nil {
		return err
	}
	if err := checkUserGroup("group", a.Group); err != nil {
		return err
	}
	if a.Memory < 0 || a.CPUMilli < 0 || a.Pids < 0 {
		return fmt.Errorf("negative limit")
	}
	for _, c := range a.Capabilities {
		if !slices.Contains(capabilityNames, c) {
			return fmt.Errorf("unknown capability %q", c)
		}
	}
	if s := a.Seccomp; s != nil {
		if s.Mode != "retain" && s.Mode != "remove" {
			return fmt.Errorf("seccomp mode %q", s.Mode)
		}
		if _, ok := errnoNumbers[s.Errno]; s.Errno != "" && !ok {
			return fmt.Errorf("seccomp errno %q", s.Errno)
		}
		for _, c := range s.Syscalls {
			if !syscallName().MatchString(c) {
				return fmt.Errorf("seccomp: %q is not a syscall name", c)
			}
		}
	}
	for _, e := range a.Env {
		if _, err := parseEnv("environment", e.String()); err != nil {
			return err
		}
	}
	targets := map[string]bool{}
	for _, mt := range a.Mounts {
		if !volumes[mt.Volume] {
			return fmt.Errorf("mount of undefined volume %q", mt.Volume)
		}
		if !path.IsAbs(mt.Target) || path.Clean(mt.Target) != mt.Target || mt.Target == "/" {
			return fmt.Errorf("mount target %q: want a clean absolute path below /", mt.Target)
		}
		if targets[mt.Target] {
			return fmt.Errorf("two mounts on %s", mt.Target)
		}
		targets[mt.Target] = true
	}
	return nil
}
