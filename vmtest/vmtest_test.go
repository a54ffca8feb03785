package vmtest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// bootTimeout bounds one boot under TCG; netbootTimeout adds iPXE and TFTP.
const (
	bootTimeout    = 120 * time.Second
	netbootTimeout = 240 * time.Second
)

// testImage is the kernel and the testinit initramfs that the VM tests boot,
// made once per test binary in imageDir.
type testImage struct {
	kernel, initrd string
}

var (
	imageDir     string
	buildImageMu sync.Mutex
	builtImage   *testImage
)

func TestMain(m *testing.M) {
	code := m.Run()
	if imageDir != "" {
		os.RemoveAll(imageDir)
	}
	os.Exit(code)
}

// bootImage returns the kernel to boot and a freshly packed testinit
// initramfs, or skips t when there is no kernel.
func bootImage(t *testing.T) testImage {
	t.Helper()
	kernel := findKernel(t)
	buildImageMu.Lock()
	defer buildImageMu.Unlock()
	if builtImage != nil {
		return *builtImage
	}
	dir, err := os.MkdirTemp("", "vmtest-image-")
	if err != nil {
		t.Fatal(err)
	}
	imageDir = dir
	initrd := filepath.Join(dir, "initrd.img")
	if err := buildTestInitramfs(dir, initrd); err != nil {
		t.Fatal(err)
	}
	builtImage = &testImage{kernel: kernel, initrd: initrd}
	return *builtImage
}

// findKernel returns $COREBOX_KERNEL, else out/vmlinuz in the repository, else
// skips t; it skips t too when QEMU is missing. The tests need a kernel with
// the 8250 serial console, gzip initramfs, devtmpfs, ACPI (for poweroff),
// virtio-pci, virtio-net, virtio-blk, e1000, IPv4 and AF_PACKET built in.
func findKernel(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skipf("no QEMU to boot with: %v", err)
	}
	if k := os.Getenv("COREBOX_KERNEL"); k != "" {
		if _, err := os.Stat(k); err != nil {
			t.Fatalf("COREBOX_KERNEL: %v", err)
		}
		return k
	}
	k, err := filepath.Abs(filepath.Join("..", "out", "vmlinuz"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(k); err != nil {
		t.Skipf("no kernel to boot: set COREBOX_KERNEL to a bzImage or build %s (mkimage.sh)", k)
	}
	return k
}

// buildTestInitramfs compiles internal/testinit as a static binary and packs
// it as /init in a gzip newc cpio at path, with /dev/console for the kernel
// to open.
func buildTestInitramfs(dir, path string) error {
	bin := filepath.Join(dir, "testinit")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./internal/testinit")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building testinit: %v\n%s", err, out)
	}
	return PackInitramfs(path, bin, nil)
}

