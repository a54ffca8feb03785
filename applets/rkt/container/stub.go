package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"

	"github.com/corebox/corebox/applets/rkt/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// StubApplet is the name corebox is executed under (argv[0]) to be a
// container's stub. main's applet table maps it to StubMain; a test binary
// that drives the engine must do the same in its TestMain.
const StubApplet = "corebox-container-stub"

// The stub and the single-thread rule. setns(2) into a mount namespace
// refuses a caller that shares its file-system attributes (CLONE_FS) with
// other threads, and setns into a user or time namespace refuses any
// multi-threaded caller; a Go program always has several threads, and no
// Go code runs before the runtime starts them. corebox therefore:
//
//   - creates namespaces with clone flags when it starts the stub (the Go
//     runtime's own fork path does it, no thread rule applies);
//   - joins pid, network, ipc, uts and cgroup namespaces given by path in
//     the parent, on a locked OS thread that is thrown away afterwards:
//     the stub is forked from that thread and inherits them (for pid, that
//     is the only way: setns only affects later children);
//   - joins a mount namespace in the stub, on its locked main thread after
//     unshare(CLONE_FS) gives that thread its own file-system attributes;
//     everything the stub does afterwards, up to its execve, runs on that
//     thread, and execve keeps only it;
//   - refuses to join user and time namespaces by path (and so exec into a
//     container with its own user namespace), which would need a process
//     with a single thread: that is a C constructor's job (runc's nsexec),
//     and corebox has none.

// stubConfig is what the parent sends the stub on the sync socket.
type stubConfig struct {
	Exec bool `json:"exec"` // enter a running container rather than become its init
	// Spec is the container's configuration (Spec.Process is the
	// process to run unless Process is set).
	Spec    *specs.Spec      `json:"spec"`
	Process *specs.Process   `json:"process,omitempty"`
	Rootfs  string           `json:"rootfs"`
	Seccomp *seccomp.Program `json:"seccomp,omitempty"`
	NoPivot bool             `json:"noPivot,omitempty"`
	// MountNS: the container has a mount namespace of its own (made or
	// joined). Without one the stub only chroots into the root: mounts,
	// devices, masked and read-only paths would change the host's mount
	// table and are not applied (runc does the same).
	MountNS bool `json:"mountNS,omitempty"`
	Userns  bool `json:"userns,omitempty"`
	// State is the container's state for the hooks the stub runs.
	State specs.State `json:"state"`
	// ParentHooks: the parent runs prestart and createRuntime hooks
	// between the stub's mounts and its pivot_root.
	ParentHooks bool `json:"parentHooks,omitempty"`
	// UnshareCgroup: make the cgroup namespace now that the parent has
	// moved the stub into its cgroup (v1 hosts).
	UnshareCgroup bool `json:"unshareCgroup,omitempty"`
	// ExtraFDs is how many descriptors from 3 on the process gets
	// (Options.ExtraFiles); the stub holds them close-on-exec until its
	// final execve.
	ExtraFDs int `json:"extraFDs,omitempty"`
	// Descriptor numbers in the stub, -1 for none.
	StartFD   int `json:"startFD"`
	MountNSFD int `json:"mountNSFD"`
	ConsoleFD int `json:"consoleFD"`
}

// stubMessage is one message on the sync socket, either way.
type stubMessage struct {
	// Kind: "hooks" (stub: run the parent's hooks now), "hooksDone"
	// (parent), "ready" (stub: created, waiting for Start), "error".
	Kind  string `json:"kind"`
	Error string `json:"error,omitempty"`
}

// stubArgs is the stub's argv: its name, and the number of its sync
// socket, which follows the extra files (stubFiles).
func stubArgs(extraFiles int) []string {
	return []string{StubApplet, strconv.Itoa(3 + extraFiles)}
}

// StubMain is the stub's entry point; args are stubArgs after the name.
// It reads its configuration from the sync socket and either becomes the
// container's init (waiting for Start, then execve'ing the container's
// process) or, for Exec, joins the container and execve's the process.
// It returns only on failure, after reporting the error to whoever waits
// for it.
func StubMain(ctx context.Context, args []string) int {
	runtime.LockOSThread()
	// Keep other container processes from ptrace-ing the stub or opening
	// its /proc entries while it holds host descriptors.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	// Every inherited descriptor (the extra files included) is
	// close-on-exec while the stub runs hooks; execution.run hands the
	// extra files on at the very end.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintf(os.Stderr, "%s: marking descriptors close-on-exec: %v\n", StubApplet, err)
		return 1
	}
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "%s: want the sync socket's descriptor as the only argument\n", StubApplet)
		return 1
	}
	syncFD, err := strconv.Atoi(args[0])
	if err != nil || syncFD < 3 {
		fmt.Fprintf(os.Stderr, "%s: bad sync descriptor %q\n", StubApplet, args[0])
		return 1
	}
	sync := os.NewFile(uintptr(syncFD), "sync")
	s := &stub{sync: sync, enc: json.NewEncoder(sync), dec: json.NewDecoder(sync)}
	var cfg stubConfig
	if err := s.dec.Decode(&cfg); err != nil {
		s.fail(fmt.Errorf("reading the stub configuration: %w", err))
		return 1
	}
	if cfg.ExtraFDs != syncFD-3 {
		s.fail(fmt.Errorf("the configuration passes %d descriptors, the sync socket is at %d", cfg.ExtraFDs, syncFD))
		return 1
	}
	if cfg.Exec {
		err = s.exec(&cfg)
	} else {
		err = s.init(&cfg)
	}
	s.fail(err)
	return 1
}

