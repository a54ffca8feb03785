package runc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/corebox/corebox/applets/rkt/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// run is create + start, and unless --detach, wait: signals are forwarded
// to the container's process, the exit status is its status, and the
// container is deleted afterwards (unless --keep).
func (c *cli) run(ctx context.Context, args []string) (int, error) {
	var f createFlags
	fs := c.createFlagSet("run", &f)
	detach := fs.Bool("detach", false, "do not wait for the container")
	fs.BoolVar(detach, "d", false, "do not wait for the container")
	keep := fs.Bool("keep", false, "do not delete the container after it exits")
	id, err := oneID(fs, args)
	if err != nil {
		return 1, err
	}
	o, err := c.options(id, &f)
	if err != nil {
		return 1, err
	}
	var relay *consoleRelay
	if o.Spec.Process.Terminal && o.ConsoleSocket == "" {
		if *detach {
			return 1, errors.New("cannot allocate tty if runc will detach without setting console socket")
		}
		if relay, err = newConsoleRelay(); err != nil {
			return 1, err
		}
		defer relay.close()
		o.ConsoleSocket = relay.path
	}
	// Signals that arrive from here on are queued and forwarded once
	// the process runs.
	var sigs chan os.Signal
	if !*detach {
		sigs = make(chan os.Signal, 64)
		signal.Notify(sigs)
		defer signal.Stop(sigs)
	}
	ct, err := container.Create(ctx, o)
	if err != nil {
		return 1, err
	}
	if relay != nil {
		if err := relay.attach(); err != nil {
			ct.Delete(true)
			return 1, err
		}
	}
	if err := ct.Start(); err != nil {
		ct.Delete(true)
		return 1, err
	}
	if *detach {
		return 0, nil
	}
	stop := forward(sigs, relay, func(s unix.Signal) { ct.Signal(s, false) })
	code, err := ct.Wait(context.Background())
	stop()
	if relay != nil {
		relay.finish()
	}
	if !*keep {
		if derr := ct.Delete(true); derr != nil && err == nil {
			err = derr
		}
	}
	return code, err
}

// forward relays signals to the container until stop is called. SIGCHLD
// (ours), SIGURG (the Go runtime's preemption) and SIGPIPE are not
// forwarded; SIGWINCH resizes the relay's terminal.
func forward(sigs chan os.Signal, relay *consoleRelay, send func(unix.Signal)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				sig, ok := s.(unix.Signal)
				if !ok {
					continue
				}
				switch sig {
				case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
					continue
				case unix.SIGWINCH:
					if relay != nil {
						relay.resize()
						continue
					}
				}
				send(sig)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func (c *cli) exec(ctx context.Context, args []string) (int, error) {
	fs := c.flags("exec")
	tty := fs.Bool("tty", false, "allocate a pseudo-terminal")
	fs.BoolVar(tty, "t", false, "allocate a pseudo-terminal")
	detach := fs.Bool("detach", false, "do not wait for the process")
	fs.BoolVar(detach, "d", false, "do not wait for the process")
	var env, caps, gids stringList
	fs.Var(&env, "env", "KEY=VALUE to add to the environment (repeatable)")
	fs.Var(&env, "e", "KEY=VALUE to add to the environment (repeatable)")
	fs.Var(&caps, "cap", "capability to add (repeatable)")
	fs.Var(&caps, "c", "capability to add (repeatable)")
	fs.Var(&gids, "additional-gids", "additional group id (repeatable)")
	fs.Var(&gids, "g", "additional group id (repeatable)")
	cwd := fs.String("cwd", "", "working directory in the container")
	user := fs.String("user", "", "UID[:GID]")
	fs.StringVar(user, "u", "", "UID[:GID]")
	procFile := fs.String("process", "", "a JSON process section to run")
	fs.StringVar(procFile, "p", "", "a JSON process section to run")
	pidFile := fs.String("pid-file", "", "write the process's pid here")
	consoleSocket := fs.String("console-socket", "", "unix socket receiving the pty master")
	noNewPrivs := fs.Bool("no-new-privs", false, "set no_new_privs")
	preserveFDs := fs.Int("preserve-fds", 0, preserveFDsUsage)
	if err := fs.Parse(args); err != nil {
		return 1, err
	}
	if fs.NArg() < 1 {
		return 1, usageError{"exec: want ID [COMMAND [ARG…]]"}
	}
	// Before anything is opened (see options).
	extra, err := preservedFiles(3, *preserveFDs)
	if err != nil {
		return 1, err
	}
	ct, err := c.load(fs.Arg(0))
	if err != nil {
		return 1, err
	}
	var p *specs.Process
	if *procFile != "" {
		b, err := os.ReadFile(*procFile)
		if err != nil {
			return 1, fmt.Errorf("--process: %w", err)
		}
		p = new(specs.Process)
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(p); err != nil {
			return 1, fmt.Errorf("--process %s: %w", *procFile, err)
		}
	} else {
		if fs.NArg() < 2 {
			return 1, usageError{"exec: no command to run (give ARGS or --process)"}
		}
		base := ct.Spec().Process
		p = cloneProcess(base)
		p.Args = fs.Args()[1:]
		p.Terminal = *tty
		p.ConsoleSize = nil
		p.Env = append(p.Env, env...)
		if *cwd != "" {
			p.Cwd = *cwd
		}
		if *user != "" {
			uid, gid, err := parseUser(*user)
			if err != nil {
				return 1, err
			}
			p.User.UID, p.User.GID = uid, gid
		}
		for _, g := range gids {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return 1, fmt.Errorf("--additional-gids %q: %w", g, err)
			}
			p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
		}
		if len(caps) > 0 {
			if p.Capabilities == nil {
				p.Capabilities = &specs.LinuxCapabilities{}
			}
			pc := p.Capabilities
			for _, cp := range caps {
				pc.Bounding = append(pc.Bounding, cp)
				pc.Effective = append(pc.Effective, cp)
				pc.Permitted = append(pc.Permitted, cp)
			}
		}
		if *noNewPrivs {
			p.NoNewPrivileges = true
		}
	}
	var relay *consoleRelay
	if p.Terminal && *consoleSocket == "" {
		if *detach {
			return 1, errors.New("cannot allocate tty if runc will detach without setting console socket")
		}
		if relay, err = newConsoleRelay(); err != nil {
			return 1, err
		}
		defer relay.close()
		*consoleSocket = relay.path
	}
	var sigs chan os.Signal
	if !*detach {
		sigs = make(chan os.Signal, 64)
		signal.Notify(sigs)
		defer signal.Stop(sigs)
	}
	if *pidFile != "" {
		if *pidFile, err = filepath.Abs(*pidFile); err != nil {
			return 1, err
		}
	}
	proc, err := ct.Exec(ctx, container.ExecOptions{Process: p, ConsoleSocket: *consoleSocket, PidFile: *pidFile, ExtraFiles: extra})
	if err != nil {
		return 1, err
	}
	if relay != nil {
		if err := relay.attach(); err != nil {
			proc.Signal(unix.SIGKILL)
			return 1, err
		}
	}
	if *detach {
		return 0, nil
	}
	stop := forward(sigs, relay, func(s unix.Signal) { proc.Signal(s) })
	code, err := proc.Wait(context.Background())
	stop()
	if relay != nil {
		relay.finish()
	}
	return code, err
}

