package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/corebox/corebox/applets/rkt/cgroups"
	"github.com/corebox/corebox/applets/rkt/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options says what container Create makes.
type Options struct {
	// ID names the container under StateRoot: letters, digits, + - . _
	ID string
	// Bundle is the bundle directory (root.path is relative to it); it
	// is recorded in the state.
	Bundle string
	// Spec is the configuration (LoadSpec reads a bundle's).
	Spec *specs.Spec
	// StateRoot holds one directory per container.
	StateRoot string
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master when Spec.Process.Terminal is set.
	ConsoleSocket string
	// PidFile, if set, receives the init process's pid.
	PidFile string
	// NoPivot moves the root onto / and chroots instead of pivot_root
	// (for roots on ramfs).
	NoPivot bool
	// Stdin, Stdout, Stderr are the process's stdio when it has no
	// terminal; nil inherits the caller's.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles become the process's descriptors 3, 4, …, open (not
	// close-on-exec) when it starts, as runc's --preserve-fds passes
	// them; every other descriptor above 2 is closed by then. Each must
	// be open; Create does not close them.
	ExtraFiles []*os.File
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Container is a handle on one container's state. Methods re-read the
// state on disk as needed: handles in different processes see the same
// container.
type Container struct {
	dir string
	rec *record
	log *slog.Logger
	// init is the stub/init process when this handle created it (Wait
	// needs it); nil for a handle from Load.
	init *os.Process
}

func discard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Create makes the container: namespaces, root file system and mounts,
// cgroup, and an init process that waits for Start. The state is saved
// under StateRoot/ID. On error nothing is left behind.
func Create(ctx context.Context, o Options) (c *Container, err error) {
	log := discard(o.Logger)
	if err := checkID(o.ID); err != nil {
		return nil, err
	}
	if o.StateRoot == "" {
		return nil, errors.New("no state root")
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", o.Bundle, err)
	}
	rootfs, ns, err := validate(o.Spec, bundle)
	if err != nil {
		return nil, err
	}
	spec := o.Spec
	prog, err := seccomp.Compile(spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" {
		return nil, errors.New("process.terminal is set but there is no console socket to send the terminal to")
	}
	if err := checkExtraFiles(o.ExtraFiles); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateRoot, 0o700); err != nil {
		return nil, fmt.Errorf("making the state root: %w", err)
	}
	dir := filepath.Join(o.StateRoot, o.ID)
	if err := os.Mkdir(dir, 0o700); errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("container %q: %w", o.ID, ErrExist)
	} else if err != nil {
		return nil, fmt.Errorf("making the state of container %q: %w", o.ID, err)
	}
	var cleanups []func()
	defer func() {
		if err != nil {
			for _, f := range slices.Backward(cleanups) {
				f()
			}
			os.RemoveAll(dir)
		}
	}()

	rec := &record{ID: o.ID, Bundle: bundle, Rootfs: rootfs, Spec: spec, Created: time.Now().UTC()}

	// The cgroup: always one, as runc makes one (the default path is
	// the id, relative to the caller's own cgroup). On a v2 host the stub
	// is cloned straight into it, so it is made first; on a v1 host the
	// stub joins it after the fork, so it is made while the stub's
	// runtime starts up.
	host, err := cgroups.DetectHost()
	if err != nil {
		return nil, err
	}
	var cg *cgroups.Cgroup
	cgPath := spec.Linux.CgroupsPath
	if cgPath == "" {
		cgPath = o.ID
	}
	res := resourcesWithDevices(spec)
	makeCgroup := func() error {
		var err error
		if cg, err = host.New(cgPath, res); err != nil {
			return fmt.Errorf("linux.cgroupsPath %q: %w", cgPath, err)
		}
		rec.Cgroup = cg.Path()
		cleanups = append(cleanups, func() { cg.Destroy() })
		log.Debug("cgroup made", "path", rec.Cgroup, "since", time.Since(rec.Created))
		return nil
	}
	defer func() {
		if cg != nil {
			cg.Close()
		}
	}()
	if host.Kind == cgroups.V2 {
		if err := makeCgroup(); err != nil {
			return nil, err
		}
	}

	// Descriptors for the stub.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("making the sync socket: %w", err)
	}
	parentEnd := os.NewFile(uintptr(pair[0]), "sync")
	childEnd := os.NewFile(uintptr(pair[1]), "sync")
	defer parentEnd.Close()
	defer childEnd.Close()

	startL, err := listenUnix(filepath.Join(dir, startSocket))
	if err != nil {
		return nil, err
	}
	defer startL.Close()

	files := stubFiles(o.Stdin, o.Stdout, o.Stderr, o.ExtraFiles, childEnd)
	cfg := stubConfig{
		Spec: spec, Rootfs: rootfs, Seccomp: prog, NoPivot: o.NoPivot,
		Userns:    ns.create&unix.CLONE_NEWUSER != 0,
		MountNS:   ns.has(unix.CLONE_NEWNS),
		ExtraFDs:  len(o.ExtraFiles),
		StartFD:   len(files),
		MountNSFD: -1, ConsoleFD: -1,
	}
	files = append(files, startL)
	join, closeJoin, err := openNamespaces(ns.join)
	if err != nil {
		return nil, fmt.Errorf("linux.namespaces: %w", err)
	}
	defer closeJoin()
	files, closeConsole, err := passMountNSAndConsole(&cfg, files, join, spec.Process.Terminal, o.ConsoleSocket)
	if err != nil {
		return nil, err
	}
	defer closeConsole()
	hooks := spec.Hooks
	cfg.ParentHooks = hooks != nil && len(hooks.Prestart)+len(hooks.CreateRuntime) > 0

	attr := &syscall.SysProcAttr{
		Cloneflags: uintptr(ns.create),
	}
	if ns.create&unix.CLONE_NEWUSER != 0 {
		attr.UidMappings = idMaps(spec.Linux.UIDMappings)
		attr.GidMappings = idMaps(spec.Linux.GIDMappings)
		attr.GidMappingsEnableSetgroups = true
		// Root of the new namespace, so that the stub holds its
		// capabilities there (the caller's ids may not be mapped).
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	bornInCgroup := false
	if cg != nil {
		if fd, ok := cg.FD(); ok {
			attr.UseCgroupFD, attr.CgroupFD = true, fd
			bornInCgroup = true
		}
	}
	if !bornInCgroup && ns.create&unix.CLONE_NEWCGROUP != 0 {
		// v1: the stub joins its cgroup after the fork; its cgroup
		// namespace must be made after that.
		attr.Cloneflags &^= unix.CLONE_NEWCGROUP
		cfg.UnshareCgroup = true
	}
	exe, err := openSelfExe(len(files))
	if err != nil {
		return nil, err
	}
	defer exe.Close()
	t0 := time.Now()
	proc, err := spawn(exe.path(), stubArgs(len(o.ExtraFiles)), files, attr, join)
	if err != nil {
		return nil, fmt.Errorf("starting the container's init: %w", err)
	}
	cleanups = append(cleanups, func() { proc.Kill(); proc.Wait() })
	childEnd.Close()
	log.Debug("stub started", "pid", proc.Pid, "took", time.Since(t0))
	if cg == nil {
		if err := makeCgroup(); err != nil {
			return nil, err
		}
	}
	if !bornInCgroup {
		if err := cg.Add(proc.Pid); err != nil {
			return nil, err
		}
	}
	st, err := readProcStat(proc.Pid)
	if err != nil {
		return nil, fmt.Errorf("reading the init's start time: %w", err)
	}
	rec.Pid, rec.StartTime = proc.Pid, st.startTime
	cfg.State = rec.state(specs.StateCreating)

	enc, dec := json.NewEncoder(parentEnd), json.NewDecoder(parentEnd)
	if err := enc.Encode(&cfg); err != nil {
		return nil, fmt.Errorf("configuring the container's init: %w", stubDied(proc, err))
	}
	for {
		m, err := readStubReply(dec)
		if err != nil {
			return nil, fmt.Errorf("creating the container: %w", stubDied(proc, err))
		}
		switch m.Kind {
		case "error":
			return nil, errors.New(m.Error)
		case "hooks":
			st := rec.state(specs.StateCreating)
			herr := runHooks("prestart", hooks.Prestart, st)
			if herr == nil {
				herr = runHooks("createRuntime", hooks.CreateRuntime, st)
			}
			if herr != nil {
				enc.Encode(stubMessage{Kind: "error", Error: herr.Error()})
				return nil, herr
			}
			if err := enc.Encode(stubMessage{Kind: "hooksDone"}); err != nil {
				return nil, fmt.Errorf("creating the container: %w", stubDied(proc, err))
			}
			continue
		case "ready":
		default:
			return nil, fmt.Errorf("creating the container: unexpected message %q from the init", m.Kind)
		}
		break
	}
	log.Debug("container created", "id", o.ID, "pid", proc.Pid, "took", time.Since(t0))
	if err := writeRecord(dir, rec); err != nil {
		return nil, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, proc.Pid); err != nil {
			return nil, err
		}
	}
	return &Container{dir: dir, rec: rec, log: log, init: proc}, nil
}

