package init

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/corebox/corebox/applets/init/control"
	"github.com/corebox/corebox/applets/init/machine"
	"github.com/corebox/corebox/applets/init/supervisor"
	"github.com/corebox/corebox/applets/init/unit"
	"github.com/corebox/corebox/internal/version"
)

// Unit directories below the root, highest precedence first.
var unitDirs = []string{"etc/corebox/units", "run/corebox/units", "usr/lib/corebox/units"}

const (
	runtimeUnitDir = "run/corebox/units"
	configUnitDir  = "etc/corebox/units"
	// defaultConfigPath is the machine config embedded in the initramfs.
	defaultConfigPath = "usr/lib/corebox/config.json"
)

// options are init's flags.
type options struct {
	root   string
	cgroup string
	config string
	socket string
}

// Main runs init: the whole boot as PID 1, or with --root DIR only the
// supervisor, as an ordinary process.
func Main(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	var opt options
	fs.StringVar(&opt.root, "root", "", "run as an ordinary process: unit directories, runtime files and the socket live below `DIR`")
	fs.StringVar(&opt.cgroup, "cgroup", "", "with --root: put each unit in a cgroup below `DIR` (cgroup v2 or one v1 hierarchy)")
	fs.StringVar(&opt.config, "config", "", "with --root: a machine config `FILE` whose units are installed")
	fs.StringVar(&opt.socket, "socket", "", "with --root: the control socket `PATH` (default DIR/run/corebox/init.sock)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if os.Getpid() == 1 {
		return boot(ctx)
	}
	if opt.root == "" {
		fmt.Fprintln(os.Stderr, "init: not PID 1: use --root DIR to run the unit supervisor as an ordinary process")
		return 2
	}
	return supervise(ctx, opt)
}

// supervise is init as an ordinary process below opt.root.
func supervise(ctx context.Context, opt options) int {
	start := time.Now()
	root, err := filepath.Abs(opt.root)
	if err != nil {
		fmt.Fprintf(os.Stderr, "init: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var enable []string
	if opt.config != "" {
		cfg, err := machine.Load(ctx, opt.config, nil, machine.LoadOptions{})
		if err != nil {
			fmt.Fprintf(os.Stderr, "init: machine config %s: %v\n", opt.config, err)
			return 1
		}
		if err := installUnits(root, cfg.Units); err != nil {
			fmt.Fprintf(os.Stderr, "init: %v\n", err)
			return 1
		}
		enable = enabledUnits(cfg.Units)
	}
	socket := opt.socket
	if socket == "" {
		socket = filepath.Join(root, "run/corebox/init.sock")
	}
	n := node{root: root, cgroup: opt.cgroup, socket: socket, log: log, console: os.Stdout, enable: enable}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	action, err := n.run(ctx, start, nil, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "init: %v\n", err)
		return 1
	}
	log.Info("stopped", "action", action.Action)
	return 0
}

// node is what both modes share: the supervisor, the socket and the loop
// that waits for a shutdown.
type node struct {
	root    string
	cgroup  string
	socket  string
	logDir  string
	env     []string
	log     *slog.Logger
	console io.Writer
	// enable are units the machine config asks to start at boot besides
	// those wanted by multi-user.target.
	enable []string
	// settled, when set, runs once boot is done: after the ready line, or
	// after the emergency banner.
	settled func()
	// prepareKexec loads the next kernel for a kexec request (PID 1 only).
	prepareKexec func(control.PowerRequest) error
}

// run starts the supervisor and the enabled units, prints the ready line,
// and waits until ctx ends or a shutdown is asked for over the socket (or
// on power, which PID 1 feeds from its signals). It stops every unit before
// it returns the action ("poweroff", "reboot", "halt"; "" when ctx ended).
// emergency, when not nil, is the reason the node must not start units.
func (n *node) run(ctx context.Context, start time.Time, power chan control.PowerRequest, emergency error) (control.PowerRequest, error) {
	var dirs []string
	for _, d := range unitDirs {
		dirs = append(dirs, filepath.Join(n.root, d))
	}
	sup, err := supervisor.New(supervisor.Config{
		UnitDirs:          dirs,
		RuntimeDir:        filepath.Join(n.root, runtimeUnitDir),
		CgroupRoot:        n.cgroup,
		EnableControllers: os.Getpid() == 1,
		LogDir:            n.logDir,
		Env:               n.env,
		Logger:            n.log,
	})
	if sup == nil {
		return control.PowerRequest{}, err
	}
	defer sup.Close()
	if err != nil {
		n.log.Error("unit files with errors", "err", err)
	}
	if power == nil {
		power = make(chan control.PowerRequest, 1)
	}
	l, err := control.Listen(n.socket)
	if err != nil {
		return control.PowerRequest{}, err
	}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	defer stopSrv()
	srv := control.NewServer(sup, func(req control.PowerRequest) error {
		if req.Action == "kexec" {
			if n.prepareKexec == nil {
				return errors.New("kexec: only init as PID 1 can kexec")
			}
			if err := n.prepareKexec(req); err != nil {
				return err
			}
		}
		select {
		case power <- req:
			return nil
		default:
			return errors.New("a shutdown is already under way")
		}
	})
	go srv.Serve(srvCtx, l)

	if emergency != nil {
		fmt.Fprintf(n.console, "corebox emergency: %v\n", emergency)
	} else {
		boot := slices.Clone(sup.Enabled())
		for _, u := range n.enable {
			if !slices.Contains(boot, u) {
				boot = append(boot, u)
			}
		}
		if err := sup.Start(ctx, boot...); err != nil {
			n.log.Error("units failed to start", "err", err)
		}
		failed := 0
		for _, st := range sup.List() {
			if st.ActiveState == "failed" || st.LoadState == "error" {
				failed++
			}
		}
		fmt.Fprintf(n.console, "corebox ready version=%s userspace=%.3fs units=%d failed=%d cgroups=%s\n",
			version.Version, time.Since(start).Seconds(), len(boot), failed, sup.CgroupKind())
	}

	if n.settled != nil {
		n.settled()
	}
	var action control.PowerRequest
	select {
	case <-ctx.Done():
	case action = <-power:
	}
	n.log.Info("stopping units", "action", action.Action)
	stopCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := sup.StopAll(stopCtx); err != nil {
		n.log.Error("stopping units", "err", err)
	}
	return action, nil
}

// checkUnits parses the machine config's unit files, writing nothing.
func checkUnits(units []machine.UnitFile) error {
	var errs []error
	for i, u := range units {
		if _, err := unit.Parse(u.Name, strings.NewReader(u.Contents)); err != nil {
			errs = append(errs, fmt.Errorf("units[%d].contents: %w", i, err))
		}
	}
	return errors.Join(errs...)
}

// installUnits writes the machine config's unit files below root. Every
// file is parsed first: one that does not parse is refused and none is written.
func installUnits(root string, units []machine.UnitFile) error {
	if err := checkUnits(units); err != nil {
		return err
	}
	dir := filepath.Join(root, configUnitDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("installing units: %w", err)
	}
	for _, u := range units {
		p := filepath.Join(dir, u.Name)
		if err := os.WriteFile(p+".tmp", []byte(u.Contents), 0o644); err != nil {
			return fmt.Errorf("installing unit %s: %w", u.Name, err)
		}
		if err := os.Rename(p+".tmp", p); err != nil {
			return fmt.Errorf("installing unit %s: %w", u.Name, err)
		}
	}
	return nil
}

func enabledUnits(units []machine.UnitFile) []string {
	var out []string
	for _, u := range units {
		if u.Enable {
			out = append(out, u.Name)
		}
	}
	return out
}
