package vmtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// Config describes one VM. The zero values of the optional fields are the
// documented defaults.
type Config struct {
	// Kernel and Initrd are booted directly with -kernel and -initrd.
	// Kernel is required unless Netboot is set; Initrd is optional.
	Kernel, Initrd string
	// Append is the kernel command line for a direct boot. The harness adds
	// "console=ttyS0" when no console=ttyS0 is given, so that the serial
	// port is /dev/console, and "panic=-1" when no panic= is given, so that
	// a kernel panic ends QEMU instead of hanging until a timeout.
	Append string
	// Netboot, instead of Kernel and Initrd, boots with QEMU's own iPXE ROM
	// from the user-mode network's built-in TFTP server. The command line
	// is then the boot script's business. SeaBIOS's and iPXE's messages
	// appear on the console too.
	Netboot *Netboot
	// Memory is the guest RAM in MiB; default 512.
	Memory int
	// CPUs is the number of virtual CPUs; default 1.
	CPUs int
	// Net, when set, gives the VM a second NIC on that switch, after the
	// user-mode NIC (so the user-mode NIC is eth0, the switch's eth1).
	Net *Network
	// HostForwards are TCP ports forwarded from 127.0.0.1 on the host to the
	// guest's user-mode address (10.0.2.15).
	HostForwards []Forward
	// NIC is the QEMU device model of every NIC: "virtio-net-pci" (default)
	// or "e1000".
	NIC string
	// Disks are raw disk images attached as virtio-blk, in order (vda, vdb…).
	Disks []string
	// ExtraArgs are appended to the QEMU command line.
	ExtraArgs []string
	// Log, when set, receives a copy of every console byte as it arrives.
	// Writes come from one goroutine; Kill and Wait return only after the
	// last one.
	Log io.Writer
	// QEMU is the program to run; default "qemu-system-x86_64".
	QEMU string
}

// Netboot is an iPXE boot over the user-mode network: QEMU serves TFTPRoot
// over TFTP and DHCP names Bootfile (for instance an iPXE script) as the file
// to boot.
type Netboot struct {
	TFTPRoot string
	Bootfile string
}

// Forward is a TCP port forward from 127.0.0.1:HostPort on the host to the
// guest's GuestPort. HostPort 0 picks a free port; VM.HostPort reports it.
type Forward struct {
	HostPort, GuestPort int
}

// ErrExited is wrapped by the errors of Expect and Run when QEMU exited
// before the console showed what they were waiting for.
var ErrExited = errors.New("QEMU exited")

// userMAC is the MAC of every VM's user-mode NIC: each VM has a user-mode
// network of its own, so they never meet.
const userMAC = "52:54:00:12:34:56"

// VM is one running QEMU process. Its methods are safe for concurrent use,
// except that Expect and Run share one console cursor and so belong to one
// goroutine at a time.
type VM struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	console console
	stderr  tail

	forwards map[int]int // guest port -> host port
	token    string      // makes this VM's Run markers unique

	sendMu sync.Mutex
	runMu  sync.Mutex
	runs   int

	done    chan struct{} // closed when QEMU exited and its output is drained
	waitErr error         // cmd.Wait's result, set before done is closed
}

// Start starts QEMU as cfg says and returns once the process runs; it does
// not wait for the guest to boot (use Expect). ctx bounds the VM's whole
// life, like exec.CommandContext: when ctx is done QEMU is killed, so pass a
// test's context, not a boot timeout. The caller must end the VM with Wait
// or Kill.
func Start(ctx context.Context, cfg Config) (*VM, error) {
	args, forwards, err := qemuArgs(cfg)
	if err != nil {
		return nil, err
	}
	prog := cfg.QEMU
	if prog == "" {
		prog = "qemu-system-x86_64"
	}
	v := &VM{
		forwards: forwards,
		done:     make(chan struct{}),
		token:    rand.Text()[:8],
	}
	v.console.init(cfg.Log)
	v.stderr.max = 4096
	v.cmd = exec.CommandContext(ctx, prog, args...)
	v.cmd.Stderr = &v.stderr
	if v.stdin, err = v.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("vmtest: starting %s: %w", prog, err)
	}
	stdout, err := v.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("vmtest: starting %s: %w", prog, err)
	}
	if err := v.cmd.Start(); err != nil {
		return nil, fmt.Errorf("vmtest: starting %s: %w", prog, err)
	}
	go v.readConsole(stdout)
	return v, nil
}

// readConsole copies QEMU's standard output, the serial console, into the
// transcript until QEMU exits, then reaps QEMU.
func (v *VM) readConsole(stdout io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := stdout.Read(buf)
		if n > 0 {
			v.console.append(buf[:n])
		}
		if err != nil {
			break
		}
	}
	v.waitErr = v.cmd.Wait()
	close(v.done)
}