// resourcesWithDevices is the spec's resources with the device rules every
// container needs appended: its default nodes, /dev/pts, and its own
// devices (after the spec's rules, so a deny-all first still lets them
// through).
func resourcesWithDevices(spec *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if spec.Linux.Resources != nil {
		r = *spec.Linux.Resources
	}
	if len(r.Devices) == 0 {
		return &r
	}
	r.Devices = slices.Clone(r.Devices)
	r.Devices = append(r.Devices, defaultDeviceRules...)
	for _, d := range spec.Linux.Devices {
		typ := d.Type
		switch typ {
		case "p":
			continue // the device controller does not govern fifos
		case "u":
			typ = "c"
		}
		r.Devices = append(r.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: i64(d.Major), Minor: i64(d.Minor), Access: "rwm"})
	}
	return &r
}

func orStd(f, std *os.File) *os.File {
	if f != nil {
		return f
	}
	return std
}

// stubFiles are the stub's first descriptors: stdio (nil inherits the
// caller's), the extra files at 3, 4, … where the process will have them,
// and the sync socket after them (stubSyncFD).
func stubFiles(stdin, stdout, stderr *os.File, extra []*os.File, sync *os.File) []*os.File {
	files := []*os.File{orStd(stdin, os.Stdin), orStd(stdout, os.Stdout), orStd(stderr, os.Stderr)}
	files = append(files, extra...)
	return append(files, sync)
}

