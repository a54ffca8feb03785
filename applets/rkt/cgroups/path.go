package cgroups

import (
	"fmt"
	"path"
	"strings"
)

// ParsePath checks an OCI cgroupsPath and returns it cleaned. An absolute
// path is taken from the root of each hierarchy; a relative one from the
// caller's own cgroup in each hierarchy (runc's cgroupfs semantics). It
// rejects the empty path, the hierarchy root itself, "." and ".."
// components, control characters, and systemd's "slice:prefix:name" form.
func ParsePath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("cgroups path is empty")
	}
	if strings.Contains(p, ":") {
		return "", fmt.Errorf("cgroups path %q: the systemd form slice:prefix:name is not supported (corebox manages cgroupfs directly); give a path like /corebox/NAME", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("cgroups path %q: contains a control character", p)
		}
	}
	for _, comp := range strings.Split(p, "/") {
		if comp == ".." || comp == "." {
			return "", fmt.Errorf("cgroups path %q: %q components are not allowed", p, comp)
		}
	}
	c := path.Clean(p)
	if c == "/" {
		return "", fmt.Errorf("cgroups path %q: is the hierarchy root", p)
	}
	return c, nil
}

// resolve joins a parsed cgroups path onto the caller's cgroup (own) for a
// relative path; mountRoot is the cgroup the hierarchy's mount shows. It
// returns the cgroup path relative to the mount point.
func resolve(p, own, mountRoot string) (string, error) {
	abs := p
	if !path.IsAbs(p) {
		if own == "" {
			own = "/"
		}
		abs = path.Join(own, p)
	}
	if mountRoot != "/" && mountRoot != "" {
		if abs != mountRoot && !strings.HasPrefix(abs, mountRoot+"/") {
			// The mount shows a sub-tree (a cgroup namespace or a bind of
			// one): the own path is already relative to it.
			return abs, nil
		}
		abs = "/" + strings.TrimPrefix(strings.TrimPrefix(abs, mountRoot), "/")
	}
	return abs, nil
}
