package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrNoController is wrapped by every error about a controller the host
// cannot provide.
var ErrNoController = errors.New("cgroup controller not available")

// Cgroup is one container's or pod's control group: a directory in the
// unified hierarchy (V2), or one in each v1 hierarchy plus, on a hybrid
// host, one in the cgroup2 hierarchy (V1). Its methods may be called from
// one goroutine at a time.
type Cgroup struct {
	host Host
	// path is what Path returns.
	path string
	// dirs are the directories, one per hierarchy: on V2 just the unified
	// one; on V1 one per v1 hierarchy, in host.V1 order.
	dirs []string
	// unified is the directory in the cgroup2 hierarchy ("" on a V1 host
	// without one); on V2 it is dirs[0].
	unified string
	// created are the directories New made, parents first.
	created []string
	// fd is an O_DIRECTORY descriptor of the unified directory on V2, or -1.
	fd int
}

// New creates the cgroup at path (OCI cgroupsPath semantics, see ParsePath)
// on this host and applies r (nil: no limits). On failure it leaves nothing
// behind: directories it made are removed and controllers it enabled are
// disabled again.
func New(path string, r *specs.LinuxResources) (*Cgroup, error) {
	h, err := DetectHost()
	if err != nil {
		return nil, err
	}
	return h.New(path, r)
}

// Load opens an existing cgroup at path, resolved as New resolves it, to
// kill, freeze, inspect or destroy it from another process. A relative
// path resolves against the caller's own cgroups: store Path() (absolute
// whenever it can be) rather than the relative form.
func Load(path string) (*Cgroup, error) {
	h, err := DetectHost()
	if err != nil {
		return nil, err
	}
	return h.Load(path)
}

// layout computes the directories for path without touching them.
func (h Host) layout(path string) (*Cgroup, error) {
	p, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	var own ProcCgroups
	if !filepath.IsAbs(p) {
		if own, err = readOwnCgroups(); err != nil {
			return nil, err
		}
	}
	c := &Cgroup{host: h, path: p, fd: -1}
	var rels []string
	switch h.Kind {
	case V2:
		rel, err := resolve(p, own.Unified, h.Unified.Root)
		if err != nil {
			return nil, err
		}
		c.unified = filepath.Join(h.Unified.Dir, rel)
		c.dirs = []string{c.unified}
		rels = append(rels, rel)
	case V1:
		for _, m := range h.V1 {
			rel, err := resolve(p, own.V1[m.Controllers[0]], m.Root)
			if err != nil {
				return nil, err
			}
			c.dirs = append(c.dirs, filepath.Join(m.Dir, rel))
			rels = append(rels, rel)
		}
		if h.Unified.Dir != "" {
			rel, err := resolve(p, own.Unified, h.Unified.Root)
			if err != nil {
				return nil, err
			}
			c.unified = filepath.Join(h.Unified.Dir, rel)
		}
	default:
		return nil, fmt.Errorf("cgroups path %q: unknown host kind %v", path, h.Kind)
	}
	// Path() is absolute when every hierarchy resolved the same way, so
	// that Load works from any process.
	if !slices.ContainsFunc(rels, func(r string) bool { return r != rels[0] }) {
		c.path = rels[0]
	}
	return c, nil
}

// New is the package-level New on host h (tests use UnifiedOnly hosts).
func (h Host) New(path string, r *specs.LinuxResources) (_ *Cgroup, err error) {
	c, err := h.layout(path)
	if err != nil {
		return nil, err
	}
	pl, err := h.plan(r)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", c.path, err)
	}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
			c.removeCreated()
		}
	}()
	for _, d := range c.allDirs() {
		if err := c.mkdir(d); err != nil {
			return nil, err
		}
	}
	if h.Kind == V2 {
		fd, err := unix.Open(c.unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening cgroup %s: %w", c.unified, err)
		}
		c.fd = fd
	}
	if err := c.apply(pl, &undo); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", c.path, err)
	}
	return c, nil
}

// Load is the package-level Load on host h.
func (h Host) Load(path string) (*Cgroup, error) {
	c, err := h.layout(path)
	if err != nil {
		return nil, err
	}
	found := false
	for _, d := range c.allDirs() {
		if _, err := os.Stat(d); err == nil {
			found = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("loading cgroup %s: %w", c.path, err)
		}
	}
	if !found {
		return nil, fmt.Errorf("loading cgroup %s: %w", c.path, os.ErrNotExist)
	}
	if h.Kind == V2 {
		fd, err := unix.Open(c.unified, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening cgroup %s: %w", c.unified, err)
		}
		c.fd = fd
	}
	return c, nil
}

// Path is the cgroups path: absolute (from the hierarchy root) unless it
// was relative and the caller's cgroups differ between v1 hierarchies.
func (c *Cgroup) Path() string { return c.path }

