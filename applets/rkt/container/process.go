package container

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/corebox/corebox/applets/rkt/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execution is a container process made ready to execve: everything that
// can fail for a reason of the configuration is checked when it is built,
// inside the container, before the process is reported created.
type execution struct {
	p       *specs.Process
	path    string // the executable, resolved in the container
	env     []string
	seccomp *seccomp.Program
	caps    capSets
	last    int // the kernel's highest capability
	slave   int // pty slave for a terminal, or -1
	// extraFDs: descriptors 3 … 3+extraFDs-1 are the caller's extra
	// files, passed on open.
	extraFDs int
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// newExecution resolves the executable and the environment inside the
// container (the caller has pivoted or joined its mount namespace).
func newExecution(p *specs.Process, prog *seccomp.Program) (*execution, error) {
	e := &execution{p: p, seccomp: prog, caps: capSetsOf(p.Capabilities), last: lastCap(), slave: -1, env: p.Env}
	pathVar := defaultPath
	hasHome := false
	for _, kv := range e.env {
		if strings.HasPrefix(kv, "PATH=") {
			pathVar = kv
		}
		hasHome = hasHome || strings.HasPrefix(kv, "HOME=")
	}
	if !hasHome {
		e.env = append(append([]string(nil), e.env...), "HOME="+homeOf(p.User.UID))
	}
	var err error
	e.path, err = lookPath(p.Args[0], strings.TrimPrefix(pathVar, "PATH="), p.Cwd)
	if err != nil {
		return nil, fmt.Errorf("process.args[0] %q: %w", p.Args[0], err)
	}
	return e, nil
}

// lookPath finds an executable as execvp would, in the container.
func lookPath(name, pathVar, cwd string) (string, error) {
	check := func(p string) error {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return errors.New("is a directory")
		}
		if st.Mode&0o111 == 0 {
			return errors.New("permission denied (not executable)")
		}
		return nil
	}
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if err := check(p); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(pathVar) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", errors.New("executable file not found in $PATH")
}

// homeOf reads the user's home from the container's /etc/passwd ("/" when
// there is none).
func homeOf(uid uint32) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	want := strconv.FormatUint(uint64(uid), 10)
	for s.Scan() {
		fields := strings.Split(s.Text(), ":")
		if len(fields) >= 6 && fields[2] == want && fields[5] != "" {
			return fields[5]
		}
	}
	return "/"
}

// setRlimits applies the process's resource limits to the calling process
// (inherited by the execve'd program). syscall.Setrlimit, not x/sys's: it
// also stops the Go runtime from restoring its saved RLIMIT_NOFILE at
// exec.
func setRlimits(p *specs.Process) error {
	for _, r := range p.Rlimits {
		lim := syscall.Rlimit{Cur: r.Soft, Max: r.Hard}
		if err := syscall.Setrlimit(rlimitByName[r.Type], &lim); err != nil {
			return fmt.Errorf("process.rlimits %s (soft %d, hard %d): %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// setOOMScoreAdj writes the process's oom_score_adj (before capabilities
// are dropped: lowering it needs CAP_SYS_RESOURCE).
func setOOMScoreAdj(p *specs.Process) error {
	if p.OOMScoreAdj == nil {
		return nil
	}
	v := strconv.Itoa(*p.OOMScoreAdj)
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(v), 0); err != nil {
		return fmt.Errorf("process.oomScoreAdj %s: %w", v, err)
	}
	return nil
}

// run finishes the calling thread's setup and execve's the process; it
// returns only on failure. The thread must be locked: working directory,
// credentials, capabilities, no_new_privs and the seccomp filter are set
// on it alone, and it is the one that execve's (the kernel ends the other
// threads). Order: working directory (resolved inside the root, magic
// links refused), terminal, every descriptor above 2 marked close-on-exec
// but the extra files (3 … 3+extraFDs-1), bounding set, groups and ids (keeping capabilities across the id
// change), capabilities, umask, no_new_privs, seccomp — last when
// no_new_privs allows an unprivileged load, before the drop otherwise.
func (e *execution) run() error {
	p := e.p
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /: %w", err)
	}
	cwd, err := openInRoot(root, p.Cwd, unix.O_PATH|unix.O_DIRECTORY)
	unix.Close(root)
	if err != nil {
		return fmt.Errorf("process.cwd %q: %w", p.Cwd, err)
	}
	err = unix.Fchdir(cwd)
	unix.Close(cwd)
	if err != nil {
		return fmt.Errorf("process.cwd %q: %w", p.Cwd, err)
	}
	if e.slave >= 0 {
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("process.terminal: setsid: %w", err)
		}
		if err := unix.IoctlSetInt(e.slave, unix.TIOCSCTTY, 0); err != nil {
			return fmt.Errorf("process.terminal: making the pty the controlling terminal: %w", err)
		}
		for fd := 0; fd <= 2; fd++ {
			if err := unix.Dup3(e.slave, fd, 0); err != nil {
				return fmt.Errorf("process.terminal: %w", err)
			}
		}
		unix.Close(e.slave)
	}
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("marking descriptors close-on-exec: %w", err)
	}
	for fd := 3; fd < 3+e.extraFDs; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("passing descriptor %d to the process: %w", fd, err)
		}
	}
	if !p.NoNewPrivileges {
		if err := e.seccomp.Load(); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	if err := dropBounding(e.caps.bounding, e.last); err != nil {
		return fmt.Errorf("process.capabilities.bounding: %w", err)
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := applyCaps(e.caps, e.last); err != nil {
		return fmt.Errorf("process.capabilities: %w", err)
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
		if err := e.seccomp.Load(); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	err = syscall.Exec(e.path, p.Args, e.env)
	return fmt.Errorf("process.args: executing %s: %w", e.path, err)
}

// setUser switches the calling thread to the process's user with raw
// system calls (the Go wrappers change every thread, which would race the
// runtime's own threads; only this one will execve).
func setUser(u specs.User) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("process.user: keeping capabilities: %w", err)
	}
	groups := make([]uint32, len(u.AdditionalGids))
	copy(groups, u.AdditionalGids)
	if len(groups) == 0 {
		groups = []uint32{0} // a valid pointer for a zero-length list
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(u.AdditionalGids)), uintptr(unsafe.Pointer(&groups[0])), 0); errno != 0 {
		// A user namespace with setgroups denied refuses even an
		// empty list; that is fine when none were asked for.
		if len(u.AdditionalGids) > 0 || errno != unix.EPERM {
			return fmt.Errorf("process.user.additionalGids %v: %w", u.AdditionalGids, errno)
		}
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); errno != 0 {
		return fmt.Errorf("process.user.gid %d: %w", u.GID, errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); errno != 0 {
		return fmt.Errorf("process.user.uid %d: %w", u.UID, errno)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("process.user: %w", err)
	}
	return nil
}
