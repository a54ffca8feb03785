package cgroups

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corebox/corebox/vmtest"
)

// vmTests are the tests run again inside corebox's kernel, where the
// unified hierarchy is the whole host (pure cgroup v2, with controllers).
const vmTests = `^(TestMemoryLimitOOMKill|TestPidsLimitStopsForkBomb|TestCPUWrittenAndEnforced|TestKillForkingProcess|TestFreezeThaw|TestUnifiedCloneIntoCgroupAndKill|TestUnifiedDeviceFilter|TestBadPathsRejected)$`

// vmInit runs when this test binary is PID 1 of the VM: it mounts what
// the tests need, runs vmTests, prints the verdict and powers off.
func vmInit(m *testing.M) {
	for _, mnt := range []struct{ src, dir, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"cgroup2", "/sys/fs/cgroup", "cgroup2"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		os.MkdirAll(mnt.dir, 0o755)
		if err := unix.Mount(mnt.src, mnt.dir, mnt.fstype, 0, ""); err != nil {
			fmt.Printf("cgroups-vm: mounting %s: %v\n", mnt.dir, err)
		}
	}
	os.Args = []string{os.Args[0], "-test.v", "-test.run", vmTests, "-test.timeout", "5m"}
	code := m.Run()
	fmt.Printf("CGROUPS-VM-RESULT %d\n", code)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

// TestVMPureV2 boots corebox's kernel with this test binary as /init and
// runs the enforcement tests there, on pure cgroup v2.
func TestVMPureV2(t *testing.T) {
	needRoot(t)
	dir := os.Getenv("COREBOX_IMAGE_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "out")
	}
	kernel := filepath.Join(dir, "vmlinuz")
	missing := func(format string, args ...any) {
		if os.Getenv("COREBOX_VM") == "1" {
			t.Fatalf("COREBOX_VM=1: "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if _, err := os.Stat(kernel); err != nil {
		missing("no kernel %s (run ./mkimage.sh, or set COREBOX_IMAGE_DIR): %v", kernel, err)
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		missing("no QEMU: %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing("no /bin/busybox to put in the VM: %v", err)
	}
	work := t.TempDir()
	bin := filepath.Join(work, "cgroups.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the test binary: %v\n%s", err, out)
	}
	initrd := filepath.Join(work, "initrd.img")
	if err := vmtest.PackInitramfs(initrd, bin, map[string]string{"bin/busybox": "/bin/busybox"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	vm, err := vmtest.Start(ctx, vmtest.Config{
		Kernel: kernel, Initrd: initrd, Append: "quiet", Memory: 512, CPUs: 1,
		Log: vmtest.LineWriter(t.Logf, "vm: "),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	if err := vm.ExpectString(ctx, "CGROUPS-VM-RESULT"); err != nil {
		t.Fatalf("waiting for the tests in the VM: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	res := regexp.MustCompile(`CGROUPS-VM-RESULT (\d+)`).FindStringSubmatch(vm.Console())
	if res == nil || res[1] != "0" {
		t.Fatalf("tests in the VM failed (%v); console above", res)
	}
	for _, name := range []string{"TestMemoryLimitOOMKill", "TestPidsLimitStopsForkBomb", "TestCPUWrittenAndEnforced", "TestUnifiedDeviceFilter"} {
		if !regexp.MustCompile(`--- PASS: ` + name + ` `).MatchString(vm.Console()) {
			t.Errorf("%s did not pass in the VM (skipped?)", name)
		}
	}
}
