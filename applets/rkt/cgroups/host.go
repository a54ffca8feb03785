package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/corebox/corebox/internal/mountinfo"
)

// Kind is the kind of cgroup host.
type Kind int

const (
	// V2: the unified hierarchy is all there is (/sys/fs/cgroup is cgroup2).
	V2 Kind = iota + 1
	// V1: v1 controller hierarchies, possibly with a cgroup2 mount beside
	// them ("hybrid").
	V1
)

func (k Kind) String() string {
	switch k {
	case V2:
		return "v2"
	case V1:
		return "v1"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Mount is one mounted cgroup hierarchy.
type Mount struct {
	// Dir is the mount point, e.g. /sys/fs/cgroup/memory.
	Dir string
	// Root is the cgroup the mount shows at Dir ("/" unless a sub-tree was
	// bind-mounted, as inside some containers).
	Root string
	// Controllers are a v1 hierarchy's controllers ("cpu", "cpuacct",
	// "name=systemd"); empty for the cgroup2 hierarchy.
	Controllers []string
}

// Host is the set of cgroup hierarchies mounted on this machine.
type Host struct {
	Kind Kind
	// Unified is the cgroup2 mount; Unified.Dir is "" when there is none.
	Unified Mount
	// V1 are the v1 hierarchies (none on a V2 host).
	V1 []Mount
}

// DetectHost reads /proc/self/mountinfo.
func DetectHost() (Host, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return Host{}, fmt.Errorf("detecting cgroup hierarchies: %w", err)
	}
	return ParseMountinfo(b)
}

// UnifiedOnly is the host's cgroup2 mount seen as a V2 host, ignoring the
// v1 hierarchies: on a hybrid host it gives the unified hierarchy alone
// (tests use it to exercise v2 code where only the controller-less mount
// exists).
func (h Host) UnifiedOnly() (Host, error) {
	if h.Unified.Dir == "" {
		return Host{}, errors.New("no cgroup2 hierarchy is mounted")
	}
	return Host{Kind: V2, Unified: h.Unified}, nil
}

// v1Controllers lists every controller mounted on the v1 side.
func (h Host) v1Controllers() []string {
	var out []string
	for _, m := range h.V1 {
		out = append(out, m.Controllers...)
	}
	return out
}

// v1Mount returns the hierarchy holding controller, if mounted.
func (h Host) v1Mount(controller string) (Mount, bool) {
	for _, m := range h.V1 {
		if slices.Contains(m.Controllers, controller) {
			return m, true
		}
	}
	return Mount{}, false
}

// ParseMountinfo finds the cgroup hierarchies in the text of a
// /proc/PID/mountinfo. The first mount of each hierarchy wins.
func ParseMountinfo(b []byte) (Host, error) {
	mounts, err := mountinfo.Parse(b)
	if err != nil {
		return Host{}, err
	}
	var h Host
	seen := map[string]bool{}
	for _, mi := range mounts {
		if mi.FSType != "cgroup" && mi.FSType != "cgroup2" {
			continue
		}
		m := Mount{Dir: mi.MountPoint, Root: mi.Root}
		if !filepath.IsAbs(m.Dir) || !filepath.IsAbs(m.Root) {
			return Host{}, fmt.Errorf("mountinfo: %s mount at %q (root %q): not absolute", mi.FSType, m.Dir, m.Root)
		}
		if mi.FSType == "cgroup2" {
			if h.Unified.Dir == "" {
				h.Unified = m
			}
			continue
		}
		if mi.SuperOptions == "" {
			return Host{}, fmt.Errorf("mountinfo: cgroup mount at %q: no super options", m.Dir)
		}
		for _, o := range strings.Split(mi.SuperOptions, ",") {
			switch o {
			case "rw", "ro", "", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods":
				continue
			}
			if strings.HasPrefix(o, "release_agent=") {
				continue
			}
			m.Controllers = append(m.Controllers, o)
		}
		if len(m.Controllers) == 0 {
			continue
		}
		key := strings.Join(m.Controllers, ",")
		if seen[key] {
			continue
		}
		seen[key] = true
		h.V1 = append(h.V1, m)
	}
	switch {
	case len(h.V1) > 0:
		h.Kind = V1
	case h.Unified.Dir != "":
		h.Kind = V2
	default:
		return Host{}, errors.New("no cgroup hierarchy is mounted")
	}
	return h, nil
}

// ProcCgroups is a parsed /proc/PID/cgroup: the process's cgroup per
// hierarchy.
type ProcCgroups struct {
	// Unified is the cgroup2 path ("0::/…"), "" when absent.
	Unified string
	// V1 maps each v1 controller ("memory", "name=systemd") to its path.
	V1 map[string]string
}

// ParseProcCgroup parses the text of a /proc/PID/cgroup.
func ParseProcCgroup(b []byte) (ProcCgroups, error) {
	pc := ProcCgroups{V1: map[string]string{}}
	for n, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		id, rest, ok1 := strings.Cut(line, ":")
		ctrls, path, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || id == "" || !strings.HasPrefix(path, "/") {
			return ProcCgroups{}, fmt.Errorf("/proc/PID/cgroup line %d %q: want ID:CONTROLLERS:/PATH", n+1, line)
		}
		if ctrls == "" {
			if id != "0" {
				return ProcCgroups{}, fmt.Errorf("/proc/PID/cgroup line %d %q: a hierarchy without controllers must be 0", n+1, line)
			}
			pc.Unified = path
			continue
		}
		for _, c := range strings.Split(ctrls, ",") {
			if c == "" {
				return ProcCgroups{}, fmt.Errorf("/proc/PID/cgroup line %d %q: empty controller name", n+1, line)
			}
			pc.V1[c] = path
		}
	}
	return pc, nil
}

func readOwnCgroups() (ProcCgroups, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ProcCgroups{}, fmt.Errorf("reading own cgroups: %w", err)
	}
	return ParseProcCgroup(b)
}