// bootTestinit starts a VM on the test image and waits for testinit, or
// fails t.
func bootTestinit(t *testing.T, name string, cfg Config) *VM {
	t.Helper()
	vm, err := boot(t, bootImage(t), name, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// boot starts a VM on img, waits for testinit and logs how long the boot
// took. Unlike bootTestinit it may run outside the test's goroutine.
func boot(t *testing.T, img testImage, name string, cfg Config) (*VM, error) {
	if cfg.Netboot == nil {
		cfg.Kernel, cfg.Initrd = img.kernel, img.initrd
		if cfg.Append == "" {
			cfg.Append = "quiet"
		}
	}
	cfg.Log = LineWriter(t.Logf, name+": ")
	timeout := bootTimeout
	if cfg.Netboot != nil {
		timeout = netbootTimeout
	}
	start := time.Now()
	vm, err := Start(t.Context(), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(vm.Kill)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	if err := vm.ExpectString(ctx, "testinit ready"); err != nil {
		return nil, fmt.Errorf("booting %s: %w", name, err)
	}
	t.Logf("%s: booted to testinit in %v", name, time.Since(start).Round(100*time.Millisecond))
	return vm, nil
}

// run is vm.Run with a test's timeout that fails t on error.
func run(t *testing.T, vm *VM, cmd string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := vm.Run(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// powerOff powers vm off and checks that QEMU ended cleanly.
func powerOff(t *testing.T, vm *VM) {
	t.Helper()
	if err := vm.Send("poweroff\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- vm.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait after poweroff: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("QEMU still runs 60s after poweroff; console ends with:\n%s", vm.console.tail())
	}
	if code := vm.ExitCode(); code != 0 {
		t.Errorf("ExitCode after poweroff = %d, want 0", code)
	}
}

func TestBoot(t *testing.T) {
	t.Parallel()
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	vm := bootTestinit(t, "boot", Config{CPUs: 2, Disks: []string{disk}})

	if got := run(t, vm, "echo hello 'quoted  words'"); got != "hello quoted  words\n" {
		t.Errorf("Run(echo) = %q", got)
	}
	cmdline := run(t, vm, "cat /proc/cmdline")
	for _, want := range []string{"quiet", "console=ttyS0", "panic=-1"} {
		if !slices.Contains(strings.Fields(cmdline), want) {
			t.Errorf("/proc/cmdline = %q, want %q in it", cmdline, want)
		}
	}
	for dir, want := range map[string]string{"/sys/class/net": "eth0", "/sys/block": "vda", "/sys/devices/system/cpu": "cpu1"} {
		if names := strings.Fields(run(t, vm, "ls "+dir)); !slices.Contains(names, want) {
			t.Errorf("%s holds %q, want %s", dir, names, want)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	out, err := vm.Run(ctx, "echo before; false")
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Status != 1 || out != "before\n" {
		t.Errorf("Run(false) = %q, %v; want \"before\\n\" and exit status 1", out, err)
	}
	if _, err := vm.Run(ctx, "nosuchcommand"); !errors.As(err, &exit) || exit.Status != 127 {
		t.Errorf("Run(nosuchcommand) = %v, want exit status 127", err)
	}

	powerOff(t, vm)
	if _, err := vm.Expect(t.Context(), regexp.MustCompile("never printed")); !errors.Is(err, ErrExited) {
		t.Errorf("Expect after exit = %v, want ErrExited", err)
	} else if !strings.Contains(err.Error(), "console ends with") {
		t.Errorf("Expect's error shows no console: %v", err)
	}
}

// TestBootPanic boots without an initramfs: the kernel panics, panic=-1 ends
// QEMU, and Expect and Wait say so at once instead of at a timeout.
func TestBootPanic(t *testing.T) {
	t.Parallel()
	img := bootImage(t)
	vm, err := Start(t.Context(), Config{Kernel: img.kernel, Log: LineWriter(t.Logf, "panic: ")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout)
	defer cancel()
	start := time.Now()
	_, err = vm.Expect(ctx, regexp.MustCompile("testinit ready"))
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "Kernel panic") {
		t.Errorf("Expect = %v, want ErrExited showing the panic", err)
	}
	t.Logf("panicked and exited in %v", time.Since(start).Round(100*time.Millisecond))
	if err := vm.Wait(); err == nil || !strings.Contains(err.Error(), "Unable to mount root") {
		t.Errorf("Wait = %v, want the panic", err)
	}
}

// TestNetwork joins two VMs, one with each NIC model, on one switch, sends a
// raw broadcast frame from one to the other, and reaches a guest server
// through a host forward on the user-mode NIC beside it.
func TestNetwork(t *testing.T) {
	t.Parallel()
	img := bootImage(t)
	nw, err := NewNetwork()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Close() })

	var a, b *VM
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() { a, errA = boot(t, img, "a", Config{Net: nw, HostForwards: []Forward{{GuestPort: 8080}}}) })
	b, errB = boot(t, img, "b", Config{Net: nw, NIC: "e1000"})
	wg.Wait()
	if err := errors.Join(errA, errB); err != nil {
		t.Fatal(err)
	}

	for _, vm := range []*VM{a, b} {
		if nets := strings.Fields(run(t, vm, "ls /sys/class/net")); !slices.Contains(nets, "eth0") || !slices.Contains(nets, "eth1") {
			t.Fatalf("/sys/class/net holds %q, want eth0 and eth1", nets)
		}
	}
	aMAC := strings.TrimSpace(run(t, a, "cat /sys/class/net/eth1/address"))
	if aMAC == userMAC || !strings.HasPrefix(aMAC, "52:54:00:12:34:") {
		t.Errorf("a's switch NIC has MAC %q, want 52:54:00:12:34:NN other than %s", aMAC, userMAC)
	}
	if bMAC := strings.TrimSpace(run(t, b, "cat /sys/class/net/eth1/address")); bMAC == aMAC {
		t.Errorf("a and b share the MAC %s", aMAC)
	}

	// The user-mode NIC beside the switch: slirp forwards a host port to a's server.
	run(t, a, "ifup eth0 10.0.2.15/24; serve 8080 hello-from-a")
	hostPort := a.HostPort(8080)
	if hostPort == 0 {
		t.Fatal("HostPort(8080) = 0")
	}
	var reply []byte
	for try := 0; ; try++ {
		reply, err = fetch(fmt.Sprintf("127.0.0.1:%d", hostPort))
		if err == nil && len(reply) > 0 || try == 20 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if string(reply) != "hello-from-a" {
		t.Errorf("host port %d forwarded to a:8080 answered %q, %v; want hello-from-a", hostPort, reply, err)
	}

	// The switch: b waits for a frame while a sends one every half second.
	run(t, a, "ifup eth1")
	run(t, b, "ifup eth1")
	type result struct {
		out string
		err error
	}
	got := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
		defer cancel()
		out, err := b.Run(ctx, "recvframe eth1 60")
		got <- result{out, err}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-got:
			if r.err != nil {
				t.Fatal(r.err)
			}
			if want := aMAC + " frame-from-a\n"; r.out != want {
				t.Errorf("b received %q, want %q", r.out, want)
			}
			powerOff(t, a)
			powerOff(t, b)
			return
		case <-tick.C:
			run(t, a, "sendframe eth1 frame-from-a")
		}
	}
}

func fetch(addr string) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return io.ReadAll(c)
}

// TestNetboot boots through QEMU's iPXE ROM, with an iPXE script, the kernel
// and the initramfs served by slirp's TFTP server.
func TestNetboot(t *testing.T) {
	t.Parallel()
	img := bootImage(t)
	root := t.TempDir()
	script := "#!ipxe\nkernel vmlinuz console=ttyS0 quiet panic=-1\ninitrd initrd.img\nboot\n"
	if err := os.WriteFile(filepath.Join(root, "boot.ipxe"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, from := range map[string]string{"vmlinuz": img.kernel, "initrd.img": img.initrd} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	vm := bootTestinit(t, "netboot", Config{Netboot: &Netboot{TFTPRoot: root, Bootfile: "boot.ipxe"}})
	if !strings.Contains(vm.Console(), "boot.ipxe... ok") {
		t.Error("the console does not show iPXE fetching boot.ipxe")
	}
	if cmdline := run(t, vm, "cat /proc/cmdline"); !strings.Contains(cmdline, "console=ttyS0 quiet") {
		t.Errorf("/proc/cmdline = %q, want the iPXE script's", cmdline)
	}
	powerOff(t, vm)
}

// fakeQEMU writes a script that stands in for QEMU: it ignores its arguments
// and runs body with the console on its standard input and output.
func fakeQEMU(t *testing.T, body string) Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qemu")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{Kernel: "unused", QEMU: path, Log: LineWriter(t.Logf, "fake: ")}
}

// TestRunShell serves Run with a real shell, proving the protocol needs no
// more than POSIX sh.
func TestRunShell(t *testing.T) {
	vm, err := Start(t.Context(), fakeQEMU(t, "echo fake console ready; exec /bin/sh 2>&1"))
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := vm.ExpectString(ctx, "fake console ready"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd, out string
		status   int
	}{
		{cmd: "echo hi", out: "hi\n"},
		{cmd: "printf 'no newline'", out: "no newline"},
		{cmd: "echo one; echo two >&2", out: "one\ntwo\n"},
		{cmd: "echo 'VMTEST''_E_x' 0", out: "VMTEST_E_x 0\n"},
		{cmd: "echo out; (exit 3)", out: "out\n", status: 3},
		{cmd: "false", status: 1},
	} {
		out, err := vm.Run(ctx, tc.cmd)
		var exit *ExitError
		switch {
		case tc.status == 0 && err != nil:
			t.Errorf("Run(%q): %v", tc.cmd, err)
		case tc.status != 0 && (!errors.As(err, &exit) || exit.Status != tc.status || exit.Output != tc.out):
			t.Errorf("Run(%q) error = %v, want exit status %d with output %q", tc.cmd, err, tc.status, tc.out)
		}
		if out != tc.out {
			t.Errorf("Run(%q) = %q, want %q", tc.cmd, out, tc.out)
		}
	}
	if _, err := vm.Run(ctx, "echo a\necho b"); err == nil {
		t.Error("Run accepted a command of two lines")
	}

	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if _, err := vm.Expect(short, regexp.MustCompile("never printed")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Expect past its deadline = %v, want DeadlineExceeded", err)
	}

	if err := vm.Send("exit 0\n"); err != nil {
		t.Fatal(err)
	}
	if err := vm.Wait(); err != nil {
		t.Errorf("Wait after exit 0 = %v", err)
	}
	if code := vm.ExitCode(); code != 0 {
		t.Errorf("ExitCode = %d, want 0", code)
	}
	if !strings.Contains(vm.Console(), "fake console ready") {
		t.Errorf("Console() = %q, misses the first line", vm.Console())
	}
}

func TestExpectCursorAndExit(t *testing.T) {
	vm, err := Start(t.Context(), fakeQEMU(t, `printf 'n=1\nn=2\n'; echo boom >&2; exit 3`))
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	re := regexp.MustCompile(`n=(\d)`)
	for _, want := range []string{"1", "2"} {
		m, err := vm.Expect(ctx, re)
		if err != nil {
			t.Fatal(err)
		}
		if m[1] != want {
			t.Errorf("Expect matched n=%s, want n=%s", m[1], want)
		}
	}
	_, err = vm.Expect(ctx, re)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "n=2") || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Expect past the end = %v, want ErrExited with the console's and stderr's ends", err)
	}
	if err := vm.Wait(); err == nil || vm.ExitCode() != 3 {
		t.Errorf("Wait = %v, ExitCode = %d; want an error and 3", err, vm.ExitCode())
	}
}

func TestWaitSeesPanic(t *testing.T) {
	vm, err := Start(t.Context(), fakeQEMU(t, `echo "Kernel panic - not syncing: Attempted to kill init!"`))
	if err != nil {
		t.Fatal(err)
	}
	if err := vm.Wait(); err == nil || !strings.Contains(err.Error(), "Attempted to kill init") {
		t.Errorf("Wait = %v, want the panic", err)
	}
}

func TestKernelCmdline(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "console=ttyS0 panic=-1"},
		{"quiet", "quiet console=ttyS0 panic=-1"},
		{"console=ttyS0,115200 panic=5", "console=ttyS0,115200 panic=5"},
		{"console=tty0", "console=tty0 console=ttyS0 panic=-1"},
		{"xconsole=ttyS0", "xconsole=ttyS0 console=ttyS0 panic=-1"},
	} {
		if got := kernelCmdline(tc.in); got != tc.want {
			t.Errorf("kernelCmdline(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestQEMUArgs(t *testing.T) {
	nw, err := NewNetwork()
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	args, fwd, err := qemuArgs(Config{
		Kernel: "k", Initrd: "i", Memory: 1024, CPUs: 2, NIC: "e1000", Net: nw,
		HostForwards: []Forward{{HostPort: 2222, GuestPort: 22}, {GuestPort: 2379}},
		Disks:        []string{"/d,1.img"}, ExtraArgs: []string{"-x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	if fwd[22] != 2222 || fwd[2379] == 0 {
		t.Errorf("forwards = %v, want 22->2222 and 2379 on a picked port", fwd)
	}
	for _, want := range []string{
		"-accel tcg", "-m 1024 -smp 2", "-no-reboot", "-display none", "-nodefaults",
		"-kernel k -append console=ttyS0 panic=-1 -initrd i",
		fmt.Sprintf("-netdev user,id=user0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=tcp:127.0.0.1:%d-:2379 -device e1000,netdev=user0,mac=52:54:00:12:34:56", fwd[2379]),
		"-netdev stream,id=switch0,server=off,addr.type=unix,addr.path=" + nw.Socket() + " -device e1000,netdev=switch0,mac=52:54:00:12:34:01",
		"-drive file=/d,,1.img,format=raw,if=virtio -x",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("QEMU args %q lack %q", line, want)
		}
	}

	args, _, err = qemuArgs(Config{Netboot: &Netboot{TFTPRoot: "/srv", Bootfile: "boot.ipxe"}})
	if err != nil {
		t.Fatal(err)
	}
	line = strings.Join(args, " ")
	for _, want := range []string{"-boot n -fw_cfg name=etc/sercon-port,string=\xf8\x03", "-netdev user,id=user0,tftp=/srv,bootfile=boot.ipxe -device virtio-net-pci", "-m 512 -smp 1"} {
		if !strings.Contains(line, want) {
			t.Errorf("QEMU args %q lack %q", line, want)
		}
	}
	if strings.Contains(line, "-kernel") {
		t.Errorf("netboot args %q name a kernel", line)
	}

	for _, bad := range []Config{{}, {Kernel: "k", Netboot: &Netboot{}}, {Netboot: &Netboot{}, Append: "x"}} {
		if _, _, err := qemuArgs(bad); err == nil {
			t.Errorf("qemuArgs(%+v) accepted it", bad)
		}
	}
}

// TestSwitch drives the Network with three fake QEMU backends: broadcast
// floods, unicast to a learnt MAC reaches that port only.
func TestSwitch(t *testing.T) {
	nw, err := NewNetwork()
	if err != nil {
		t.Fatal(err)
	}
	defer nw.Close()
	var ports [3]net.Conn
	for i := range ports {
		if ports[i], err = net.Dial("unix", nw.Socket()); err != nil {
			t.Fatal(err)
		}
		defer ports[i].Close()
	}
	mac := func(i int) []byte { return []byte{0x52, 0x54, 0, 0x12, 0x34, byte(i + 1)} }
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	send := func(from int, dst []byte, text string) {
		f := slices.Concat(dst, mac(from), []byte{0x88, 0xb5}, []byte(text))
		msg := binary.BigEndian.AppendUint32(nil, uint32(len(f)))
		if _, err := ports[from].Write(append(msg, f...)); err != nil {
			t.Fatal(err)
		}
	}
	recv := func(at int, wait time.Duration) string {
		ports[at].SetReadDeadline(time.Now().Add(wait))
		var hdr [4]byte
		if _, err := io.ReadFull(ports[at], hdr[:]); err != nil {
			return ""
		}
		f := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(ports[at], f); err != nil {
			t.Fatal(err)
		}
		return string(f[14:])
	}
	// The switch accepts ports asynchronously; frames sent before that are lost.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		nw.mu.Lock()
		n := len(nw.ports)
		nw.mu.Unlock()
		if n == len(ports) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the switch accepted %d ports of %d", n, len(ports))
		}
	}
	for i := range ports {
		send(i, bcast, fmt.Sprintf("hello from %d", i))
	}
	for i := range ports {
		var got []string
		for range 2 {
			got = append(got, recv(i, 5*time.Second))
		}
		slices.Sort(got)
		var want []string
		for j := range ports {
			if j != i {
				want = append(want, fmt.Sprintf("hello from %d", j))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("port %d received %q, want %q", i, got, want)
		}
	}
	send(0, mac(1), "to 1 only")
	if got := recv(1, 5*time.Second); got != "to 1 only" {
		t.Errorf("port 1 received %q, want the unicast", got)
	}
	if got := recv(2, 300*time.Millisecond); got != "" {
		t.Errorf("port 2 received %q, a unicast for port 1", got)
	}
}

func TestLineWriter(t *testing.T) {
	var lines []string
	w := LineWriter(func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }, "vm: ")
	io.WriteString(w, "\x1bc\x1b[?7l\x1b[2Jone\r\ntw")
	io.WriteString(w, "o\nthree")
	if want := []string{"vm: one", "vm: two"}; !slices.Equal(lines, want) {
		t.Errorf("lines = %q, want %q", lines, want)
	}
}