// Kind is the kind of host the cgroup lives on.
func (c *Cgroup) Kind() Kind { return c.host.Kind }

// Dirs are the cgroup's directories, one per hierarchy (the cgroup2 one
// last on a hybrid host).
func (c *Cgroup) Dirs() []string { return c.allDirs() }

// FD is a directory descriptor of the cgroup for
// syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd} (CLONE_INTO_CGROUP)
// on V2; false on V1 (use Add after the fork). The Cgroup owns it: it stays
// valid until Close or Destroy.
func (c *Cgroup) FD() (int, bool) {
	if c.host.Kind != V2 || c.fd < 0 {
		return -1, false
	}
	return c.fd, true
}

// Close releases the descriptor; the cgroup itself stays.
func (c *Cgroup) Close() error {
	if c.fd < 0 {
		return nil
	}
	err := unix.Close(c.fd)
	c.fd = -1
	return err
}

func (c *Cgroup) allDirs() []string {
	if c.host.Kind == V1 && c.unified != "" {
		return append(slices.Clone(c.dirs), c.unified)
	}
	return slices.Clone(c.dirs)
}

// mkdir makes d and its missing parents, recording each; v1 cpuset
// directories get their parent's cpus and mems (they start empty, and an
// empty cpuset admits no task).
func (c *Cgroup) mkdir(d string) error {
	var missing []string
	for p := d; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("creating cgroup %s: %w", d, err)
		}
		missing = append(missing, p)
		if p == "/" {
			break
		}
	}
	cpuset := false
	if m, ok := c.host.v1Mount("cpuset"); ok && strings.HasPrefix(d, m.Dir+"/") {
		cpuset = true
	}
	for i := len(missing) - 1; i >= 0; i-- {
		p := missing[i]
		if err := unix.Mkdir(p, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("creating cgroup %s: %w", p, err)
		} else if err == nil {
			c.created = append(c.created, p)
		}
		if cpuset {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if err := inheritCpuset(p, f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func inheritCpuset(dir, file string) error {
	cur, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(dir, file), err)
	}
	if strings.TrimSpace(string(cur)) != "" {
		return nil
	}
	parent, err := os.ReadFile(filepath.Join(filepath.Dir(dir), file))
	if err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(filepath.Dir(dir), file), err)
	}
	return writeFile(filepath.Join(dir, file), strings.TrimSpace(string(parent)))
}

// removeCreated removes the directories New made, children first, leaving
// any that are in use.
func (c *Cgroup) removeCreated() {
	for i := len(c.created) - 1; i >= 0; i-- {
		rmdirRetry(c.created[i], 50*time.Millisecond)
	}
	c.created = nil
	c.Close()
}

// writeFile writes an existing cgroup interface file (never creating it).
func writeFile(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, path, err)
	}
	_, err = f.Write([]byte(value))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, path, err)
	}
	return nil
}

// Add moves process pid into the cgroup: into every hierarchy's directory
// on V1 (all v1 hierarchies, name=systemd included, and the cgroup2 one on
// a hybrid host), into the unified one on V2. The process's later children
// are born inside. If a write fails the process may be in some of the
// hierarchies: the caller should kill it.
func (c *Cgroup) Add(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("adding pid %d to cgroup %s: not a process id", pid, c.path)
	}
	for _, d := range c.allDirs() {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("adding pid %d to cgroup %s: %w", pid, c.path, err)
		}
	}
	return nil
}

// Pids lists the processes in the cgroup (on V1 the union over the
// hierarchies), sorted.
func (c *Cgroup) Pids() ([]int, error) {
	var all []int
	for _, d := range c.allDirs() {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			return nil, fmt.Errorf("listing processes of cgroup %s: %w", c.path, err)
		}
		pids, err := ParseProcs(b)
		if err != nil {
			return nil, fmt.Errorf("listing processes of cgroup %s: %s: %w", c.path, d, err)
		}
		all = append(all, pids...)
	}
	slices.Sort(all)
	return slices.Compact(all), nil
}

