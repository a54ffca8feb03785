package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corebox/corebox/applets/init/supervisor"
)

func TestClientServerOverSocket(t *testing.T) {
	dir := t.TempDir()
	units := filepath.Join(dir, "units")
	os.MkdirAll(units, 0o755)
	os.WriteFile(filepath.Join(units, "a.service"), []byte("[Service]\nExecStart=/bin/sh -c 'echo line-a; exec sleep 100'\n"), 0o644)
	sup, err := supervisor.New(supervisor.Config{UnitDirs: []string{units}, RuntimeDir: filepath.Join(dir, "run")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer func() { sup.StopAll(ctx); sup.Close() }()
	powered := make(chan string, 1)
	sock := filepath.Join(dir, "init.sock")
	l, err := Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	srvCtx, stop := context.WithCancel(ctx)
	defer stop()
	go NewServer(sup, func(r PowerRequest) error { powered <- r.Action; return nil }).Serve(srvCtx, l)
	c := NewClient(sock)

	if _, err := c.Status(ctx, "missing.service"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("status of a missing unit: %v", err)
	}
	st, err := c.Start(ctx, "a.service")
	if err != nil || st.ActiveState != "active" {
		t.Fatalf("start: %+v %v", st, err)
	}
	err = c.AddUnit(ctx, "bad.service", []byte("[Service]\nBogus=1\nExecStart=/bin/true\n"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Kind != "bad-request" || !strings.Contains(ce.Message, "bad.service:2") {
		t.Fatalf("adding a bad unit: %v", err)
	}
	if err := c.AddUnit(ctx, "b.service", []byte("[Service]\nExecStart=/bin/sleep 100\n")); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Start(ctx, "b.service"); err != nil || st.MainPID == 0 {
		t.Fatalf("start runtime unit: %+v %v", st, err)
	}
	if err := c.RemoveUnit(ctx, "b.service"); err != nil {
		t.Fatal(err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "a.service" {
		t.Fatalf("list: %+v %v", list, err)
	}
	// Logs with follow: the existing line, then a new one.
	lctx, lcancel := context.WithCancel(ctx)
	got := make(chan string, 16)
	go c.Logs(lctx, "a.service", 0, true, func(e Entry) error { got <- e.Message; return nil })
	waitLine := func(want string) {
		t.Helper()
		for {
			select {
			case m := <-got:
				if strings.Contains(m, want) {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("no log line %q", want)
			}
		}
	}
	waitLine("line-a")
	if _, err := c.Restart(ctx, "a.service"); err != nil {
		t.Fatal(err)
	}
	waitLine("Stopped")
	waitLine("line-a")
	lcancel()
	if err := c.System(ctx, "explode"); err == nil {
		t.Fatal("unknown system action accepted")
	}
	if err := c.System(ctx, "reboot"); err != nil {
		t.Fatal(err)
	}
	if a := <-powered; a != "reboot" {
		t.Fatalf("power action %q", a)
	}
	if err := c.Kexec(ctx, PowerRequest{}); err == nil || !strings.Contains(err.Error(), "no kernel") {
		t.Fatalf("kexec without a kernel: %v", err)
	}
}