// checkExtraFiles checks that the files to pass as descriptors 3, 4, …
// are open; the error names the descriptor.
func checkExtraFiles(extra []*os.File) error {
	for i, f := range extra {
		if f == nil {
			return fmt.Errorf("descriptor %d to pass to the process: no file", 3+i)
		}
		if _, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil {
			return fmt.Errorf("descriptor %d to pass to the process (%s): %w", 3+i, f.Name(), err)
		}
	}
	return nil
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// spawn starts the stub. Namespaces to join other than mount (the stub
// joins that one) are joined first on a locked thread that the forked stub
// inherits them from; that thread is then discarded (its goroutine exits
// locked).
func spawn(path string, argv []string, files []*os.File, attr *syscall.SysProcAttr, join map[int]*os.File) (*os.Process, error) {
	pa := &os.ProcAttr{Files: files, Sys: attr, Env: []string{}}
	var joins []int
	for flag := range join {
		if flag != unix.CLONE_NEWNS {
			joins = append(joins, flag)
		}
	}
	if len(joins) == 0 {
		return os.StartProcess(path, argv, pa)
	}
	// The user namespace first (when allowed at all), then the others.
	slices.SortFunc(joins, func(a, b int) int {
		if a == unix.CLONE_NEWUSER {
			return -1
		}
		if b == unix.CLONE_NEWUSER {
			return 1
		}
		return a - b
	})
	type result struct {
		p   *os.Process
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread is in the container's
		// namespaces now and must die with this goroutine.
		for _, flag := range joins {
			if err := unix.Setns(int(join[flag].Fd()), flag); err != nil {
				ch <- result{err: fmt.Errorf("joining namespace %s: %w", join[flag].Name(), err)}
				return
			}
		}
		p, err := os.StartProcess(path, argv, pa)
		ch <- result{p, err}
	}()
	r := <-ch
	return r.p, r.err
}

// openNamespaces opens the namespace files to join.
func openNamespaces(paths map[int]string) (map[int]*os.File, func(), error) {
	out := map[int]*os.File{}
	closeAll := func() {
		for _, f := range out {
			f.Close()
		}
	}
	for flag, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("opening namespace %s: %w", p, err)
		}
		out[flag] = f
	}
	return out, closeAll, nil
}

