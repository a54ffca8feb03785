package rkt

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// podRuntime is what happened to a pod once it ran: written by the rkt
// process that runs it (and only while it holds the pod's lock), read by
// list, status, stop, enter and gc. It is the pod directory's
// "runtime.json", replaced atomically.
type podRuntime struct {
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished,omitzero"` // when the last app exited
	Pid      int          `json:"pid"`               // the pod's namespace owner while running; 0 after
	RktPid   int          `json:"rktPid"`            // the rkt process running the pod
	Network  *podNetwork  `json:"network,omitempty"` // --net=default only
	Apps     []appRuntime `json:"apps"`
	Holder   string       `json:"holder,omitempty"` // container ID of the namespace holder (multi-app pods)
}

// podNetwork is the pod's attachment to the default network.
type podNetwork struct {
	Name     string        `json:"name"`
	IfName   string        `json:"ifName"`
	IP       string        `json:"ip"`
	Gateway  string        `json:"gateway"`
	Prefix   string        `json:"prefix"`
	HostVeth string        `json:"hostVeth"`
	Ports    []PortMapping `json:"ports,omitempty"` // the host ports forwarded to the pod (--port)
}

// appRuntime is one app's container and its outcome.
type appRuntime struct {
	Name        string    `json:"name"`
	ContainerID string    `json:"containerID"`
	Pid         int       `json:"pid,omitempty"`
	Started     time.Time `json:"started,omitzero"`
	Exited      bool      `json:"exited"`
	Finished    time.Time `json:"finished,omitzero"`
	ExitCode    int       `json:"exitCode"`         // the status rkt exits with: 128+N when killed by signal N
	Signal      string    `json:"signal,omitempty"` // the signal that killed it
	OOMKilled   bool      `json:"oomKilled,omitempty"`
}

const runtimeFile = "runtime.json"

// writeRuntime replaces the pod's runtime record.
func writeRuntime(podDir string, r *podRuntime) error {
	b, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return fmt.Errorf("encoding pod runtime: %w", err)
	}
	tmp := filepath.Join(podDir, runtimeFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("writing pod runtime: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(podDir, runtimeFile)); err != nil {
		return fmt.Errorf("writing pod runtime: %w", err)
	}
	return nil
}

// readRuntime reads the runtime record; a pod that never ran has none
// (nil, nil).
func readRuntime(podDir string) (*podRuntime, error) {
	b, err := os.ReadFile(filepath.Join(podDir, runtimeFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading pod runtime: %w", err)
	}
	var r podRuntime
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", filepath.Join(podDir, runtimeFile), err)
	}
	return &r, nil
}

const manifestFile = "pod"

// readManifest reads the pod's manifest ("pod" in its directory).
func readManifest(podDir string) (*PodManifest, error) {
	f, err := os.Open(filepath.Join(podDir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("reading pod manifest: %w", err)
	}
	defer f.Close()
	m, err := decodeManifest(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return m, nil
}

// writeManifest writes the pod's manifest.
func writeManifest(podDir string, m *PodManifest) error {
	b, err := m.encode()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(podDir, manifestFile), b, 0o640); err != nil {
		return fmt.Errorf("writing pod manifest: %w", err)
	}
	return nil
}