type stub struct {
	sync  *os.File
	enc   *json.Encoder
	dec   *json.Decoder
	start *os.File // the connection from Start, once accepted
}

// fail reports err to the waiting side: Start's connection once there is
// one, the parent otherwise.
func (s *stub) fail(err error) {
	if s.start != nil {
		s.start.WriteString(err.Error())
		return
	}
	s.enc.Encode(stubMessage{Kind: "error", Error: err.Error()})
}

func (s *stub) joinMountNS(fd int) error {
	if fd < 0 {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unsharing file-system attributes: %w", err)
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("joining the mount namespace: %w", err)
	}
	unix.Close(fd)
	return nil
}

func (s *stub) init(cfg *stubConfig) error {
	spec := cfg.Spec
	if err := s.joinMountNS(cfg.MountNSFD); err != nil {
		return err
	}
	if cfg.UnshareCgroup {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("making the cgroup namespace: %w", err)
		}
	}
	r := &rootfs{spec: spec, path: cfg.Rootfs, userns: cfg.Userns, root: -1, hostMounts: !cfg.MountNS}
	if err := r.prepare(); err != nil {
		return err
	}
	if cfg.ParentHooks {
		if err := s.enc.Encode(stubMessage{Kind: "hooks"}); err != nil {
			return err
		}
		var m stubMessage
		if err := s.dec.Decode(&m); err != nil {
			return fmt.Errorf("waiting for the runtime's hooks: %w", err)
		}
		if m.Kind != "hooksDone" {
			return fmt.Errorf("the runtime's hooks failed: %s", m.Error)
		}
	}
	if spec.Hooks != nil {
		cfg.State.Status = specs.StateCreating
		if err := runHooks("createContainer", spec.Hooks.CreateContainer, cfg.State); err != nil {
			return err
		}
	}
	if err := r.pivot(cfg.NoPivot); err != nil {
		return err
	}
	if err := r.finish(); err != nil {
		return err
	}
	e, err := s.prepare(cfg, spec.Process)
	if err != nil {
		return err
	}
	start := os.NewFile(uintptr(cfg.StartFD), "start")
	if err := s.enc.Encode(stubMessage{Kind: "ready"}); err != nil {
		return err
	}
	// Created: wait for Start. The parent may be gone by now (runc
	// create exits); errors go to Start's connection from here on.
	for {
		nfd, _, err := unix.Accept4(int(start.Fd()), unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for start: %w", err)
		}
		s.start = os.NewFile(uintptr(nfd), "start connection")
		break
	}
	start.Close()
	s.sync.Close()
	if spec.Hooks != nil {
		cfg.State.Status = specs.StateCreated
		if err := runHooks("startContainer", spec.Hooks.StartContainer, cfg.State); err != nil {
			return err
		}
	}
	return e.run()
}

// prepare does the process setup that may fail on a configuration error,
// before the process is reported created: resource limits, oom score,
// terminal, the executable's lookup.
func (s *stub) prepare(cfg *stubConfig, p *specs.Process) (*execution, error) {
	if err := setRlimits(p); err != nil {
		return nil, err
	}
	if err := setOOMScoreAdj(p); err != nil {
		return nil, err
	}
	e, err := newExecution(p, cfg.Seccomp)
	if err != nil {
		return nil, err
	}
	e.extraFDs = cfg.ExtraFDs
	if p.Terminal {
		if cfg.ConsoleFD < 0 {
			return nil, errors.New("process.terminal: no console socket to send the terminal to")
		}
		master, slave, err := newPty(p.ConsoleSize)
		if err != nil {
			return nil, fmt.Errorf("process.terminal: %w", err)
		}
		err = sendConsole(cfg.ConsoleFD, master)
		unix.Close(master)
		unix.Close(cfg.ConsoleFD)
		if err != nil {
			unix.Close(slave)
			return nil, fmt.Errorf("process.terminal: %w", err)
		}
		e.slave = slave
	}
	return e, nil
}

func (s *stub) exec(cfg *stubConfig) error {
	if err := s.joinMountNS(cfg.MountNSFD); err != nil {
		return err
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	e, err := s.prepare(cfg, cfg.Process)
	if err != nil {
		return err
	}
	// Success is silence: the sync socket closes at execve.
	return e.run()
}

// readStubReply reads the stub's next message; io.EOF means the stub
// closed the socket (execve'd, or died).
func readStubReply(dec *json.Decoder) (stubMessage, error) {
	var m stubMessage
	err := dec.Decode(&m)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return m, err
}
