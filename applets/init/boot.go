package init

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	stdlog "log"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corebox/corebox/applets/init/control"
	"github.com/corebox/corebox/applets/init/machine"
	"github.com/corebox/corebox/internal/version"
)

// mountPoint is one early mount.
type mountPoint struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

var earlyMounts = []mountPoint{
	{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
	{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
	{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666"},
	{"tmpfs", "/dev/shm", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
	{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
	{"cgroup2", "/sys/fs/cgroup", "cgroup2", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "nsdelegate"},
}

// boot is init as PID 1.
func boot(ctx context.Context) int {
	start, rootErr := leaveRootfs(time.Now())
	mountErrs := mountAll(earlyMounts)
	// Links take a while to report carrier: raise them first so that DHCP,
	// later, does not wait for it.
	upEthernet()
	console := openConsole()
	var kmsg *os.File
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		kmsg = f
	}
	b, _ := os.ReadFile("/proc/cmdline")
	cmd := machine.ParseCmdline(strings.TrimSpace(string(b)))
	debug, _ := cmd.Debug()
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	h := newConsoleHandler(console, kmsg, level)
	log := slog.New(h)
	// Libraries that print with the standard logger (u-root's DHCP client)
	// are debug output.
	stdlog.SetFlags(0)
	stdlog.SetOutput(slog.NewLogLogger(h, slog.LevelDebug).Writer())
	log.Info("corebox init", "version", version.Version, "pid1_after", time.Since(start).Round(time.Millisecond))
	if rootErr != nil {
		log.Error("leaving rootfs for a tmpfs root (containers need it for pivot_root)", "err", rootErr)
	}
	for _, err := range mountErrs {
		log.Error("mount", "err", err)
	}
	persistent := mountVar(log)
	// Ctrl-Alt-Del sends SIGINT to init instead of rebooting at once.
	unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPWR, syscall.SIGUSR1, syscall.SIGUSR2)
	power := make(chan control.PowerRequest, 1)
	go func() {
		for sig := range sigs {
			action := map[os.Signal]string{syscall.SIGINT: "reboot", syscall.SIGTERM: "reboot", syscall.SIGUSR2: "poweroff", syscall.SIGPWR: "poweroff", syscall.SIGUSR1: "halt"}[sig]
			log.Info("signal", "signal", sig.String(), "action", action)
			select {
			case power <- control.PowerRequest{Action: action}:
			default:
			}
		}
	}()

	cfg, emergency := configure(ctx, log, cmd)
	if forced, _ := cmd.Emergency(); forced && emergency == nil {
		emergency = errors.New("corebox.emergency=1 on the kernel command line")
	}
	env := []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin:/bbin", "HOME=/root", "TERM=linux"}
	n := node{
		root: "/", cgroup: "/sys/fs/cgroup/system.slice", socket: "/run/corebox/init.sock",
		log: log, console: console, env: env,
		logDir: map[bool]string{true: "/var/log/corebox"}[persistent],
	}
	if cfg != nil {
		n.enable = enabledUnits(cfg.Units)
	}
	n.prepareKexec = loadKexec
	if emergency != nil || debug {
		n.settled = func() { go consoleShell(log, env, emergency != nil) }
	}
	action, err := n.run(ctx, start, power, emergency)
	if err != nil {
		log.Error("supervisor", "err", err)
		fmt.Fprintf(console, "corebox emergency: %v\n", err)
		go consoleShell(log, env, true)
		action = <-power
	}
	shutdown(log, action.Action)
	return 0
}

// configure reads the machine config and applies it: hostname, machine id,
// network, unit files. It applies nothing when the config is invalid: the
// error it returns puts the node in the emergency state.
func configure(ctx context.Context, log *slog.Logger, cmd machine.Cmdline) (*machine.Config, error) {
	if err := cmd.Validate(); err != nil {
		return nil, fmt.Errorf("kernel command line: %w", err)
	}
	source, _ := cmd.ConfigSource()
	embedded, err := os.ReadFile("/" + defaultConfigPath)
	if err != nil && source == "" {
		return nil, fmt.Errorf("machine config: no corebox.config= and no embedded default: %w", err)
	}
	if err := upLoopback(); err != nil {
		log.Error("loopback", "err", err)
	}
	if strings.HasPrefix(source, "http://") || strings.HasPrefix(source, "https://") {
		// The network must be up to fetch the config: use ip= or DHCP.
		boot := machine.Config{}
		boot.ApplyDefaults()
		boot = boot.Merge(cmd)
		if err := configureNetwork(ctx, log, boot.Network); err != nil {
			return nil, fmt.Errorf("network for corebox.config=%s: %w", source, err)
		}
	}
	cfg, err := machine.Load(ctx, source, embedded, machine.LoadOptions{Logf: func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) }})
	if err != nil {
		return nil, fmt.Errorf("machine config: %w", err)
	}
	merged := cfg.Merge(cmd)
	cfg = &merged
	// Unit files are checked before anything is applied.
	if err := checkUnits(cfg.Units); err != nil {
		return nil, fmt.Errorf("machine config: %w", err)
	}
	if err := setHostname(cfg.Hostname); err != nil {
		return nil, err
	}
	if id, created, err := machine.MachineID("/var/lib/corebox", rand.Reader); err != nil {
		log.Error("machine id", "err", err)
	} else {
		os.WriteFile("/etc/machine-id", []byte(id+"\n"), 0o444)
		log.Info("machine id", "id", id, "created", created)
	}
	if !strings.HasPrefix(source, "http") {
		if err := configureNetwork(ctx, log, cfg.Network); err != nil {
			log.Error("network", "err", err)
		}
	} else if cfg.Network.Mode == "static" {
		if err := configureNetwork(ctx, log, cfg.Network); err != nil {
			log.Error("network", "err", err)
		}
	}
	if err := installUnits("/", cfg.Units); err != nil {
		return nil, err
	}
	if err := writeEtcdEnv(cfg.Hostname, cfg.Registry); err != nil {
		return nil, fmt.Errorf("machine config: %w", err)
	}
	os.MkdirAll("/etc/corebox", 0o755)
	if b, err := json.MarshalIndent(cfg, "", "  "); err == nil {
		os.WriteFile("/etc/corebox/config.json", b, 0o600)
	}
	return cfg, nil
}

func setHostname(name string) error {
	if name == "" {
		return nil
	}
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("setting hostname %q: %w", name, err)
	}
	os.MkdirAll("/etc", 0o755)
	return os.WriteFile("/etc/hostname", []byte(name+"\n"), 0o644)
}

