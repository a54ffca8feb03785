package container_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/corebox/corebox/applets/rkt/container"
	"github.com/corebox/corebox/applets/rkt/container/containertest"
)

// extraFiles is a pipe and a file to pass as descriptors 3 and 4: the
// read end of the pipe, its write end, and the file holding "from-host\n".
func extraFiles(t *testing.T) (r, w, f *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	f = tempFile(t)
	if _, err := f.WriteString("from-host\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	return r, w, f
}

// The extra files are the process's descriptors 3 and 4, open, and no
// other descriptor above 2 is.
func TestExtraFiles(t *testing.T) {
	containertest.RequireRoot(t)
	r, w, f := extraFiles(t)
	spec := containertest.Spec("sh", "-c", `echo hi >&3; read l <&4; echo "got $l" >&3; echo from-app >&4; ls /proc/$$/fd; true`)
	bundle := containertest.Bundle(t, spec)
	out, errOut := tempFile(t), tempFile(t)
	c, err := container.Create(context.Background(), container.Options{
		ID: "extra", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t),
		Stdout: out, Stderr: errOut, ExtraFiles: []*os.File{w, f},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	w.Close() // the container's copy is the last: EOF when it exits
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	code, err := c.Wait(context.Background())
	if err != nil || code != 0 {
		t.Fatalf("exit %d, %v: %s", code, err, readAll(t, errOut))
	}
	piped, err := io.ReadAll(r)
	if err != nil || string(piped) != "hi\ngot from-host\n" {
		t.Errorf("through descriptor 3: %q, %v", piped, err)
	}
	if b, err := os.ReadFile(f.Name()); err != nil || string(b) != "from-host\nfrom-app\n" {
		t.Errorf("file through descriptor 4: %q, %v", b, err)
	}
	if fds := strings.Join(strings.Fields(readAll(t, out)), " "); fds != "0 1 2 3 4" {
		t.Errorf("descriptors of the process: %q, want 0 1 2 3 4", fds)
	}
}

func TestExecExtraFiles(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sleep", "100")
	bundle := containertest.Bundle(t, spec)
	c, err := container.Create(context.Background(), container.Options{ID: "execextra", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r, w, _ := extraFiles(t)
	out := tempFile(t)
	p := *spec.Process
	p.Args = []string{"sh", "-c", "echo exec >&3; ls /proc/$$/fd; true"}
	proc, err := c.Exec(context.Background(), container.ExecOptions{Process: &p, Stdout: out, Stderr: out, ExtraFiles: []*os.File{w}})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if code, err := proc.Wait(context.Background()); err != nil || code != 0 {
		t.Fatalf("exec exit %d, %v: %s", code, err, readAll(t, out))
	}
	if piped, err := io.ReadAll(r); err != nil || string(piped) != "exec\n" {
		t.Errorf("through descriptor 3: %q, %v", piped, err)
	}
	if fds := strings.Join(strings.Fields(readAll(t, out)), " "); fds != "0 1 2 3" {
		t.Errorf("descriptors of the exec'd process: %q, want 0 1 2 3", fds)
	}
}

// A closed extra file is refused, naming its descriptor, and nothing is
// made.
func TestClosedExtraFileRefused(t *testing.T) {
	containertest.RequireRoot(t)
	_, w, f := extraFiles(t)
	f.Close()
	spec := containertest.Spec("true")
	bundle := containertest.Bundle(t, spec)
	root := stateRoot(t)
	_, err := container.Create(context.Background(), container.Options{
		ID: "closed", Bundle: bundle, Spec: spec, StateRoot: root, ExtraFiles: []*os.File{w, f},
	})
	if err == nil || !strings.Contains(err.Error(), "descriptor 4") {
		t.Errorf("create with a closed extra file: %v, want an error naming descriptor 4", err)
	}
	if _, err := os.Stat(filepath.Join(root, "closed")); !os.IsNotExist(err) {
		t.Errorf("state of the refused container: %v, want none", err)
	}
}
