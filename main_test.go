package main

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildOnce builds the binary the way mkimage.sh does, once per test run.
var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "corebox-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "corebox")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X github.com/corebox/corebox/internal/version.Version=test-1.2.3", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &buildError{out: string(out), err: err}
	}
	return bin, nil
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func binary(t *testing.T) string {
	t.Helper()
	bin, err := buildOnce()
	if err != nil {
		t.Fatalf("building corebox: %v", err)
	}
	return bin
}

func TestStaticallyLinked(t *testing.T) {
	f, err := elf.Open(binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has a PT_INTERP program header: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary imports shared libraries %v", libs)
	}
	if f.Type != elf.ET_EXEC {
		t.Fatalf("ELF type %v, want a static ET_EXEC", f.Type)
	}
}

func TestDispatch(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "systemctl")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		argv0    string
		args     []string
		wantCode int
		wantOut  string // substring of stdout
		wantErr  string // substring of stderr
	}{
		{"list", bin, []string{"--list"}, 0, "etcd\netcdctl\ninit\njournalctl\nrkt\nrunc\nsh\nsystemctl\n", ""},
		{"version", bin, []string{"--version"}, 0, "corebox test-1.2.3", ""},
		{"no args", bin, nil, 2, "", "applets: etcd etcdctl init journalctl rkt runc sh systemctl"},
		{"unknown applet", bin, []string{"frobnicate"}, 2, "", `unknown applet "frobnicate"`},
		{"unknown option", bin, []string{"--bogus"}, 2, "", `unknown option "--bogus"`},
		{"applet by argument", bin, []string{"sh", "-c", "echo via-arg"}, 0, "via-arg", ""},
		{"applet by argv0", filepath.Join(dir, "systemctl"), []string{"--help"}, 0, "usage: systemctl", ""},
		{"init off PID 1 needs --root", bin, []string{"init"}, 2, "", "not PID 1"},
		{"sh exit status", bin, []string{"sh", "-c", "exit 7"}, 7, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(tt.argv0, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantOut) || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Fatalf("exit %d stdout %q stderr %q; want exit %d, stdout ∋ %q, stderr ∋ %q", code, stdout.String(), stderr.String(), tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

func TestInstall(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	run := func(args ...string) (int, string) {
		out, err := exec.Command(bin, append([]string{"--install"}, args...)...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := run(dir); code != 0 {
		t.Fatalf("install: %d %s", code, out)
	}
	for _, a := range []string{"etcd", "etcdctl", "init", "journalctl", "sh", "systemctl"} {
		target, err := os.Readlink(filepath.Join(dir, a))
		if err != nil || target != bin {
			t.Fatalf("%s -> %q (%v), want %s", a, target, err, bin)
		}
	}
	// Again: existing corebox links are replaced.
	if code, out := run(dir); code != 0 {
		t.Fatalf("second install: %d %s", code, out)
	}
	// A real file is refused, and nothing else changes.
	os.Remove(filepath.Join(dir, "init"))
	os.Remove(filepath.Join(dir, "sh"))
	os.WriteFile(filepath.Join(dir, "sh"), []byte("#!/bin/sh\n"), 0o755)
	code, out := run(dir)
	if code != 1 || !strings.Contains(out, "refusing to replace "+filepath.Join(dir, "sh")) {
		t.Fatalf("install over a file: %d %s", code, out)
	}
	if _, err := os.Lstat(filepath.Join(dir, "init")); err == nil {
		t.Fatal("a refused install still created links")
	}
	if code, out := run(dir, "--force"); code != 0 {
		t.Fatalf("forced install: %d %s", code, out)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "sh")); target != bin {
		t.Fatalf("forced install left sh -> %q", target)
	}
	if code, out := run(); code != 2 || !strings.Contains(out, "missing DIR") {
		t.Fatalf("install without DIR: %d %s", code, out)
	}
}

// TestInitAsProcess runs `init --root` as an ordinary process and drives it
// with the systemctl and journalctl applets over its control socket.
func TestInitAsProcess(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	units := filepath.Join(root, "usr/lib/corebox/units")
	os.MkdirAll(units, 0o755)
	os.WriteFile(filepath.Join(units, "hello.service"), []byte("[Unit]\nDescription=Says hello\n[Service]\nExecStart=/bin/sh -c 'echo hello from unit; exec sleep 1000'\n[Install]\nWantedBy=multi-user.target\n"), 0o644)
	os.WriteFile(filepath.Join(units, "idle.service"), []byte("[Service]\nExecStart=/bin/sleep 1000\n"), 0o644)
	cfg := filepath.Join(root, "config.json")
	os.WriteFile(cfg, []byte(`{"hostname": "node1", "units": [{"name": "extra.service", "enable": true, "contents": "[Service]\nExecStart=/bin/sh -c 'echo extra; exec sleep 1000'\n"}]}`), 0o644)

	initCmd := exec.Command(bin, "init", "--root", root, "--config", cfg)
	var console bytes.Buffer
	var mu sync.Mutex
	initCmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return console.Write(p) })
	initCmd.Stderr = initCmd.Stdout
	if err := initCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer initCmd.Process.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		s := console.String()
		mu.Unlock()
		if strings.Contains(s, "corebox ready") {
			if !strings.Contains(s, "version=test-1.2.3") || !strings.Contains(s, "units=2 failed=0") {
				t.Fatalf("ready line: %s", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ready line; console:\n%s", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	env := append(os.Environ(), "COREBOX_INIT_SOCKET="+filepath.Join(root, "run/corebox/init.sock"))
	ctl := func(args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	steps := []struct {
		args     []string
		wantCode int
		want     []string
	}{
		{[]string{"systemctl", "list-units"}, 0, []string{"hello.service", "extra.service", "active", "running", "Says hello"}},
		{[]string{"systemctl", "is-active", "hello"}, 0, []string{"active"}},
		{[]string{"systemctl", "is-active", "idle"}, 3, []string{"inactive"}},
		{[]string{"systemctl", "status", "hello.service"}, 0, []string{"● hello.service - Says hello", "Loaded: loaded (" + units + "/hello.service; enabled)", "Active: active (running)", "Main PID:", "hello from unit"}},
		{[]string{"systemctl", "status", "nope"}, 4, []string{"Unit nope.service could not be found."}},
		{[]string{"systemctl", "cat", "hello"}, 0, []string{"# " + units + "/hello.service", "ExecStart=/bin/sh -c"}},
		{[]string{"systemctl", "start", "idle"}, 0, nil},
		{[]string{"systemctl", "is-active", "idle"}, 0, []string{"active"}},
		{[]string{"systemctl", "restart", "idle"}, 0, nil},
		{[]string{"systemctl", "stop", "idle"}, 0, nil},
		{[]string{"systemctl", "is-active", "idle"}, 3, []string{"inactive"}},
		{[]string{"systemctl", "start", "ghost"}, 4, []string{"Unit ghost.service not found"}},
		{[]string{"journalctl", "-u", "extra", "-o", "cat"}, 0, []string{"extra"}},
		{[]string{"journalctl", "-u", "hello", "-n", "1", "-o", "json"}, 0, []string{`"unit":"hello.service"`}},
		{[]string{"journalctl", "-o", "yaml"}, 1, []string{"unknown output format 'yaml'"}},
		{[]string{"systemctl", "daemon-reload"}, 0, nil},
		{[]string{"systemctl", "frob"}, 2, []string{`unknown command verb "frob"`}},
	}
	for _, s := range steps {
		code, out := ctl(s.args...)
		if code != s.wantCode {
			t.Errorf("%v: exit %d, want %d; output:\n%s", s.args, code, s.wantCode, out)
			continue
		}
		for _, w := range s.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", s.args, w, out)
			}
		}
	}
	// journalctl -f follows new lines.
	follow := exec.Command(bin, "journalctl", "-f", "-u", "idle", "-o", "cat")
	follow.Env = env
	var fout bytes.Buffer
	follow.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return fout.Write(p) })
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	ctl("systemctl", "start", "idle")
	deadline = time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		s := fout.String()
		mu.Unlock()
		if strings.Count(s, "Started idle.service") >= 3 { // two earlier starts, one new
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("journalctl -f did not show the new start:\n%s", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	follow.Process.Kill()
	follow.Wait()

	// Off PID 1, poweroff stops every unit and init exits 0.
	if code, out := ctl("systemctl", "poweroff"); code != 0 {
		t.Fatalf("poweroff: %d %s", code, out)
	}
	done := make(chan error, 1)
	go func() { done <- initCmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("init exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("init did not stop")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
