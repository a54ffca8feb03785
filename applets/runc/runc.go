package runc

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/corebox/corebox/applets/rkt/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/corebox/runc"

// cli is one invocation's global settings.
type cli struct {
	root   string
	log    *slog.Logger
	stdout io.Writer
	stderr io.Writer
}

// usageError is a command-line mistake (exit status 1 after the message,
// as runc has it).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: runc [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND [ARGS…]
commands:
  create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--preserve-fds N] ID
  start ID
  state ID
  kill [--all] [--signal SIG] ID [SIGNAL]
  delete [--force] ID
  run [--bundle DIR] [--detach] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--preserve-fds N] ID
  exec [--tty] [--detach] [--env K=V] [--cwd DIR] [--user UID[:GID]] [--process FILE] [--preserve-fds N] ID [ARGS…]
  list [--format table|json] [--quiet]
  ps [--format table|json] ID
  pause ID / resume ID
  spec [--rootless] [--bundle DIR]
`

// Main runs the runc command line and returns its exit status.
func Main(ctx context.Context, args []string) int {
	return run(ctx, args, os.Stdout, os.Stderr)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("runc", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	root := fs.String("root", DefaultRoot, "state directory")
	logPath := fs.String("log", "", "log file (default stderr)")
	logFormat := fs.String("log-format", "text", "text or json")
	debug := fs.Bool("debug", false, "debug logs")
	fs.Bool("systemd-cgroup", false, "accepted for compatibility; cgroupsPath is always a path")
	fs.String("rootless", "auto", "accepted for compatibility")
	fs.String("criu", "", "accepted for compatibility")
	version := fs.Bool("version", false, "print the version")
	fs.BoolVar(version, "v", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	if *version {
		fmt.Fprintf(stdout, "runc version corebox\nspec: %s\n", specs.Version)
		return 0
	}
	var logOut io.Writer = stderr
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "runc: opening the log file: %v\n", err)
			return 1
		}
		defer f.Close()
		logOut = f
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level})
	case "json":
		h = slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level})
	default:
		fmt.Fprintf(stderr, "runc: unknown log format %q (text or json)\n", *logFormat)
		return 1
	}
	c := &cli{root: *root, log: slog.New(h), stdout: stdout, stderr: stderr}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	cmds := map[string]func(context.Context, []string) (int, error){
		"create": c.create, "start": c.start, "state": c.state, "kill": c.kill, "delete": c.delete,
		"run": c.run, "exec": c.exec, "list": c.list, "ps": c.ps, "spec": c.spec,
		"pause": c.pause, "resume": c.resume,
	}
	cmd, ok := cmds[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "runc: unknown command %q\n%s", rest[0], usage)
		return 1
	}
	code, err := cmd(ctx, rest[1:])
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			c.log.Error(err.Error())
		}
		if code == 0 {
			code = 1
		}
	}
	return code
}

// flags is a command's flag set; ContinueOnError, errors to stderr.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("runc "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	return fs
}

// oneID parses fs and returns the single positional argument.
func oneID(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() != 1 {
		return "", usageError{fmt.Sprintf("%s: want exactly one container id, got %d arguments", fs.Name(), fs.NArg())}
	}
	return fs.Arg(0), nil
}

func (c *cli) load(id string) (*container.Container, error) {
	return container.Load(c.root, id, c.log)
}

type createFlags struct {
	bundle, pidFile, consoleSocket string
	noPivot                        bool
	preserveFDs                    int
}

func (c *cli) createFlagSet(name string, f *createFlags) *flag.FlagSet {
	fs := c.flags(name)
	fs.StringVar(&f.bundle, "bundle", ".", "bundle directory")
	fs.StringVar(&f.bundle, "b", ".", "bundle directory")
	fs.StringVar(&f.pidFile, "pid-file", "", "write the init's pid here")
	fs.StringVar(&f.consoleSocket, "console-socket", "", "unix socket receiving the pty master")
	fs.BoolVar(&f.noPivot, "no-pivot", false, "chroot instead of pivot_root")
	fs.Bool("no-new-keyring", false, "accepted for compatibility")
	fs.IntVar(&f.preserveFDs, "preserve-fds", 0, preserveFDsUsage)
	return fs
}

const preserveFDsUsage = "pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"

// options is the engine's Options for create and run. The descriptors to
// pass are taken first, before the command opens anything that could take
// the number of one that is closed.
func (c *cli) options(id string, f *createFlags) (container.Options, error) {
	listen, err := listenFiles()
	if err != nil {
		return container.Options{}, err
	}
	extra, err := preservedFiles(3+len(listen), f.preserveFDs)
	if err != nil {
		return container.Options{}, err
	}
	spec, err := container.LoadSpec(f.bundle)
	if err != nil {
		return container.Options{}, err
	}
	if len(listen) > 0 {
		// As runc: the activation descriptors keep their meaning
		// for the container's init.
		spec.Process.Env = append(spec.Process.Env, "LISTEN_FDS="+strconv.Itoa(len(listen)), "LISTEN_PID=1")
	}
	if f.pidFile != "" {
		if f.pidFile, err = filepath.Abs(f.pidFile); err != nil {
			return container.Options{}, err
		}
	}
	return container.Options{
		ID: id, Bundle: f.bundle, Spec: spec, StateRoot: c.root, ConsoleSocket: f.consoleSocket,
		PidFile: f.pidFile, NoPivot: f.noPivot, Logger: c.log, ExtraFiles: append(listen, extra...),
	}, nil
}

// listenFiles are the socket-activation descriptors systemd passed us
// (LISTEN_FDS from 3 on, when LISTEN_PID is our pid), which create and run
// pass to the container before the --preserve-fds ones, as runc does.
func listenFiles() ([]*os.File, error) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil, nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil, nil
	}
	return callerFiles(3, n, "LISTEN_FDS="+strconv.Itoa(n))
}

// preservedFiles are the caller's descriptors first … first+n-1 for
// --preserve-fds n.
func preservedFiles(first, n int) ([]*os.File, error) {
	if n < 0 {
		return nil, usageError{fmt.Sprintf("--preserve-fds %d: must be 0 or more", n)}
	}
	return callerFiles(first, n, "--preserve-fds "+strconv.Itoa(n))
}

// callerFiles wraps descriptors first … first+n-1 that our caller passed
// us; what names the setting that asks for them in errors. A descriptor
// our caller did not pass is refused even when open: then it is one of
// ours, opened close-on-exec (the Go runtime keeps a cgroup file open, for
// one), and must not reach a container. All are checked before any is
// wrapped: wrapping a non-blocking one starts the runtime's poller, whose
// descriptor would take the number of a closed one.
func callerFiles(first, n int, what string) ([]*os.File, error) {
	for fd := first; fd < first+n; fd++ {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			return nil, fmt.Errorf("%s: descriptor %d is not open: %w", what, fd, err)
		}
		if flags&unix.FD_CLOEXEC != 0 {
			return nil, fmt.Errorf("%s: descriptor %d is not open in runc's caller (the number is one of runc's own)", what, fd)
		}
	}
	files := make([]*os.File, n)
	for i := range files {
		files[i] = os.NewFile(uintptr(first+i), "descriptor "+strconv.Itoa(first+i)+" for "+what)
	}
	return files, nil
}

func (c *cli) create(ctx context.Context, args []string) (int, error) {
	var f createFlags
	fs := c.createFlagSet("create", &f)
	id, err := oneID(fs, args)
	if err != nil {
		return 1, err
	}
	o, err := c.options(id, &f)
	if err != nil {
		return 1, err
	}
	_, err = container.Create(ctx, o)
	return 0, err
}

func (c *cli) start(ctx context.Context, args []string) (int, error) {
	id, err := oneID(c.flags("start"), args)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(id)
	if err != nil {
		return 1, err
	}
	return 0, ct.Start()
}

// stateJSON is `runc state`'s output.
type stateJSON struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func (c *cli) stateOf(ct *container.Container) (stateJSON, error) {
	st, err := ct.State()
	if err != nil {
		return stateJSON{}, err
	}
	rootfs := ""
	if s := ct.Spec(); s != nil && s.Root != nil {
		rootfs = s.Root.Path
		if !filepath.IsAbs(rootfs) {
			rootfs = filepath.Join(st.Bundle, rootfs)
		}
	}
	return stateJSON{Version: st.Version, ID: st.ID, Pid: st.Pid, Status: string(st.Status), Bundle: st.Bundle,
		Rootfs: rootfs, Created: ct.Created(), Annotations: st.Annotations}, nil
}

func (c *cli) state(ctx context.Context, args []string) (int, error) {
	id, err := oneID(c.flags("state"), args)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(id)
	if err != nil {
		return 1, err
	}
	s, err := c.stateOf(ct)
	if err != nil {
		return 1, err
	}
	b, _ := json.MarshalIndent(s, "", "  ")
	fmt.Fprintf(c.stdout, "%s\n", b)
	return 0, nil
}

func (c *cli) kill(ctx context.Context, args []string) (int, error) {
	fs := c.flags("kill")
	all := fs.Bool("all", false, "signal every process of the container")
	fs.BoolVar(all, "a", false, "signal every process of the container")
	sigFlag := fs.String("signal", "", "signal (name or number)")
	fs.StringVar(sigFlag, "s", "", "signal (name or number)")
	if err := fs.Parse(args); err != nil {
		return 1, err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return 1, usageError{"kill: want ID [SIGNAL]"}
	}
	sigName := "SIGTERM"
	switch {
	case fs.NArg() == 2 && *sigFlag != "":
		return 1, usageError{"kill: the signal given both as --signal and as an argument"}
	case fs.NArg() == 2:
		sigName = fs.Arg(1)
	case *sigFlag != "":
		sigName = *sigFlag
	}
	sig, err := ParseSignal(sigName)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(fs.Arg(0))
	if err != nil {
		return 1, err
	}
	return 0, ct.Signal(sig, *all)
}

// ParseSignal reads a signal as a name (KILL, SIGKILL) or a number.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func (c *cli) delete(ctx context.Context, args []string) (int, error) {
	fs := c.flags("delete")
	force := fs.Bool("force", false, "kill a running container first")
	fs.BoolVar(force, "f", false, "kill a running container first")
	id, err := oneID(fs, args)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(id)
	if errors.Is(err, container.ErrNotExist) && *force {
		// A container whose create was interrupted has a directory
		// without a state: remove it, as runc does.
		os.RemoveAll(filepath.Join(c.root, id))
		return 0, nil
	}
	if err != nil {
		return 1, err
	}
	return 0, ct.Delete(*force)
}

func (c *cli) list(ctx context.Context, args []string) (int, error) {
	fs := c.flags("list")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	quiet := fs.Bool("quiet", false, "ids only")
	fs.BoolVar(quiet, "q", false, "ids only")
	if err := fs.Parse(args); err != nil {
		return 1, err
	}
	cts, err := container.List(c.root, c.log)
	if err != nil {
		return 1, err
	}
	var states []stateJSON
	for _, ct := range cts {
		s, err := c.stateOf(ct)
		if err != nil {
			continue
		}
		states = append(states, s)
	}
	switch {
	case *quiet:
		for _, s := range states {
			fmt.Fprintln(c.stdout, s.ID)
		}
	case *format == "json":
		if states == nil {
			states = []stateJSON{}
		}
		b, _ := json.Marshal(states)
		fmt.Fprintf(c.stdout, "%s\n", b)
	case *format == "table":
		w := tabwriter.NewWriter(c.stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, s := range states {
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), ownerOf(s.Owner))
		}
		w.Flush()
	default:
		return 1, usageError{fmt.Sprintf("list: unknown format %q (table or json)", *format)}
	}
	return 0, nil
}

func ownerOf(o string) string {
	if o == "" {
		return "root"
	}
	return o
}

func (c *cli) ps(ctx context.Context, args []string) (int, error) {
	fs := c.flags("ps")
	format := fs.String("format", "table", "table or json")
	fs.StringVar(format, "f", "table", "table or json")
	id, err := oneID(fs, args)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(id)
	if err != nil {
		return 1, err
	}
	pids, err := ct.Pids()
	if err != nil {
		return 1, err
	}
	switch *format {
	case "json":
		if pids == nil {
			pids = []int{}
		}
		b, _ := json.Marshal(pids)
		fmt.Fprintf(c.stdout, "%s\n", b)
	case "table":
		fmt.Fprintln(c.stdout, "PID\tCMD")
		for _, pid := range pids {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			fmt.Fprintf(c.stdout, "%d\t%s\n", pid, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")))
		}
	default:
		return 1, usageError{fmt.Sprintf("ps: unknown format %q (table or json)", *format)}
	}
	return 0, nil
}

func (c *cli) pause(ctx context.Context, args []string) (int, error) {
	id, err := oneID(c.flags("pause"), args)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(id)
	if err != nil {
		return 1, err
	}
	return 0, ct.Pause()
}

func (c *cli) resume(ctx context.Context, args []string) (int, error) {
	id, err := oneID(c.flags("resume"), args)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(id)
	if err != nil {
		return 1, err
	}
	return 0, ct.Resume()
}

func (c *cli) spec(ctx context.Context, args []string) (int, error) {
	fs := c.flags("spec")
	rootless := fs.Bool("rootless", false, "a configuration for an unprivileged user")
	bundle := fs.String("bundle", "", "write config.json in this directory (default: the current one)")
	fs.StringVar(bundle, "b", "", "write config.json in this directory")
	if err := fs.Parse(args); err != nil {
		return 1, err
	}
	if fs.NArg() != 0 {
		return 1, usageError{"spec: takes no arguments"}
	}
	path := filepath.Join(*bundle, "config.json")
	if _, err := os.Stat(path); err == nil {
		return 1, errors.New("File config.json exists. Remove it first.")
	}
	s := container.DefaultSpec(*rootless, uint32(os.Geteuid()), uint32(os.Getegid()))
	b, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return 1, err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o666); err != nil {
		return 1, fmt.Errorf("writing %s: %w", path, err)
	}
	return 0, nil
}
