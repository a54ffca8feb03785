package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/corebox/corebox/applets/rkt/cgroups"
	"github.com/corebox/corebox/applets/rkt/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ExecOptions is a process to run in a running container.
type ExecOptions struct {
	// Process is what to run (runc exec starts from the container's own
	// process section and overrides it).
	Process *specs.Process
	// ConsoleSocket receives the pty master when Process.Terminal.
	ConsoleSocket string
	// PidFile, if set, receives the process's pid.
	PidFile string
	// Stdin, Stdout, Stderr: nil inherits the caller's.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles become the process's descriptors 3, 4, … (see
	// Options.ExtraFiles).
	ExtraFiles []*os.File
}

// Process is a process Exec started; the caller is its parent.
type Process struct {
	p *os.Process
}

// Pid is the process's pid in the caller's pid namespace.
func (p *Process) Pid() int { return p.p.Pid }

// Wait waits for the process and returns its exit code (128+signal when a
// signal ended it).
func (p *Process) Wait(ctx context.Context) (int, error) { return waitProcess(ctx, p.p) }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.p.Signal(sig) }

// nsFiles are the /proc/PID/ns names of the namespace types.
var nsFiles = map[int]string{
	unix.CLONE_NEWPID: "pid", unix.CLONE_NEWNET: "net", unix.CLONE_NEWNS: "mnt", unix.CLONE_NEWIPC: "ipc",
	unix.CLONE_NEWUTS: "uts", unix.CLONE_NEWUSER: "user", unix.CLONE_NEWCGROUP: "cgroup", unix.CLONE_NEWTIME: "time",
}

// Exec runs another process in the container's namespaces and cgroup,
// with the container's seccomp profile. It returns once the process has
// been executed (or with why it could not be).
func (c *Container) Exec(ctx context.Context, o ExecOptions) (*Process, error) {
	rec, err := readRecord(c.dir, c.rec.ID)
	if err != nil {
		return nil, err
	}
	c.rec = rec
	if st := rec.status(); st == specs.StateStopped {
		return nil, fmt.Errorf("cannot exec in a stopped container %q", rec.ID)
	}
	if o.Process == nil {
		return nil, errors.New("exec: no process")
	}
	if err := validateProcess(o.Process, "process"); err != nil {
		return nil, err
	}
	if err := checkExtraFiles(o.ExtraFiles); err != nil {
		return nil, err
	}
	if o.Process.Terminal && o.ConsoleSocket == "" {
		return nil, errors.New("process.terminal is set but there is no console socket to send the terminal to")
	}
	spec := rec.Spec
	paths := map[int]string{}
	for _, n := range spec.Linux.Namespaces {
		flag := namespaceFlags[n.Type]
		switch flag {
		case unix.CLONE_NEWUSER, unix.CLONE_NEWTIME:
			return nil, fmt.Errorf("exec into container %q: joining its %s namespace needs a single-threaded process, which corebox cannot be", rec.ID, n.Type)
		}
		paths[flag] = fmt.Sprintf("/proc/%d/ns/%s", rec.Pid, nsFiles[flag])
	}
	join, closeJoin, err := openNamespaces(paths)
	if err != nil {
		return nil, fmt.Errorf("exec into container %q: %w", rec.ID, err)
	}
	defer closeJoin()
	// The namespaces are open: make sure they were the init's, not those
	// of a process that took its pid.
	if !rec.alive() {
		return nil, fmt.Errorf("cannot exec in a stopped container %q", rec.ID)
	}
	prog, err := seccomp.Compile(spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	cg, err := cgroups.Load(rec.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("exec into container %q: %w", rec.ID, err)
	}
	defer cg.Close()

	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("making the sync socket: %w", err)
	}
	parentEnd := os.NewFile(uintptr(pair[0]), "sync")
	childEnd := os.NewFile(uintptr(pair[1]), "sync")
	defer parentEnd.Close()
	defer childEnd.Close()
	files := stubFiles(o.Stdin, o.Stdout, o.Stderr, o.ExtraFiles, childEnd)
	cfg := stubConfig{Exec: true, Spec: spec, Process: o.Process, Rootfs: rec.Rootfs, Seccomp: prog,
		ExtraFDs: len(o.ExtraFiles), StartFD: -1, MountNSFD: -1, ConsoleFD: -1, State: rec.state(specs.StateRunning)}
	files, closeConsole, err := passMountNSAndConsole(&cfg, files, join, o.Process.Terminal, o.ConsoleSocket)
	if err != nil {
		return nil, err
	}
	defer closeConsole()
	attr := &syscall.SysProcAttr{}
	if fd, ok := cg.FD(); ok {
		attr.UseCgroupFD, attr.CgroupFD = true, fd
	}
	exe, err := openSelfExe(len(files))
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	proc, err := spawn(exe.path(), stubArgs(len(o.ExtraFiles)), files, attr, join)
	if err != nil {
		return nil, fmt.Errorf("exec into container %q: %w", rec.ID, err)
	}
	childEnd.Close()
	fail := func(err error) (*Process, error) {
		proc.Kill()
		proc.Wait()
		return nil, err
	}
	if _, ok := cg.FD(); !ok {
		if err := cg.Add(proc.Pid); err != nil {
			return fail(err)
		}
	}
	if err := json.NewEncoder(parentEnd).Encode(&cfg); err != nil {
		return fail(fmt.Errorf("exec into container %q: %w", rec.ID, stubDied(proc, err)))
	}
	m, err := readStubReply(json.NewDecoder(parentEnd))
	switch {
	case errors.Is(err, io.EOF):
		// Closed by execve: the process runs (or the stub died, which
		// Wait reports).
	case err != nil:
		return fail(fmt.Errorf("exec into container %q: %w", rec.ID, err))
	case m.Kind == "error":
		return fail(errors.New(m.Error))
	default:
		return fail(fmt.Errorf("exec into container %q: unexpected message %q", rec.ID, m.Kind))
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, proc.Pid); err != nil {
			return nil, err
		}
	}
	return &Process{p: proc}, nil
}