// ParseProcs parses a cgroup.procs file: one decimal pid a line.
func ParseProcs(b []byte) ([]int, error) {
	var out []int
	for _, f := range strings.Split(string(b), "\n") {
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("cgroup.procs: %q is not a process id", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// freezerDir is where freezing happens: the unified directory on V2, the
// freezer hierarchy's on V1 ("" without a freezer).
func (c *Cgroup) freezerDir() string {
	if c.host.Kind == V2 {
		return c.unified
	}
	for i, m := range c.host.V1 {
		if slices.Contains(m.Controllers, "freezer") {
			return c.dirs[i]
		}
	}
	return ""
}

const freezeTimeout = 5 * time.Second

// Freeze stops every process of the cgroup and returns once the kernel
// reports them frozen.
func (c *Cgroup) Freeze() error { return c.setFrozen(true) }

// Thaw lets a frozen cgroup run again.
func (c *Cgroup) Thaw() error { return c.setFrozen(false) }

func (c *Cgroup) setFrozen(frozen bool) error {
	d := c.freezerDir()
	if d == "" {
		return fmt.Errorf("freezing cgroup %s: freezer: %w", c.path, ErrNoController)
	}
	deadline := time.Now().Add(freezeTimeout)
	if c.host.Kind == V2 {
		v := map[bool]string{true: "1", false: "0"}[frozen]
		if err := writeFile(filepath.Join(d, "cgroup.freeze"), v); err != nil {
			return fmt.Errorf("freezing cgroup %s: %w", c.path, err)
		}
		for {
			b, err := os.ReadFile(filepath.Join(d, "cgroup.events"))
			if err != nil {
				return fmt.Errorf("freezing cgroup %s: %w", c.path, err)
			}
			ev, err := ParseFlatKeyed(b)
			if err != nil {
				return fmt.Errorf("freezing cgroup %s: cgroup.events: %w", c.path, err)
			}
			if (ev["frozen"] == 1) == frozen {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("freezing cgroup %s: not frozen=%v after %v", c.path, frozen, freezeTimeout)
			}
			time.Sleep(time.Millisecond)
		}
	}
	want := map[bool]string{true: "FROZEN", false: "THAWED"}[frozen]
	for {
		// v1 may stop in FREEZING when a task cannot be frozen right away;
		// writing again retries it.
		if err := writeFile(filepath.Join(d, "freezer.state"), want); err != nil {
			return fmt.Errorf("freezing cgroup %s: %w", c.path, err)
		}
		b, err := os.ReadFile(filepath.Join(d, "freezer.state"))
		if err != nil {
			return fmt.Errorf("freezing cgroup %s: %w", c.path, err)
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("freezing cgroup %s: freezer.state is %q, not %s after %v", c.path, strings.TrimSpace(string(b)), want, freezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

const killTimeout = 10 * time.Second

// Kill SIGKILLs every process of the cgroup, including ones forked while
// it runs, and returns when it is empty. V2 (and the cgroup2 directory of
// a hybrid host) uses cgroup.kill when the kernel has it; otherwise it
// loops freeze → SIGKILL each → thaw until nothing is left, or just
// SIGKILL each when there is no freezer.
func (c *Cgroup) Kill() error {
	if c.unified != "" {
		err := writeFile(filepath.Join(c.unified, "cgroup.kill"), "1")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("killing cgroup %s: %w", c.path, err)
		}
	}
	deadline := time.Now().Add(killTimeout)
	for {
		pids, err := c.Pids()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && !c.exists() {
				return nil
			}
			return fmt.Errorf("killing cgroup %s: %w", c.path, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("killing cgroup %s: %d processes left after %v (first %d)", c.path, len(pids), killTimeout, pids[0])
		}
		frozen := c.freezerDir() != "" && c.setFrozen(true) == nil
		if frozen {
			// Frozen, nothing can fork: the list is complete.
			if pids, err = c.Pids(); err != nil {
				c.setFrozen(false)
				return fmt.Errorf("killing cgroup %s: %w", c.path, err)
			}
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
				if frozen {
					c.setFrozen(false)
				}
				return fmt.Errorf("killing pid %d of cgroup %s: %w", pid, c.path, err)
			}
		}
		if frozen {
			if err := c.setFrozen(false); err != nil {
				return fmt.Errorf("killing cgroup %s: %w", c.path, err)
			}
		}
		c.waitEmpty(100 * time.Millisecond)
	}
}

// waitEmpty polls until the cgroup has no process or d passes.
func (c *Cgroup) waitEmpty(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if pids, err := c.Pids(); err != nil || len(pids) == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *Cgroup) exists() bool {
	for _, d := range c.allDirs() {
		if _, err := os.Stat(d); err == nil {
			return true
		}
	}
	return false
}

// Destroy kills what is left in the cgroup and removes its directories
// (retrying while the kernel still releases exited tasks), then the parent
// directories New created if nothing else uses them. Destroying a
// destroyed cgroup does nothing.
func (c *Cgroup) Destroy() error {
	c.Close()
	if !c.exists() {
		c.removeCreated()
		return nil
	}
	if err := c.Kill(); err != nil {
		return fmt.Errorf("destroying cgroup %s: %w", c.path, err)
	}
	var errs []error
	for _, d := range c.allDirs() {
		if err := rmdirRetry(d, 2*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("destroying cgroup %s: %w", c.path, errors.Join(errs...))
	}
	c.removeCreated()
	return nil
}

// rmdirRetry removes an empty cgroup directory, retrying on EBUSY for up
// to d; a directory that is already gone is fine.
func rmdirRetry(dir string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY || time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup directory %s: %w", dir, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
