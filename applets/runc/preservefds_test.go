package runc

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pipe returns a pipe whose ends are closed when the test ends.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// fdList is what `ls /proc/$$/fd` printed, on one line.
func fdList(out string) string { return strings.Join(strings.Fields(out), " ") }

// run --preserve-fds 2 passes our descriptors 3 and 4 (a pipe and a file)
// to the container at the same numbers, and no other above 2.
func TestPreserveFDsRun(t *testing.T) {
	h := newHarness(t)
	r, w := pipe(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bundle := h.bundle("sh", "-c", `echo hi >&3; read l <&4; echo "got $l" >&3; echo from-app >&4; ls /proc/$$/fd; true`)
	code, out, errOut := h.runWithFiles([]*os.File{w, f}, "run", "--preserve-fds", "2", "--bundle", bundle, "p1")
	if code != 0 {
		t.Fatalf("run --preserve-fds 2: exit %d: %s", code, errOut)
	}
	w.Close()
	if piped, err := io.ReadAll(r); err != nil || string(piped) != "hi\ngot from-host\n" {
		t.Errorf("through descriptor 3: %q, %v", piped, err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "from-host\nfrom-app\n" {
		t.Errorf("file through descriptor 4: %q, %v", b, err)
	}
	if fds := fdList(out); fds != "0 1 2 3 4" {
		t.Errorf("descriptors in the container: %q, want 0 1 2 3 4", fds)
	}
}

// A descriptor to preserve that is not open, or a negative count, is an
// error naming it, and no container is left.
func TestPreserveFDsRefused(t *testing.T) {
	h := newHarness(t)
	bundle := h.bundle("true")
	for _, tc := range []struct {
		cmd, n, want string
	}{
		{"create", "1", "descriptor 3 is not open"},
		{"run", "1", "descriptor 3 is not open"},
		{"create", "-1", "must be 0 or more"},
	} {
		code, _, errOut := h.run(tc.cmd, "--preserve-fds", tc.n, "--bundle", bundle, "p2")
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s --preserve-fds %s without descriptor 3: exit %d, %q; want %q", tc.cmd, tc.n, code, errOut, tc.want)
		}
		if code, out, _ := h.run("list", "-q"); code != 0 || out != "" {
			t.Errorf("%s --preserve-fds %s: containers left: %q", tc.cmd, tc.n, out)
		}
	}
}

// exec --preserve-fds passes descriptors into a running container.
func TestPreserveFDsExec(t *testing.T) {
	h := newHarness(t)
	bundle := h.bundle("sleep", "100")
	if code, _, errOut := h.run("run", "-d", "--bundle", bundle, "p3"); code != 0 {
		t.Fatalf("run -d: %s", errOut)
	}
	defer h.run("delete", "-f", "p3")
	r, w := pipe(t)
	code, out, errOut := h.runWithFiles([]*os.File{w}, "exec", "--preserve-fds", "1", "p3", "sh", "-c", "echo exec >&3; ls /proc/$$/fd; true")
	if code != 0 {
		t.Fatalf("exec --preserve-fds 1: exit %d: %s", code, errOut)
	}
	w.Close()
	if piped, err := io.ReadAll(r); err != nil || string(piped) != "exec\n" {
		t.Errorf("through descriptor 3: %q, %v", piped, err)
	}
	if fds := fdList(out); fds != "0 1 2 3" {
		t.Errorf("descriptors of the exec'd process: %q, want 0 1 2 3", fds)
	}
	if code, _, errOut := h.run("exec", "--preserve-fds", "1", "p3", "true"); code != 1 || !strings.Contains(errOut, "descriptor 3 is not open") {
		t.Errorf("exec --preserve-fds 1 without descriptor 3: exit %d, %q", code, errOut)
	}
}

// Socket-activation descriptors (LISTEN_FDS for our pid) come first, with
// LISTEN_FDS and LISTEN_PID=1 in the container's environment, and the
// --preserve-fds ones after them, as runc passes them.
func TestListenFDs(t *testing.T) {
	h := newHarness(t)
	listenR, listenW := pipe(t)
	preservedR, preservedW := pipe(t)
	bundle := h.bundle("sh", "-c", `echo "$LISTEN_FDS $LISTEN_PID" >&3; echo preserved >&4; ls /proc/$$/fd; true`)
	// LISTEN_PID must be the runc process's own pid: a shell sets it
	// and execs runc.
	c := exec.Command("/bin/sh", "-c", `export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@"`,
		h.bin, "--root", h.root, "run", "--preserve-fds", "1", "--bundle", bundle, "p4")
	c.ExtraFiles = []*os.File{listenW, preservedW}
	out, err := c.Output()
	if err != nil {
		t.Fatalf("run with LISTEN_FDS=1: %v", err)
	}
	listenW.Close()
	preservedW.Close()
	if b, err := io.ReadAll(listenR); err != nil || string(b) != "1 1\n" {
		t.Errorf("through the listen descriptor 3: %q, %v; want LISTEN_FDS=1 LISTEN_PID=1", b, err)
	}
	if b, err := io.ReadAll(preservedR); err != nil || string(b) != "preserved\n" {
		t.Errorf("through the preserved descriptor 4: %q, %v", b, err)
	}
	if fds := fdList(string(out)); fds != "0 1 2 3 4" {
		t.Errorf("descriptors in the container: %q, want 0 1 2 3 4", fds)
	}
}
