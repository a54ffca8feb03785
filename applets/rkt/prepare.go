package rkt

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/corebox/corebox/applets/rkt/image"
)

// defaultPath is the PATH an app gets when its image sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// isFetchRef says whether an image argument names a place to fetch from
// (rather than an image already in the store).
func isFetchRef(s string) bool {
	for _, p := range []string{"docker://", "oci-layout:", "oci-archive:", "docker-archive:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// resolveImage finds an image in the store, fetching it first when the
// argument is a fetch reference (rkt's default pull policy "new": fetch
// what the store lacks; a fetch reference is always fetched, which only
// refreshes an image already there).
func (c *cli) resolveImage(store *image.Store, ref string) (image.Image, error) {
	if isFetchRef(ref) {
		img, err := store.Fetch(c.ctx, ref, image.FetchOptions{Insecure: c.insecure["http"], Progress: c.env.Stderr})
		if err != nil {
			return image.Image{}, fmt.Errorf("fetching %s: %w", ref, err)
		}
		return img, nil
	}
	img, err := store.Resolve(ref)
	if err != nil {
		return image.Image{}, fmt.Errorf("image %s: %w (fetch it first, or give docker://…, oci-layout:…, oci-archive:… or docker-archive:…)", ref, err)
	}
	return img, nil
}

var notNameChars = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[^a-z0-9]+`) })

// appNameFor derives an app name from an image reference as rkt does from
// an image name: its last path element without tag or digest.
func appNameFor(ref string) string {
	for _, p := range []string{"docker://", "oci-layout:", "oci-archive:", "docker-archive:"} {
		ref = strings.TrimPrefix(ref, p)
	}
	ref, _, _ = strings.Cut(ref, "@")
	base := path.Base(ref)
	if i := strings.IndexByte(base, ':'); i > 0 {
		base = base[:i]
	}
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".tar"), ".oci")
	n := strings.Trim(notNameChars().ReplaceAllString(strings.ToLower(base), "-"), "-")
	if n == "" {
		n = "app"
	}
	return n
}

// buildManifest resolves a run request into a pod manifest: images by ID,
// commands, environments, capabilities and mounts.
func (c *cli) buildManifest(store *image.Store, req *runRequest, uuid string) (*PodManifest, error) {
	m := &PodManifest{
		Version:     manifestVersion,
		UUID:        uuid,
		Created:     time.Now(),
		Volumes:     req.Volumes,
		Net:         req.Net,
		Hostname:    req.Hostname,
		DNS:         req.DNS,
		Ports:       req.Ports,
		Interactive: req.Interactive,
	}
	if m.Hostname == "" {
		m.Hostname = "rkt-" + uuid
	}
	for _, v := range m.Volumes {
		if v.Kind != "host" {
			continue
		}
		if _, err := os.Stat(v.Source); err != nil {
			return nil, fmt.Errorf("volume %s: source %s: %w", v.Name, v.Source, errors.Unwrap(err))
		}
	}
	for _, r := range req.Apps {
		img, err := c.resolveImage(store, r.Image)
		if err != nil {
			return nil, err
		}
		cfg, err := store.Config(img.ID)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", r.Image, err)
		}
		a := AppManifest{Name: r.Name, Image: ImageRef{Name: r.Image, ID: img.ID}}
		if len(img.Names) > 0 && !isFetchRef(r.Image) {
			a.Image.Name = img.Names[0]
		}
		if a.Name == "" {
			// From the image's name: an image given by ID is named as
			// the store knows it.
			a.Name = appNameFor(a.Image.Name)
		}
		// The command: --exec replaces the entrypoint and the image's
		// cmd; arguments after "--" replace the cmd.
		entry, cmd := cfg.Config.Entrypoint, cfg.Config.Cmd
		if r.Exec != "" {
			entry, cmd = []string{r.Exec}, nil
		}
		if r.HasArgs {
			cmd = r.Args
		}
		a.Exec = slices.Concat(entry, cmd)
		// The environment: rkt's own (--inherit-env), the image's,
		// --set-env, --environment; later ones win.
		var env []EnvVar
		if req.InheritEnv {
			for _, kv := range c.env.Environ {
				if e, err := parseEnv("environment", kv); err == nil {
					env = setEnv(env, e)
				}
			}
		}
		for _, kv := range cfg.Config.Env {
			e, err := parseEnv("image environment", kv)
			if err != nil {
				return nil, fmt.Errorf("image %s: %w", r.Image, err)
			}
			env = setEnv(env, e)
		}
		for _, e := range slices.Concat(req.SetEnv, r.Environment) {
			env = setEnv(env, e)
		}
		if !slices.ContainsFunc(env, func(e EnvVar) bool { return e.Name == "PATH" }) {
			env = append([]EnvVar{{Name: "PATH", Value: defaultPath}}, env...)
		}
		a.Env = env
		a.WorkingDir = cfg.Config.WorkingDir
		if r.WorkingDir != "" {
			a.WorkingDir = r.WorkingDir
		}
		a.User, a.Group = "0", "0"
		if u := cfg.Config.User; u != "" {
			user, group, hasGroup := strings.Cut(u, ":")
			a.User = user
			if hasGroup {
				a.Group = group
			}
		}
		if r.User != "" {
			a.User = r.User
		}
		if r.Group != "" {
			a.Group = r.Group
		}
		a.SupplementaryGIDs = r.SupplementaryGIDs
		a.Memory, a.CPUMilli, a.Pids = r.Memory, r.CPUMilli, r.Pids
		a.Capabilities = appCapabilities(r, c.insecure["capabilities"])
		a.Seccomp = r.Seccomp
		a.NoSeccomp = c.insecure["seccomp"] && r.Seccomp == nil
		a.ReadOnlyRootfs = r.ReadOnlyRootfs
		a.Mounts = appMounts(req.Mounts, r.Mounts)
		m.Apps = append(m.Apps, a)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// setEnv sets e in env, replacing a variable of the same name in place.
func setEnv(env []EnvVar, e EnvVar) []EnvVar {
	for i := range env {
		if env[i].Name == e.Name {
			env[i].Value = e.Value
			return env
		}
	}
	return append(env, e)
}

// appCapabilities is the app's capability set: rkt's default, or all with
// --insecure-options=capabilities, then --caps-retain or --caps-remove.
func appCapabilities(r appRequest, all bool) []string {
	base := defaultCapabilities
	if all {
		base = capabilityNames
	}
	switch {
	case r.CapsRetain != nil:
		return slices.Clone(r.CapsRetain)
	case r.CapsRemove != nil:
		return slices.DeleteFunc(slices.Clone(base), func(c string) bool { return slices.Contains(r.CapsRemove, c) })
	}
	return slices.Clone(base)
}

// appMounts merges the pod-wide --mount flags with the app's own; an app's
// mount on the same target wins.
func appMounts(pod, app []Mount) []Mount {
	out := slices.Clone(app)
	for _, m := range pod {
		if !slices.ContainsFunc(out, func(x Mount) bool { return x.Target == m.Target }) {
			out = append(out, m)
		}
	}
	return out
}
