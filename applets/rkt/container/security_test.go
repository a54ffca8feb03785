package container_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corebox/corebox/applets/rkt/container"
	"github.com/corebox/corebox/applets/rkt/container/containertest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// CVE-2021-30465 and friends: a mount target that is a symlink out of the
// root is resolved inside the root. A plain path join would mount onto the
// host directory the symlink names, and the container would not see the
// mount at all.
func TestMountTargetSymlinkStaysInRoot(t *testing.T) {
	containertest.RequireRoot(t)
	host := t.TempDir() // a host directory the symlink points at
	spec := containertest.Spec("sh", "-c", "stat -f -c %T /evil/ && ls -a /evil/")
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/evil", Type: "tmpfs", Source: "tmpfs"})
	bundle := containertest.Bundle(t, spec)
	if err := os.Symlink(host, filepath.Join(bundle, "rootfs", "evil")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(host, "host-file"), []byte("x"), 0o644)
	code, out, errOut, err := runBundle(t, bundle, spec)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.HasPrefix(out, "tmpfs\n") || strings.Contains(out, "host-file") {
		t.Errorf("the mount did not land inside the root: exit %d, out %q, err %q", code, out, errOut)
	}
	// The target was made inside the root, under the symlink's path.
	if fi, err := os.Stat(filepath.Join(bundle, "rootfs", host)); err != nil || !fi.IsDir() {
		t.Errorf("expected the target at rootfs%s: %v", host, err)
	}
}