// stubDied turns a sync-socket error into the stub's exit status when it
// is gone.
func stubDied(p *os.Process, err error) error {
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		return err
	}
	st, werr := p.Wait()
	if werr != nil {
		return fmt.Errorf("the container's init went away: %w", werr)
	}
	return fmt.Errorf("the container's init exited early: %v", st)
}

func listenUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("making the start socket: %w", err)
	}
	if err := bindUnix(fd, path, unix.Bind); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("binding the start socket %s: %w", path, err)
	}
	if err := unix.Listen(fd, 4); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listening on the start socket: %w", err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// passMountNSAndConsole appends to the stub's files the mount namespace
// it must join (if any) and, for a process with a terminal, a connection
// to the console socket, and records their numbers in cfg. closeConsole
// releases the parent's end of the connection.
func passMountNSAndConsole(cfg *stubConfig, files []*os.File, join map[int]*os.File, terminal bool, consoleSocket string) (_ []*os.File, closeConsole func(), err error) {
	if f, ok := join[unix.CLONE_NEWNS]; ok {
		cfg.MountNSFD = len(files)
		files = append(files, f)
	}
	closeConsole = func() {}
	if terminal {
		conn, err := dialUnix(consoleSocket)
		if err != nil {
			return nil, nil, err
		}
		closeConsole = func() { conn.Close() }
		cfg.ConsoleFD = len(files)
		files = append(files, conn)
	}
	return files, closeConsole, nil
}

func dialUnix(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := bindUnix(fd, path, unix.Connect); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connecting to %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// bindUnix binds or connects fd to path, going through the directory's
// /proc/self/fd entry when the path is longer than a sockaddr holds.
func bindUnix(fd int, path string, op func(int, unix.Sockaddr) error) error {
	if len(path) < 100 {
		return op(fd, &unix.SockaddrUnix{Name: path})
	}
	d, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	return op(fd, &unix.SockaddrUnix{Name: fdPath(d) + "/" + filepath.Base(path)})
}

func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("writing the pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the pid file: %w", err)
	}
	return nil
}

// Load opens the container id under stateRoot.
func Load(stateRoot, id string, log *slog.Logger) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(stateRoot, id)
	rec, err := readRecord(dir, id)
	if err != nil {
		return nil, err
	}
	return &Container{dir: dir, rec: rec, log: discard(log)}, nil
}

