// Package containertest builds what tests of the container engine and of
// its users (runc, rkt) need: root checks, a busybox root file system, a
// bundle with a configuration that runs a command, and the TestMain hook
// that lets a test binary serve as the engine's stub.
package containertest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/corebox/corebox/applets/rkt/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Busybox is the static busybox the root file systems are made from.
const Busybox = "/bin/busybox"

// busyboxApplets are linked into every test root.
var busyboxApplets = []string{"sh", "true", "false", "sleep", "ls", "cat", "echo", "id", "hostname",
	"mount", "grep", "stat", "readlink", "test", "wc", "ps", "kill", "touch", "mkdir", "rm", "ln", "env", "pwd", "head", "tr", "awk", "ulimit", "umask", "nproc"}

// RunStubIfAsked must be called first in TestMain of any test binary that
// creates containers: the engine re-executes the test binary as its stub.
func RunStubIfAsked() {
	if filepath.Base(os.Args[0]) == container.StubApplet {
		os.Exit(container.StubMain(context.Background(), os.Args[1:]))
	}
}

// RequireRoot skips t unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: namespaces, mounts and cgroups")
	}
	if _, err := os.Stat(Busybox); err != nil {
		t.Skipf("needs %s (Debian's busybox-static) for the test root file system", Busybox)
	}
}

// Rootfs fills dir with a busybox root: /bin/busybox and its applets as
// symlinks, and the empty directories a container mounts onto.
func Rootfs(t testing.TB, dir string) {
	t.Helper()
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(Busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Spec is a configuration for tests: container.DefaultSpec without a
// terminal, writable root, running args with PATH=/bin.
func Spec(args ...string) *specs.Spec {
	s := container.DefaultSpec(false, 0, 0)
	s.Process.Terminal = false
	s.Process.Args = args
	s.Process.Env = []string{"PATH=/bin", "TERM=xterm"}
	s.Root.Readonly = false
	return s
}

// Bundle makes a bundle in a fresh temporary directory: a busybox rootfs
// and config.json from spec (Spec("true") when nil). It returns the bundle
// directory.
func Bundle(t testing.TB, spec *specs.Spec) string {
	t.Helper()
	dir := t.TempDir()
	Rootfs(t, filepath.Join(dir, "rootfs"))
	if spec == nil {
		spec = Spec("true")
	}
	WriteSpec(t, dir, spec)
	return dir
}

// WriteSpec writes spec as dir/config.json.
func WriteSpec(t testing.TB, dir string, spec *specs.Spec) {
	t.Helper()
	b, err := json.MarshalIndent(spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}
