package boottest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corebox/corebox/vmtest"
)

// image returns the directory with vmlinuz, initramfs.img and boot.ipxe.
func image(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("COREBOX_IMAGE_DIR")
	if dir == "" {
		dir = "../out"
	}
	for _, f := range []string{"vmlinuz", "initramfs.img", "boot.ipxe"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			if os.Getenv("COREBOX_VM") == "1" {
				t.Fatalf("COREBOX_VM=1 but the image is incomplete: %v (run ./mkimage.sh)", err)
			}
			t.Skipf("no image in %s (%v): run ./mkimage.sh, or set COREBOX_IMAGE_DIR", dir, err)
		}
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

// The ready and emergency lines, matched whole (the console arrives in pieces).
var (
	readyRE     = regexp.MustCompile(`corebox ready version=(\S+) userspace=([0-9.]+)s units=(\d+) failed=(\d+)[^\n]*\n`)
	emergencyRE = regexp.MustCompile(`corebox emergency: ([^\r\n]*)\r*\n`)
)

// boot starts the image with extra kernel arguments and waits for the
// ready line; it returns the VM and the ready line's fields.
func boot(t *testing.T, ctx context.Context, cfg vmtest.Config) (*vmtest.VM, []string, time.Duration) {
	t.Helper()
	cfg.Log = vmtest.LineWriter(t.Logf, "console: ")
	if cfg.Memory == 0 {
		cfg.Memory = 1024
	}
	start := time.Now()
	vm, err := vmtest.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	m, err := vm.Expect(bctx, readyRE)
	if err != nil {
		t.Fatalf("waiting for the ready line: %v", err)
	}
	took := time.Since(start)
	t.Logf("ready after %.1f s of QEMU wall time (userspace %s s, version %s)", took.Seconds(), m[2], m[1])
	return vm, m, took
}

func direct(img, extra string) vmtest.Config {
	return vmtest.Config{
		Kernel: filepath.Join(img, "vmlinuz"),
		Initrd: filepath.Join(img, "initramfs.img"),
		Append: "console=ttyS0 quiet " + extra,
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func run(t *testing.T, ctx context.Context, vm *vmtest.VM, cmd string) string {
	t.Helper()
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := vm.Run(rctx, cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return out
}

// TestDirectBootAndPoweroff boots with -kernel/-initrd, uses the console
// shell (corebox.debug=1) and ends with `systemctl poweroff`, which must
// end QEMU with status 0.
func TestDirectBootAndPoweroff(t *testing.T) {
	t.Parallel()
	img := image(t)
	ctx := testContext(t)
	cfg := direct(img, "corebox.debug=1")
	cfg.HostForwards = []vmtest.Forward{{GuestPort: 2379}}
	vm, m, _ := boot(t, ctx, cfg)
	if m[4] != "0" {
		t.Errorf("%s units failed at boot", m[4])
	}
	// The shipped registry runs as a single-member cluster and answers the
	// v2 API through the port forward.
	registry := fmt.Sprintf("http://127.0.0.1:%d/v2/keys/boot-test", vm.HostPort(2379))
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequest("PUT", registry, strings.NewReader("value=hello"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 201 || resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry in the image did not take a write: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	resp, err := http.Get(registry + "?quorum=true")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"value":"hello"`) {
		t.Errorf("registry GET: %s", body)
	}
	if err := vm.ExpectString(ctx, "# "); err != nil { // the shell's prompt
		t.Fatal(err)
	}
	out := run(t, ctx, vm, "read -r h < /etc/hostname; echo host=$h")
	if !strings.Contains(out, "host=corebox") {
		t.Errorf("hostname from the embedded default config: %q", out)
	}
	out = run(t, ctx, vm, "systemctl list-units --all")
	if !strings.Contains(out, "multi-user.target") {
		t.Errorf("list-units: %q", out)
	}
	out = run(t, ctx, vm, "read -r cg < /proc/self/cgroup; echo cg=$cg")
	if !strings.Contains(out, "cg=0::/") {
		t.Errorf("not on cgroup v2: %q", out)
	}
	out = run(t, ctx, vm, "etcdctl set /from-guest yes && etcdctl get /boot-test && etcdctl cluster-health")
	if !strings.Contains(out, "hello") || !strings.Contains(out, "cluster is healthy") {
		t.Errorf("etcdctl in the guest: %q", out)
	}
	out = run(t, ctx, vm, "read -r id < /etc/machine-id; echo id=$id")
	if !regexp.MustCompile(`id=[0-9a-f]{32}`).MatchString(out) {
		t.Errorf("machine id: %q", out)
	}
	if err := vm.Send("systemctl poweroff\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- vm.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("QEMU after poweroff: %v (exit %d)", err, vm.ExitCode())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("QEMU did not exit after systemctl poweroff")
	}
	if !strings.Contains(vm.Console(), "init: shutdown action=poweroff") {
		t.Errorf("no orderly shutdown on the console")
	}
}

// TestIPXEBoot boots through QEMU's iPXE ROM from its built-in TFTP server
// with out/boot.ipxe, as a diskless machine would.
func TestIPXEBoot(t *testing.T) {
	t.Parallel()
	img := image(t)
	ctx := testContext(t)
	boot(t, ctx, vmtest.Config{Netboot: &vmtest.Netboot{TFTPRoot: img, Bootfile: "boot.ipxe"}})
}

// serve answers path on a loopback port reachable from the guest at
// 10.0.2.2 (QEMU's user-mode gateway); it returns the guest's URL.
func serve(t *testing.T, path, body string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return fmt.Sprintf("http://10.0.2.2:%d%s", l.Addr().(*net.TCPAddr).Port, path)
}

// TestConfigFromURL fetches the machine config over HTTP; its unit crashes
// and is restarted by init.
func TestConfigFromURL(t *testing.T) {
	t.Parallel()
	img := image(t)
	ctx := testContext(t)
	url := serve(t, "/machine.json", `{
  "hostname": "fromurl",
  "network": {"mode": "dhcp"},
  "units": [
    {"name": "crashy.service", "enable": true,
     "contents": "[Unit]\nDescription=Crashes on purpose\n[Service]\nExecStart=/bin/sh -c 'echo crashing; exit 3'\nRestart=on-failure\nRestartSec=200ms\n"}
  ],
  "update": {"server": "http://10.0.2.2:8000/v1/update/", "group": "stable"}
}`)
	vm, _, _ := boot(t, ctx, direct(img, "corebox.debug=1 corebox.config="+url))
	if err := vm.ExpectString(ctx, "# "); err != nil {
		t.Fatal(err)
	}
	out := run(t, ctx, vm, "read -r h < /etc/hostname; echo host=$h")
	if !strings.Contains(out, "host=fromurl") {
		t.Errorf("hostname: %q", out)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		out = run(t, ctx, vm, "systemctl status crashy || true") // exit 3 while it is not active
		m := regexp.MustCompile(`Restarts: (\d+)`).FindStringSubmatch(out)
		if m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 2 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("crashy.service was not restarted twice:\n%s", out)
		}
		time.Sleep(time.Second)
	}
	out = run(t, ctx, vm, "journalctl -u crashy -o cat")
	if strings.Count(out, "crashing") < 2 || !strings.Contains(out, "Main process exited, code=exited, status=3") {
		t.Errorf("journal of crashy.service:\n%s", out)
	}
}

// bootEmergency boots with corebox.config=url and waits for the emergency
// banner; it returns the VM and the banner's message.
func bootEmergency(t *testing.T, ctx context.Context, img, url string) (*vmtest.VM, string) {
	t.Helper()
	vm, err := vmtest.Start(ctx, vmtest.Config{Memory: 1024, Log: vmtest.LineWriter(t.Logf, "console: "),
		Kernel: filepath.Join(img, "vmlinuz"), Initrd: filepath.Join(img, "initramfs.img"),
		Append: "console=ttyS0 quiet corebox.config=" + url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Kill)
	bctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	m, err := vm.Expect(bctx, emergencyRE)
	if err != nil {
		t.Fatal(err)
	}
	return vm, m[1]
}

// TestBadConfigEmergency: a config with an unknown field and a bad value
// puts the node in the emergency state naming both; nothing is applied.
func TestBadConfigEmergency(t *testing.T) {
	t.Parallel()
	img := image(t)
	ctx := testContext(t)
	url := serve(t, "/bad.json", `{"hostname": "bad_host!", "netwrk": {}}`)
	vm, msg := bootEmergency(t, ctx, img, url)
	if !strings.Contains(msg, "netwrk") {
		t.Errorf("emergency message does not name the unknown field: %q", msg)
	}
	if strings.Contains(vm.Console(), "corebox ready") {
		t.Error("a node with a bad config reported ready")
	}
	// The emergency shell is on the console and the hostname was not applied.
	if err := vm.ExpectString(ctx, "# "); err != nil {
		t.Fatal(err)
	}
	out := run(t, ctx, vm, "read -r h < /etc/hostname || echo no-hostname-file; echo host=$h")
	if strings.Contains(out, "bad_host") {
		t.Errorf("half-applied config: %q", out)
	}
}

// TestConfigURLUnreachable: a config URL that does not answer is retried
// with backoff, then the node goes to the emergency state naming the URL.
func TestConfigURLUnreachable(t *testing.T) {
	t.Parallel()
	img := image(t)
	ctx := testContext(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now
	url := fmt.Sprintf("http://10.0.2.2:%d/machine.json", port)
	vm, msg := bootEmergency(t, ctx, img, url)
	if !strings.Contains(msg, url) {
		t.Errorf("emergency message does not name the URL: %q", msg)
	}
	if n := strings.Count(vm.Console(), "retry"); n < 2 {
		t.Logf("console shows %d retry lines", n)
	}
}

// TestStaticNetworkFromCmdline configures eth0 from the kernel's ip=
// parameter instead of DHCP: address, gateway, hostname and DNS.
func TestStaticNetworkFromCmdline(t *testing.T) {
	t.Parallel()
	img := image(t)
	ctx := testContext(t)
	vm, _, _ := boot(t, ctx, direct(img, "corebox.debug=1 ip=10.0.2.77::10.0.2.2:255.255.255.0:statichost:eth0:off:10.0.2.3"))
	if err := vm.ExpectString(ctx, "# "); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(vm.Console(), "network dhcp") {
		t.Error("DHCP ran although ip= gave a static address")
	}
	out := run(t, ctx, vm, "read -r h < /etc/hostname; echo host=$h; while read -r ns ip; do echo dns=$ip; done < /etc/resolv.conf")
	if !strings.Contains(out, "host=statichost") || !strings.Contains(out, "dns=10.0.2.3") {
		t.Errorf("hostname and resolv.conf: %q", out)
	}
	// /proc/net/route: the default route (destination 00000000) via 10.0.2.2 (little-endian hex).
	out = run(t, ctx, vm, `while read -r ifc dst gw rest; do if [ "$dst" = 00000000 ]; then echo default=$ifc,$gw; fi; done < /proc/net/route`)
	if !strings.Contains(out, "default=eth0,0202000A") {
		t.Errorf("default route: %q", out)
	}
}