// List returns the containers under stateRoot, sorted by id; entries that
// are not containers are skipped.
func List(stateRoot string, log *slog.Logger) ([]*Container, error) {
	ents, err := os.ReadDir(stateRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	var out []*Container
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c, err := Load(stateRoot, e.Name(), log)
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// ID is the container's id.
func (c *Container) ID() string { return c.rec.ID }

// Spec is the configuration the container was created with.
func (c *Container) Spec() *specs.Spec { return c.rec.Spec }

// Created is when the container was created.
func (c *Container) Created() time.Time { return c.rec.Created }

func (r *record) state(status specs.ContainerState) specs.State {
	var ann map[string]string
	if r.Spec != nil {
		ann = r.Spec.Annotations
	}
	return specs.State{Version: specs.Version, ID: r.ID, Status: status, Pid: r.Pid, Bundle: r.Bundle, Annotations: ann}
}

func (r *record) status() specs.ContainerState {
	switch {
	case !r.alive():
		return specs.StateStopped
	case !r.Started:
		return specs.StateCreated
	case r.Paused:
		return statePaused
	}
	return specs.StateRunning
}

// State is the container's OCI state. The status is read from the live
// system: "stopped" once the init is gone (or its pid belongs to another
// process now), "created" until Start, "running" after.
func (c *Container) State() (specs.State, error) {
	rec, err := readRecord(c.dir, c.rec.ID)
	if err != nil {
		return specs.State{}, err
	}
	c.rec = rec
	s := rec.state(rec.status())
	if s.Status == specs.StateStopped {
		s.Pid = 0
	}
	return s, nil
}

// lockRecord locks the container's state directory and rereads its
// record (another process may have changed it); unlock releases the lock.
func (c *Container) lockRecord() (rec *record, unlock func(), err error) {
	unlock, err = lockDir(c.dir, c.rec.ID)
	if err != nil {
		return nil, nil, err
	}
	rec, err = readRecord(c.dir, c.rec.ID)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	c.rec = rec
	return rec, unlock, nil
}

// Start lets a created container's init execve its process, and runs the
// poststart hooks. It returns once the process has been executed (or the
// init reported why it could not).
func (c *Container) Start() error {
	rec, unlock, err := c.lockRecord()
	if err != nil {
		return err
	}
	defer unlock()
	if st := rec.status(); st != specs.StateCreated {
		return fmt.Errorf("container %q is %s, not created: cannot start it", rec.ID, st)
	}
	conn, err := dialUnix(filepath.Join(c.dir, startSocket))
	if err != nil {
		return fmt.Errorf("starting container %q: %w", rec.ID, err)
	}
	defer conn.Close()
	rec.Started = true
	if err := writeRecord(c.dir, rec); err != nil {
		return err
	}
	// The init closes the connection by execve'ing (it is close-on-exec)
	// or writes why it could not.
	msg, err := io.ReadAll(conn)
	if err != nil {
		return fmt.Errorf("starting container %q: %w", rec.ID, err)
	}
	if len(msg) > 0 {
		return fmt.Errorf("starting container %q: %s", rec.ID, msg)
	}
	os.Remove(filepath.Join(c.dir, startSocket))
	if h := rec.Spec.Hooks; h != nil && len(h.Poststart) > 0 {
		if err := runHooks("poststart", h.Poststart, rec.state(specs.StateRunning)); err != nil {
			return err
		}
	}
	return nil
}

// Pid is the init's pid (0 once stopped).
func (c *Container) Pid() int {
	if !c.rec.alive() {
		return 0
	}
	return c.rec.Pid
}

// Signal sends sig to the container's init, or with all to every process
// of its cgroup. Signalling a stopped container is an error.
func (c *Container) Signal(sig unix.Signal, all bool) error {
	rec, err := readRecord(c.dir, c.rec.ID)
	if err != nil {
		return err
	}
	c.rec = rec
	if all {
		cg, err := cgroups.Load(rec.Cgroup)
		if err != nil {
			return fmt.Errorf("signalling container %q: %w", rec.ID, err)
		}
		defer cg.Close()
		pids, err := cg.Pids()
		if err != nil {
			return fmt.Errorf("signalling container %q: %w", rec.ID, err)
		}
		if len(pids) == 0 && !rec.alive() {
			return fmt.Errorf("container %q is not running", rec.ID)
		}
		for _, pid := range pids {
			if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
				return fmt.Errorf("signalling pid %d of container %q: %w", pid, rec.ID, err)
			}
		}
		return nil
	}
	pidfd, err := rec.pidfd()
	if err != nil {
		return err
	}
	defer unix.Close(pidfd)
	if err := unix.PidfdSendSignal(pidfd, sig, nil, 0); err != nil {
		if err == unix.ESRCH {
			return fmt.Errorf("container %q is not running", rec.ID)
		}
		return fmt.Errorf("signalling container %q: %w", rec.ID, err)
	}
	return nil
}

// pidfd opens a pidfd of the init and checks (after opening, so that the
// pid cannot be reused in between) that it is still the same process.
func (r *record) pidfd() (int, error) {
	if r.Pid <= 0 {
		return -1, fmt.Errorf("container %q is not running", r.ID)
	}
	fd, err := unix.PidfdOpen(r.Pid, 0)
	if err == unix.ESRCH {
		return -1, fmt.Errorf("container %q is not running", r.ID)
	}
	if err != nil {
		return -1, fmt.Errorf("opening the init of container %q: %w", r.ID, err)
	}
	if !r.alive() {
		unix.Close(fd)
		return -1, fmt.Errorf("container %q is not running", r.ID)
	}
	return fd, nil
}

// Wait waits for the init to exit and returns its exit code (128+signal
// when a signal ended it). Only the handle that created the container can
// wait; ctx cancels the wait, not the container.
func (c *Container) Wait(ctx context.Context) (int, error) {
	if c.init == nil {
		return -1, errors.New("only the creating process can wait for a container")
	}
	return waitProcess(ctx, c.init)
}

func waitProcess(ctx context.Context, p *os.Process) (int, error) {
	type result struct {
		st  *os.ProcessState
		err error
	}
	ch := make(chan result, 1)
	go func() {
		st, err := p.Wait()
		ch <- result{st, err}
	}()
	select {
	case <-ctx.Done():
		return -1, ctx.Err()
	case r := <-ch:
		if r.err != nil {
			return -1, r.err
		}
		return exitCode(r.st), nil
	}
}

func exitCode(st *os.ProcessState) int {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// Delete removes a stopped (or created) container: it runs the poststop
// hooks, removes its cgroup and its state. A running container is refused
// unless force, which kills it first.
func (c *Container) Delete(force bool) error {
	rec, unlock, err := c.lockRecord()
	if err != nil {
		return err
	}
	defer unlock()
	st := rec.status()
	t0 := time.Now()
	defer func() { c.log.Debug("container deleted", "id", rec.ID, "took", time.Since(t0)) }()
	if st == specs.StateRunning && !force {
		return fmt.Errorf("cannot delete container %s that is not stopped: %s", rec.ID, st)
	}
	if st != specs.StateStopped {
		if err := rec.kill(); err != nil {
			return err
		}
	}
	var errs []error
	if rec.Cgroup != "" {
		if cg, err := cgroups.Load(rec.Cgroup); err == nil {
			if err := cg.Destroy(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if h := rec.Spec.Hooks; h != nil && len(h.Poststop) > 0 {
		// Poststop hook failures are logged, not fatal (runtime-spec).
		if err := runHooks("poststop", h.Poststop, rec.state(specs.StateStopped)); err != nil {
			c.log.Warn("poststop hook failed", "id", rec.ID, "err", err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing the state of container %q: %w", rec.ID, err))
	}
	return errors.Join(errs...)
}

// kill SIGKILLs the init and waits for it to be gone (a pidfd becomes
// readable when the process exits, child or not).
func (r *record) kill() error {
	fd, err := r.pidfd()
	if err != nil {
		return nil // already gone
	}
	defer unix.Close(fd)
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && err != unix.ESRCH {
		return fmt.Errorf("killing container %q: %w", r.ID, err)
	}
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, 10000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for container %q to die: %w", r.ID, err)
		}
		if fds[0].Revents == 0 {
			return fmt.Errorf("container %q did not die within 10s of SIGKILL", r.ID)
		}
		return nil
	}
}

// Pids lists the processes in the container's cgroup.
func (c *Container) Pids() ([]int, error) {
	cg, err := cgroups.Load(c.rec.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", c.rec.ID, err)
	}
	defer cg.Close()
	return cg.Pids()
}

// Pause freezes every process of a running container.
func (c *Container) Pause() error { return c.setPaused(true) }

// Resume thaws a paused container.
func (c *Container) Resume() error { return c.setPaused(false) }

func (c *Container) setPaused(paused bool) error {
	rec, unlock, err := c.lockRecord()
	if err != nil {
		return err
	}
	defer unlock()
	want := specs.StateRunning
	if !paused {
		want = statePaused
	}
	if st := rec.status(); st != want {
		return fmt.Errorf("container %q is %s, not %s", rec.ID, st, want)
	}
	cg, err := cgroups.Load(rec.Cgroup)
	if err != nil {
		return fmt.Errorf("container %q: %w", rec.ID, err)
	}
	defer cg.Close()
	if paused {
		err = cg.Freeze()
	} else {
		err = cg.Thaw()
	}
	if err != nil {
		return fmt.Errorf("container %q: %w", rec.ID, err)
	}
	rec.Paused = paused
	return writeRecord(c.dir, rec)
}