func cloneProcess(p *specs.Process) *specs.Process {
	b, _ := json.Marshal(p)
	var out specs.Process
	json.Unmarshal(b, &out)
	return &out
}

func parseUser(s string) (uid, gid uint32, err error) {
	u, g, hasGID := strings.Cut(s, ":")
	n, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--user %q: want UID[:GID] as numbers", s)
	}
	uid = uint32(n)
	if hasGID {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("--user %q: want UID[:GID] as numbers", s)
		}
		gid = uint32(n)
	}
	return uid, gid, nil
}

// consoleRelay is the terminal of a foreground `run` or `exec` without
// --console-socket: it receives the container's pty master on a private
// socket and relays it to our stdio, with our terminal in raw mode.
type consoleRelay struct {
	dir      string
	path     string
	l        *net.UnixListener
	master   *os.File
	restore  func()
	copyDone chan struct{}
}

func newConsoleRelay() (*consoleRelay, error) {
	dir, err := os.MkdirTemp("", "corebox-console-")
	if err != nil {
		return nil, fmt.Errorf("making the console socket: %w", err)
	}
	path := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("making the console socket: %w", err)
	}
	return &consoleRelay{dir: dir, path: path, l: l, restore: func() {}}, nil
}

// attach receives the master (already sent by then) and starts relaying.
func (r *consoleRelay) attach() error {
	m, err := container.ReceiveConsole(r.l)
	if err != nil {
		return err
	}
	r.master = m
	if t, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		saved := *t
		raw := *t
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		if unix.IoctlSetTermios(0, unix.TCSETS, &raw) == nil {
			r.restore = func() { unix.IoctlSetTermios(0, unix.TCSETS, &saved) }
		}
	}
	r.resize()
	r.copyDone = make(chan struct{})
	go io.Copy(m, os.Stdin)
	go func() {
		io.Copy(os.Stdout, m) // ends with EIO when the last slave closes
		close(r.copyDone)
	}()
	return nil
}

func (r *consoleRelay) resize() {
	if r.master == nil {
		return
	}
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// finish waits for the output to drain and restores our terminal.
func (r *consoleRelay) finish() {
	if r.copyDone != nil {
		<-r.copyDone
	}
	r.restore()
}

func (r *consoleRelay) close() {
	r.l.Close()
	if r.master != nil {
		r.master.Close()
	}
	os.RemoveAll(r.dir)
}
