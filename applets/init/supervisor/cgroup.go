package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupKind is how units are grouped so that stopping one kills its whole
// process tree.
type cgroupKind int

const (
	// noCgroups: units run in their own session and process group; stopping
	// one signals the group (processes that leave it escape: tests only).
	noCgroups cgroupKind = iota
	// cgroupV2: a unified-hierarchy directory per unit; children are cloned
	// straight into it (CLONE_INTO_CGROUP) and killed with cgroup.kill.
	cgroupV2
	// cgroupV1: a directory per unit in one v1 hierarchy (the pids
	// controller's on hybrid hosts); the child is moved in right after fork.
	cgroupV1
)

func (k cgroupKind) String() string {
	return [...]string{"none", "v2", "v1"}[k]
}

// detectCgroups says which kind of hierarchy dir lives on.
func detectCgroups(dir string) (cgroupKind, error) {
	if dir == "" {
		return noCgroups, nil
	}
	// dir may not exist yet: look at the nearest existing ancestor.
	p := dir
	for {
		var st unix.Statfs_t
		err := unix.Statfs(p, &st)
		if err == nil {
			switch st.Type {
			case unix.CGROUP2_SUPER_MAGIC:
				return cgroupV2, nil
			case unix.CGROUP_SUPER_MAGIC:
				return cgroupV1, nil
			}
			return noCgroups, fmt.Errorf("cgroup directory %s: %s is not on a cgroup file system", dir, p)
		}
		if !errors.Is(err, os.ErrNotExist) || p == "/" {
			return noCgroups, fmt.Errorf("cgroup directory %s: %w", dir, err)
		}
		p = filepath.Dir(p)
	}
}

// cgroup is one unit's group. Without cgroup v2, the process groups of the
// unit's spawned processes are signalled too: they cover what a v1 group can
// miss (a child that forks before it is moved in) and are all there is
// without cgroups.
type cgroup struct {
	kind   cgroupKind
	path   string // "" for noCgroups
	groups []int  // process group ids of the unit's spawned processes (owned by its lifecycle goroutine)
}

func newCgroup(kind cgroupKind, root, unit string) (*cgroup, error) {
	if kind == noCgroups {
		return &cgroup{kind: kind}, nil
	}
	p := filepath.Join(root, unit)
	if err := os.MkdirAll(p, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup for %s: %w", unit, err)
	}
	return &cgroup{kind: kind, path: p}, nil
}

// openFD returns a directory fd for CLONE_INTO_CGROUP (v2 only), or -1.
func (c *cgroup) openFD() (int, error) {
	if c.kind != cgroupV2 {
		return -1, nil
	}
	fd, err := unix.Open(c.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening cgroup %s: %w", c.path, err)
	}
	return fd, nil
}

// adopt moves pid into a v1 group; v2 children are born inside it.
func (c *cgroup) adopt(pid int) error {
	if c.kind != cgroupV1 {
		return nil
	}
	return os.WriteFile(filepath.Join(c.path, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0)
}

// pids lists the processes in the group (for noCgroups, the group leader's
// process group is not listable: it returns nil).
func (c *cgroup) pids() []int {
	if c.kind == noCgroups {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(c.path, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range bytes.Fields(b) {
		if n, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// signal sends sig to every process of the group.
func (c *cgroup) signal(sig syscall.Signal) {
	if c.kind != cgroupV2 {
		for _, pg := range c.groups {
			syscall.Kill(-pg, sig)
		}
	}
	for _, pid := range c.pids() {
		syscall.Kill(pid, sig)
	}
}

// kill SIGKILLs every process of the group until it is empty or the
// deadline passes; it reports whether the group is empty.
func (c *cgroup) kill(deadline time.Time) bool {
	if c.kind != cgroupV2 {
		for _, pg := range c.groups {
			syscall.Kill(-pg, syscall.SIGKILL)
		}
	}
	if c.kind == noCgroups {
		return true
	}
	if c.kind == cgroupV2 {
		os.WriteFile(filepath.Join(c.path, "cgroup.kill"), []byte("1"), 0)
	}
	for {
		pids := c.pids()
		if len(pids) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// remove deletes the group's directory (it must be empty).
func (c *cgroup) remove() error {
	if c.kind == noCgroups {
		return nil
	}
	var err error
	for i := 0; i < 50; i++ { // the kernel may take a moment to release exited tasks
		if err = unix.Rmdir(c.path); err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", c.path, err)
}

// enableControllers turns on the controllers available in dir's parent for
// dir's children (cgroup v2), best effort: a controller the kernel lacks is
// skipped.
func enableControllers(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return
	}
	for _, c := range bytes.Fields(b) {
		os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+"+string(c)), 0)
	}
}

func unixSignalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return strconv.Itoa(int(sig))
}