// CVE-2019-5736: the executable of a stub living in the container is a
// read-only clone, so a descriptor of it — taken through /proc/PID/exe, as
// a container process would — never opens for writing, not even after
// the stub is gone (ETXTBSY no longer protects it then).
func TestHostBinaryNotWritable(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("true")
	bundle := containertest.Bundle(t, spec)
	c, err := container.Create(context.Background(), container.Options{ID: "exe", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	st, _ := c.State()
	exe, err := os.OpenFile("/proc/"+itoa(st.Pid)+"/exe", unix.O_PATH, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	var a, b unix.Stat_t
	self, _ := os.Executable()
	unix.Fstat(int(exe.Fd()), &a)
	unix.Stat(self, &b)
	if a.Ino != b.Ino || a.Dev != b.Dev {
		t.Fatalf("/proc/%d/exe is not this binary (ino %d vs %d)", st.Pid, a.Ino, b.Ino)
	}
	// The file is on a read-only mount: opening it for writing fails
	// with EROFS even when no process runs it any more (this test
	// binary still runs it, so ETXTBSY is not the check).
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(exe.Fd()), &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Flags&unix.ST_RDONLY == 0 {
		t.Errorf("the stub's executable is on a writable mount (flags %#x)", fs.Flags)
	}
	if err := c.Delete(true); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile("/proc/self/fd/"+itoa(int(exe.Fd())), os.O_WRONLY, 0)
	if err == nil {
		f.Close()
		t.Fatal("the stub's executable opened for writing after the stub exited")
	}
}

// The stub is not dumpable: processes in the container cannot reach its
// /proc entries (its executable, its descriptors).
func TestStubNotReachableFromContainer(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("true")
	bundle := containertest.Bundle(t, spec)
	c, err := container.Create(context.Background(), container.Options{ID: "dump", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	out := tempFile(t)
	p := *spec.Process
	p.Args = []string{"sh", "-c", "readlink /proc/1/exe && echo REACHED; readlink /proc/1/fd/0 && echo REACHED; exit 0"}
	proc, err := c.Exec(context.Background(), container.ExecOptions{Process: &p, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := proc.Wait(context.Background()); err != nil || code != 0 {
		t.Fatalf("exec: %d, %v", code, err)
	}
	if s := readAll(t, out); strings.Contains(s, "REACHED") {
		t.Errorf("a container process reached the stub's /proc entries:\n%s", s)
	}
}

// CVE-2024-21626: the working directory is resolved inside the root with
// magic links refused; a descriptor that leads to a host directory (here
// stdin, opened on one) is no way out.
func TestCwdThroughLeakedDescriptorRefused(t *testing.T) {
	containertest.RequireRoot(t)
	hostDir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	spec := containertest.Spec("pwd")
	spec.Process.Cwd = "/proc/self/fd/0"
	bundle := containertest.Bundle(t, spec)
	out := tempFile(t)
	c, err := container.Create(context.Background(), container.Options{ID: "cwd", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t), Stdin: hostDir, Stdout: out})
	if err == nil {
		defer c.Delete(true)
		err = c.Start()
		if err == nil {
			c.Wait(context.Background())
		}
	}
	if err == nil || !strings.Contains(err.Error(), "process.cwd") {
		t.Errorf("cwd through a magic link: err %v, out %q; want a process.cwd error", err, readAll(t, out))
	}
}

// No descriptor beyond stdio reaches the container's process.
func TestNoDescriptorLeaks(t *testing.T) {
	containertest.RequireRoot(t)
	code, out, errOut, err := run(t, containertest.Spec("sh", "-c", "ls /proc/$$/fd; true"))
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || strings.Fields(out) == nil || strings.Join(strings.Fields(out), " ") != "0 1 2" {
		t.Errorf("descriptors of the container's process: %q (exit %d, %s)", out, code, errOut)
	}
}

// CVE-2025-31133: /dev/null must be the null device before it is bound
// over masked paths; here a mount turns it into a host file.
func TestMaskingWithFakeDevNullRefused(t *testing.T) {
	containertest.RequireRoot(t)
	fake := filepath.Join(t.TempDir(), "fake-null")
	os.WriteFile(fake, []byte("not null"), 0o644)
	spec := containertest.Spec("cat", "/proc/keys")
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dev/null", Type: "bind", Source: fake, Options: []string{"bind"}})
	_, out, _, err := run(t, spec)
	if err == nil || !strings.Contains(err.Error(), "/dev/null is not the null device") {
		t.Errorf("masking with a fake /dev/null: err %v, out %q", err, out)
	}
}

// runc's default masked and read-only paths are in effect.
func TestMaskedAndReadonlyPaths(t *testing.T) {
	containertest.RequireRoot(t)
	code, out, errOut, err := run(t, containertest.Spec("sh", "-c",
		`wc -c < /proc/keys; cat /proc/timer_list | wc -c; ls /sys/firmware | wc -l; echo x > /proc/sys/kernel/domainname && echo WROTE; exit 0`))
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out != "0\n0\n0\n" || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("exit %d, out %q, err %q", code, out, errOut)
	}
}

// The process gets the spec's capabilities, bounding set included.
func TestCapabilitiesDropped(t *testing.T) {
	containertest.RequireRoot(t)
	code, out, _, err := run(t, containertest.Spec("sh", "-c", "grep -E '^Cap(Eff|Prm|Bnd|Amb|Inh)' /proc/self/status; grep NoNewPrivs /proc/self/status"))
	if err != nil {
		t.Fatal(err)
	}
	// CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29);
	// ambient stays empty as with runc: raising needs the capability
	// inheritable, and runc's default has no inheritable set.
	for _, want := range []string{"CapInh:\t0000000000000000", "CapPrm:\t0000000020000420", "CapEff:\t0000000020000420", "CapBnd:\t0000000020000420", "CapAmb:\t0000000000000000", "NoNewPrivs:\t1"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in (exit %d)\n%s", want, code, out)
		}
	}
}

// A syscall the profile denies fails with EPERM in the container.
func TestSeccompDenies(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sh", "-c", "mkdir /tmp/x && echo MADE")
	spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	}
	code, out, errOut, err := run(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 || strings.Contains(out, "MADE") || !strings.Contains(errOut, "Operation not permitted") {
		t.Errorf("mkdir under a denying profile: exit %d, out %q, err %q", code, out, errOut)
	}
}

// The default profile lets a shell work and refuses namespace creation.
func TestSeccompDefaultProfile(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sh", "-c", "echo ok; ls / > /dev/null")
	code, out, errOut, err := run(t, spec)
	if err != nil || code != 0 || out != "ok\n" {
		t.Errorf("default profile: exit %d, out %q, err %q, %v", code, out, errOut, err)
	}
}