func mountAll(mounts []mountPoint) []error {
	var errs []error
	for _, m := range mounts {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.target, err))
			continue
		}
		if err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data); err != nil && !errors.Is(err, unix.EBUSY) {
			errs = append(errs, fmt.Errorf("mounting %s on %s: %w", m.fstype, m.target, err))
		}
	}
	os.Symlink("/proc/self/fd", "/dev/fd")
	os.Symlink("/proc/self/fd/0", "/dev/stdin")
	os.Symlink("/proc/self/fd/1", "/dev/stdout")
	os.Symlink("/proc/self/fd/2", "/dev/stderr")
	return errs
}

// openConsole makes /dev/console init's stdin, stdout and stderr (the
// kernel opens it before /init only when the initramfs has the node).
func openConsole() *os.File {
	f, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err != nil {
		return os.Stdout
	}
	for fd := 0; fd <= 2; fd++ {
		unix.Dup3(int(f.Fd()), fd, 0)
	}
	return f
}

// consoleShell runs a shell on the console, again each time it exits. In
// the emergency state the banner says why.
func consoleShell(log *slog.Logger, env []string, emergency bool) {
	self, err := os.Executable()
	if err != nil {
		self = "/init"
	}
	for {
		tty, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
		if err != nil {
			log.Error("console shell", "err", err)
			return
		}
		attr := &syscall.ProcAttr{
			Dir:   "/",
			Env:   append(env, "PS1=corebox# "),
			Files: []uintptr{tty.Fd(), tty.Fd(), tty.Fd()},
			Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
		}
		pid, err := syscall.ForkExec(self, []string{"sh", "-i"}, attr)
		tty.Close()
		if err != nil {
			log.Error("console shell", "err", err)
			return
		}
		log.Info("console shell", "pid", pid, "emergency", emergency)
		// The supervisor's reaper collects the shell; poll for its exit.
		for syscall.Kill(pid, 0) == nil {
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(time.Second)
	}
}
