package boottest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// makeDisk writes a 128 MiB GPT disk image with one partition named ROOT
// holding a 48 MiB ext4 file system (so that init has to grow it) with the
// image's kernel and initramfs in /boot.
func makeDisk(t *testing.T, img string) string {
	t.Helper()
	for _, tool := range []string{"sfdisk", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed to build a test disk (Debian packages fdisk, e2fsprogs; mkimage.sh installs them)", tool)
		}
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(128 << 20)
	f.Close()
	sh := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		if name == "sfdisk" {
			cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, name=ROOT\n")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	sh("sfdisk", "-q", disk)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "boot"), 0o755)
	for _, f := range []string{"vmlinuz", "initramfs.img"} {
		b, err := os.ReadFile(filepath.Join(img, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(tree, "boot", f), b, 0o644)
	}
	sh("mkfs.ext4", "-q", "-F", "-L", "ROOT", "-d", tree, "-E", "offset=1048576", disk, "48M")
	return disk
}

// TestDiskVarAndKexec boots with a disk: /var is the ROOT partition, grown
// to fill it, and the machine id persists on it; then `systemctl kexec`
// boots the kernel and initramfs stored in /var/boot, without firmware.
func TestDiskVarAndKexec(t *testing.T) {
	t.Parallel()
	img := image(t)
	ctx := testContext(t)
	cfg := direct(img, "corebox.debug=1")
	cfg.Disks = []string{makeDisk(t, img)}
	vm, _, _ := boot(t, ctx, cfg)
	if !strings.Contains(vm.Console(), "grew /var to fill its partition") {
		t.Error("init did not grow the ROOT file system")
	}
	if err := vm.ExpectString(ctx, "# "); err != nil {
		t.Fatal(err)
	}
	out := run(t, ctx, vm, `while read -r dev mnt fs rest; do if [ "$mnt" = /var ]; then echo var=$fs; fi; done < /proc/mounts`)
	if !strings.Contains(out, "var=ext4") {
		t.Fatalf("/var is not the ext4 ROOT partition: %q", out)
	}
	idRE := regexp.MustCompile(`id=([0-9a-f]{32})`)
	first := idRE.FindStringSubmatch(run(t, ctx, vm, "read -r id < /var/lib/corebox/machine-id; echo id=$id"))
	if first == nil {
		t.Fatal("no machine id in /var/lib/corebox")
	}
	out = run(t, ctx, vm, "systemctl kexec --kernel /var/boot/nope --initrd /var/boot/initramfs.img || echo failed=$?")
	if !strings.Contains(out, "failed=1") || !strings.Contains(out, "/var/boot/nope") {
		t.Fatalf("kexec of a missing kernel: %q", out)
	}
	if err := vm.Send("systemctl kexec --kernel /var/boot/vmlinuz --initrd /var/boot/initramfs.img --append 'console=ttyS0 quiet corebox.debug=1 kexec_marker=1'\n"); err != nil {
		t.Fatal(err)
	}
	kctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := vm.ExpectString(kctx, "init: shutdown action=kexec"); err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Expect(kctx, readyRE); err != nil {
		t.Fatalf("no second boot after kexec: %v", err)
	}
	if err := vm.ExpectString(ctx, "# "); err != nil {
		t.Fatal(err)
	}
	out = run(t, ctx, vm, "read -r c < /proc/cmdline; echo cmdline=$c")
	if !strings.Contains(out, "kexec_marker=1") {
		t.Fatalf("kexec'd kernel's command line: %q", out)
	}
	second := idRE.FindStringSubmatch(run(t, ctx, vm, "read -r id < /etc/machine-id; echo id=$id"))
	if second == nil || second[1] != first[1] {
		t.Fatalf("machine id changed across boots: %v then %v", first, second)
	}
	vm.Send("systemctl poweroff\n")
	if err := vm.Wait(); err != nil {
		t.Fatalf("poweroff: %v", err)
	}
}