// qemuArgs turns cfg into QEMU's command line and the resolved host ports of
// its forwards.
func qemuArgs(cfg Config) ([]string, map[int]int, error) {
	if (cfg.Kernel == "") == (cfg.Netboot == nil) {
		return nil, nil, errors.New("vmtest: Config needs exactly one of Kernel and Netboot")
	}
	if cfg.Netboot != nil && (cfg.Initrd != "" || cfg.Append != "") {
		return nil, nil, errors.New("vmtest: Config.Initrd and Config.Append are for a Kernel boot, not Netboot")
	}
	mem, cpus, nic := cfg.Memory, cfg.CPUs, cfg.NIC
	if mem == 0 {
		mem = 512
	}
	if cpus == 0 {
		cpus = 1
	}
	if nic == "" {
		nic = "virtio-net-pci"
	}
	args := []string{
		"-nodefaults", "-no-user-config",
		"-machine", "pc", "-accel", "tcg",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-display", "none",
		"-chardev", "stdio,id=console,signal=off",
		"-serial", "chardev:console",
		"-no-reboot",
		// A hardware RNG, as cloud VMs have: without one the guest's first
		// getrandom(2) waits about a second for the kernel's entropy.
		"-device", "virtio-rng-pci",
	}
	if cfg.Kernel != "" {
		args = append(args, "-kernel", cfg.Kernel, "-append", kernelCmdline(cfg.Append))
		if cfg.Initrd != "" {
			args = append(args, "-initrd", cfg.Initrd)
		}
	} else {
		// SeaBIOS's serial console (etc/sercon-port, a little-endian I/O
		// port) shows the BIOS's and iPXE's screen output on ttyS0.
		args = append(args, "-boot", "n", "-fw_cfg", "name=etc/sercon-port,string=\xf8\x03")
	}

	user := "user,id=user0"
	forwards := make(map[int]int)
	for _, f := range cfg.HostForwards {
		host := f.HostPort
		if host == 0 {
			var err error
			if host, err = freePort(); err != nil {
				return nil, nil, err
			}
		}
		forwards[f.GuestPort] = host
		user += fmt.Sprintf(",hostfwd=tcp:127.0.0.1:%d-:%d", host, f.GuestPort)
	}
	if nb := cfg.Netboot; nb != nil {
		user += ",tftp=" + optValue(nb.TFTPRoot) + ",bootfile=" + optValue(nb.Bootfile)
	}
	args = append(args, "-netdev", user, "-device", nic+",netdev=user0,mac="+userMAC)
	if cfg.Net != nil {
		sock, mac, err := cfg.Net.attach()
		if err != nil {
			return nil, nil, err
		}
		args = append(args,
			"-netdev", "stream,id=switch0,server=off,addr.type=unix,addr.path="+optValue(sock),
			"-device", nic+",netdev=switch0,mac="+mac)
	}
	for _, d := range cfg.Disks {
		args = append(args, "-drive", "file="+optValue(d)+",format=raw,if=virtio")
	}
	return append(args, cfg.ExtraArgs...), forwards, nil
}

// kernelCmdline adds the console and panic settings the harness relies on to
// the caller's command line, unless the caller chose them.
func kernelCmdline(s string) string {
	hasConsole, hasPanic := false, false
	for _, f := range strings.Fields(s) {
		hasConsole = hasConsole || f == "console=ttyS0" || strings.HasPrefix(f, "console=ttyS0,")
		hasPanic = hasPanic || strings.HasPrefix(f, "panic=")
	}
	var add []string
	if !hasConsole {
		add = append(add, "console=ttyS0")
	}
	if !hasPanic {
		add = append(add, "panic=-1")
	}
	return strings.TrimSpace(s + " " + strings.Join(add, " "))
}

// optValue escapes a value for QEMU's comma-separated option syntax.
func optValue(s string) string {
	return strings.ReplaceAll(s, ",", ",,")
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("vmtest: picking a free host port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// HostPort returns the host port forwarded to the guest's TCP port guest, or
// 0 when there is no such forward.
func (v *VM) HostPort(guest int) int {
	return v.forwards[guest]
}

// Send types s into the serial console as it is; add "\n" to end a line.
func (v *VM) Send(s string) error {
	v.sendMu.Lock()
	defer v.sendMu.Unlock()
	if _, err := io.WriteString(v.stdin, s); err != nil {
		return fmt.Errorf("vmtest: writing to the console: %w", err)
	}
	return nil
}

// Console returns the whole console transcript so far.
func (v *VM) Console() string {
	return v.console.String()
}

// Wait waits for QEMU to exit. It returns nil only when QEMU exited with
// status 0 and the console shows no kernel panic (the harness boots with
// panic=-1, which makes a panic end QEMU like a reboot).
func (v *VM) Wait() error {
	<-v.done
	if v.waitErr != nil {
		return fmt.Errorf("vmtest: QEMU: %w%s", v.waitErr, v.stderrNote())
	}
	if i := strings.Index(v.Console(), "Kernel panic - not syncing"); i >= 0 {
		return fmt.Errorf("vmtest: the guest kernel panicked:\n%s", v.console.tailFrom(i))
	}
	return nil
}

// Kill kills QEMU and waits until it is gone and its output is drained.
func (v *VM) Kill() {
	select {
	case <-v.done:
		return
	default:
	}
	v.cmd.Process.Kill()
	<-v.done
}

// ExitCode returns QEMU's exit status, or -1 while it runs or when a signal
// ended it.
func (v *VM) ExitCode() int {
	select {
	case <-v.done:
		return v.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// exitDetail describes QEMU's end, for an error that wraps ErrExited.
func (v *VM) exitDetail() string {
	if v.waitErr != nil {
		return ": " + v.waitErr.Error() + v.stderrNote()
	}
	return " with status 0" + v.stderrNote()
}

// stderrNote returns QEMU's standard error for an error message, without the
// warning that the sercon setting always causes.
func (v *VM) stderrNote() string {
	var lines []string
	for l := range strings.Lines(v.stderr.String()) {
		if !strings.Contains(l, `fw_cfg item names should be prefixed with "opt/"`) {
			lines = append(lines, l)
		}
	}
	if s := strings.TrimSpace(strings.Join(lines, "")); s != "" {
		return "; its stderr: " + s
	}
	return ""
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = bytes.Clone(t.buf[over:])
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
