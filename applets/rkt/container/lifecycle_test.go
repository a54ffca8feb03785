package container_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corebox/corebox/applets/rkt/container"
	"github.com/corebox/corebox/applets/rkt/container/containertest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// run creates and starts a container from spec and waits for it; it
// returns the exit code and what the process wrote to stdout and stderr.
func run(t *testing.T, spec *specs.Spec) (int, string, string, error) {
	t.Helper()
	bundle := containertest.Bundle(t, spec)
	return runBundle(t, bundle, spec)
}

func runBundle(t *testing.T, bundle string, spec *specs.Spec) (int, string, string, error) {
	t.Helper()
	out, errOut := tempFile(t), tempFile(t)
	c, err := container.Create(context.Background(), container.Options{
		ID: strings.ReplaceAll(t.Name(), "/", "_"), Bundle: bundle, Spec: spec, StateRoot: stateRoot(t),
		Stdout: out, Stderr: errOut,
	})
	if err != nil {
		return -1, "", "", err
	}
	defer c.Delete(true)
	if err := c.Start(); err != nil {
		return -1, "", "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code, err := c.Wait(ctx)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return code, readAll(t, out), readAll(t, errOut), nil
}

func stateRoot(t *testing.T) string {
	return filepath.Join(t.TempDir(), "state")
}

func tempFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLifecycle(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sleep", "100")
	bundle := containertest.Bundle(t, spec)
	root := stateRoot(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := container.Create(context.Background(), container.Options{ID: "life", Bundle: bundle, Spec: spec, StateRoot: root, PidFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	st, err := c.State()
	if err != nil || st.Status != specs.StateCreated {
		t.Fatalf("after create: %+v, %v", st, err)
	}
	b, _ := os.ReadFile(pidFile)
	if string(b) == "" || string(b) != itoa(st.Pid) {
		t.Errorf("pid file %q, state pid %d", b, st.Pid)
	}
	if _, err := container.Create(context.Background(), container.Options{ID: "life", Bundle: bundle, Spec: spec, StateRoot: root}); !errors.Is(err, container.ErrExist) {
		t.Errorf("second create with the same id: %v", err)
	}
	// Another handle, as another process would have.
	c2, err := container.Load(root, "life", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Start(); err != nil {
		t.Fatal(err)
	}
	if st, _ := c2.State(); st.Status != specs.StateRunning {
		t.Fatalf("after start: %+v", st)
	}
	if err := c2.Start(); err == nil {
		t.Error("second start succeeded")
	}
	if err := c2.Delete(false); err == nil || !strings.Contains(err.Error(), "not stopped") {
		t.Fatalf("delete of a running container without force: %v", err)
	}
	if err := c2.Signal(unix.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	code, err := c.Wait(context.Background())
	if err != nil || code != 128+9 {
		t.Errorf("wait after SIGKILL: %d, %v", code, err)
	}
	if st, _ := c2.State(); st.Status != specs.StateStopped || st.Pid != 0 {
		t.Fatalf("after kill: %+v", st)
	}
	if err := c2.Signal(unix.SIGTERM, false); err == nil {
		t.Error("signalling a stopped container succeeded")
	}
	if err := c2.Delete(false); err != nil {
		t.Fatal(err)
	}
	if _, err := container.Load(root, "life", nil); !errors.Is(err, container.ErrNotExist) {
		t.Errorf("load after delete: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRunExitCodeAndOutput(t *testing.T) {
	containertest.RequireRoot(t)
	code, out, _, err := run(t, containertest.Spec("sh", "-c", "echo hello; exit 3"))
	if err != nil {
		t.Fatal(err)
	}
	if code != 3 || out != "hello\n" {
		t.Errorf("code %d, out %q", code, out)
	}
}
