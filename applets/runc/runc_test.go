package runc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corebox/corebox/applets/rkt/container/containertest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// harness runs the runc applet as a real process with its own --root.
type harness struct {
	t    *testing.T
	bin  string
	root string
}

func newHarness(t *testing.T) *harness {
	containertest.RequireRoot(t)
	return &harness{t: t, bin: runcBinary(t), root: filepath.Join(t.TempDir(), "state")}
}

func (h *harness) cmd(args ...string) *exec.Cmd {
	return exec.Command(h.bin, append([]string{"--root", h.root}, args...)...)
}

// run returns exit status, stdout and stderr.
func (h *harness) run(args ...string) (int, string, string) {
	h.t.Helper()
	return h.runWithFiles(nil, args...)
}

// runWithFiles is run with extra as the command's descriptors 3, 4, ….
func (h *harness) runWithFiles(extra []*os.File, args ...string) (int, string, string) {
	h.t.Helper()
	// Files, not pipes: a detached container keeps its stdio open, and
	// exec.Cmd would wait for a pipe's writers to close.
	c := h.cmd(args...)
	c.ExtraFiles = extra
	dir := h.t.TempDir()
	out, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		h.t.Fatal(err)
	}
	defer out.Close()
	errOut, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		h.t.Fatal(err)
	}
	defer errOut.Close()
	c.Stdout, c.Stderr = out, errOut
	err = c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatal(err)
	}
	o, _ := os.ReadFile(out.Name())
	e, _ := os.ReadFile(errOut.Name())
	return code, string(o), string(e)
}

func (h *harness) state(id string) stateJSON {
	h.t.Helper()
	code, out, errOut := h.run("state", id)
	if code != 0 {
		h.t.Fatalf("state %s: exit %d: %s", id, code, errOut)
	}
	var s stateJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		h.t.Fatalf("state %s: %v: %q", id, err, out)
	}
	return s
}

// bundle writes a bundle whose config is `runc spec`'s, without a
// terminal, running args.
func (h *harness) bundle(args ...string) string {
	h.t.Helper()
	dir := h.t.TempDir()
	containertest.Rootfs(h.t, filepath.Join(dir, "rootfs"))
	if code, _, errOut := h.run("spec", "--bundle", dir); code != 0 {
		h.t.Fatalf("spec: %s", errOut)
	}
	spec := readSpec(h.t, dir)
	spec.Process.Terminal = false
	spec.Process.Args = args
	containertest.WriteSpec(h.t, dir, spec)
	return dir
}

func readSpec(t *testing.T, dir string) *specs.Spec {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func waitStatus(t *testing.T, h *harness, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.state(id).Status != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %s", id, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLifecycle(t *testing.T) {
	h := newHarness(t)
	bundle := h.bundle("sleep", "100")
	pidFile := filepath.Join(t.TempDir(), "pid")
	if code, _, errOut := h.run("create", "--bundle", bundle, "--pid-file", pidFile, "c1"); code != 0 {
		t.Fatalf("create: %s", errOut)
	}
	defer h.run("delete", "--force", "c1")
	s := h.state("c1")
	b, _ := os.ReadFile(pidFile)
	if s.Status != "created" || s.ID != "c1" || s.Bundle != bundle || strconv.Itoa(s.Pid) != string(b) || s.Version == "" {
		t.Fatalf("state after create: %+v (pid file %q)", s, b)
	}
	if code, _, errOut := h.run("create", "--bundle", bundle, "c1"); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("second create: exit %d, %q", code, errOut)
	}
	if code, _, errOut := h.run("start", "c1"); code != 0 {
		t.Fatalf("start: %s", errOut)
	}
	if s := h.state("c1"); s.Status != "running" {
		t.Fatalf("state after start: %+v", s)
	}
	if code, out, _ := h.run("list", "--format", "json"); code != 0 || !strings.Contains(out, `"id":"c1"`) {
		t.Errorf("list: %q", out)
	}
	if code, out, _ := h.run("list", "-q"); code != 0 || out != "c1\n" {
		t.Errorf("list -q: %q", out)
	}
	if code, out, _ := h.run("ps", "--format", "json", "c1"); code != 0 || out != "["+strconv.Itoa(s.Pid)+"]\n" {
		t.Errorf("ps: %q, want [%d]", out, s.Pid)
	}
	if code, _, errOut := h.run("delete", "c1"); code != 1 || !strings.Contains(errOut, "cannot delete container c1 that is not stopped: running") {
		t.Errorf("delete of a running container: exit %d, %q", code, errOut)
	}
	if code, _, errOut := h.run("kill", "c1", "KILL"); code != 0 {
		t.Fatalf("kill: %s", errOut)
	}
	waitStatus(t, h, "c1", "stopped")
	if s := h.state("c1"); s.Pid != 0 {
		t.Errorf("stopped with pid %d", s.Pid)
	}
	if code, _, errOut := h.run("kill", "c1"); code != 1 || !strings.Contains(errOut, "not running") {
		t.Errorf("kill of a stopped container: exit %d, %q", code, errOut)
	}
	if code, _, errOut := h.run("delete", "c1"); code != 0 {
		t.Fatalf("delete: %s", errOut)
	}
	if code, _, errOut := h.run("state", "c1"); code != 1 || !strings.Contains(errOut, `container \"c1\": container does not exist`) {
		t.Errorf("state after delete: exit %d, %q", code, errOut)
	}
}

func TestUnknownContainer(t *testing.T) {
	h := newHarness(t)
	for _, args := range [][]string{{"state", "nope"}, {"start", "nope"}, {"kill", "nope"}, {"delete", "nope"}, {"exec", "nope", "true"}} {
		if code, _, errOut := h.run(args...); code != 1 || !strings.Contains(errOut, "does not exist") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
	if code, _, _ := h.run("delete", "--force", "nope"); code != 0 {
		t.Errorf("delete --force of an unknown container: exit %d", code)
	}
}

func TestRunExitStatusAndStdio(t *testing.T) {
	h := newHarness(t)
	bundle := h.bundle("sh", "-c", "read x; echo got $x; echo err >&2; exit 7")
	c := h.cmd("run", "--bundle", bundle, "r1")
	c.Stdin = strings.NewReader("hello\n")
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 7 {
		t.Errorf("run: %v, want exit 7", err)
	}
	if out.String() != "got hello\n" || errOut.String() != "err\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
	if code, _, _ := h.run("state", "r1"); code != 1 {
		t.Error("run left the container behind")
	}
}

func TestRunForwardsSignals(t *testing.T) {
	h := newHarness(t)
	bundle := h.bundle("sh", "-c", `trap "exit 42" TERM; echo ready; while true; do sleep 1; done`)
	c := h.cmd("run", "--bundle", bundle, "r2")
	pr, pw, _ := os.Pipe()
	c.Stdout = pw
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	line, _ := bufio.NewReader(pr).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("container said %q", line)
	}
	c.Process.Signal(syscall.SIGTERM)
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 {
		t.Errorf("run after SIGTERM: %v, want exit 42", err)
	}
}

func TestExecAndDetach(t *testing.T) {
	h := newHarness(t)
	bundle := h.bundle("sleep", "100")
	if code, _, errOut := h.run("run", "-d", "--bundle", bundle, "e1"); code != 0 {
		t.Fatalf("run -d: %s", errOut)
	}
	defer h.run("delete", "-f", "e1")
	if code, out, errOut := h.run("exec", "--env", "X=1", "--cwd", "/tmp", "e1", "sh", "-c", "echo $X $(pwd) $(id -u); exit 3"); code != 3 || out != "1 /tmp 0\n" {
		t.Errorf("exec: exit %d, out %q, err %q", code, out, errOut)
	}
	if code, out, errOut := h.run("exec", "--user", "1000:1000", "e1", "id", "-u"); code != 0 || out != "1000\n" {
		t.Errorf("exec --user: exit %d, out %q, err %q", code, out, errOut)
	}
	proc := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(proc, []byte(`{"args":["sh","-c","echo from-file"],"cwd":"/","env":["PATH=/bin"],"user":{"uid":0,"gid":0}}`), 0o644)
	if code, out, errOut := h.run("exec", "--process", proc, "e1"); code != 0 || out != "from-file\n" {
		t.Errorf("exec --process: exit %d, out %q, err %q", code, out, errOut)
	}
	if code, _, errOut := h.run("exec", "e1", "no-such-command"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("exec of a missing command: exit %d, %q", code, errOut)
	}
	if code, _, errOut := h.run("pause", "e1"); code != 0 {
		t.Fatalf("pause: %s", errOut)
	}
	if s := h.state("e1"); s.Status != "paused" {
		t.Errorf("after pause: %s", s.Status)
	}
	if code, _, errOut := h.run("resume", "e1"); code != 0 {
		t.Fatalf("resume: %s", errOut)
	}
	if s := h.state("e1"); s.Status != "running" {
		t.Errorf("after resume: %s", s.Status)
	}
}

// `runc spec` writes Debian runc's default, plus the default seccomp
// profile.
func TestSpecMatchesRunc(t *testing.T) {
	h := newHarness(t)
	if _, err := os.Stat("/usr/bin/runc"); err != nil {
		t.Skip("needs Debian's runc to compare with")
	}
	for _, rootless := range []bool{false, true} {
		ours, theirs := t.TempDir(), t.TempDir()
		args := []string{"spec", "--bundle"}
		if rootless {
			args = []string{"spec", "--rootless", "--bundle"}
		}
		if code, _, errOut := h.run(append(args, ours)...); code != 0 {
			t.Fatal(errOut)
		}
		if out, err := exec.Command("/usr/bin/runc", append(args, theirs)...).CombinedOutput(); err != nil {
			t.Fatalf("runc spec: %v %s", err, out)
		}
		a, b := readSpec(t, ours), readSpec(t, theirs)
		if a.Linux.Seccomp == nil {
			t.Error("our spec has no seccomp profile")
		}
		a.Linux.Seccomp, a.Version, b.Version = nil, "", ""
		if !reflect.DeepEqual(a, b) {
			ja, _ := json.MarshalIndent(a, "", " ")
			jb, _ := json.MarshalIndent(b, "", " ")
			t.Errorf("rootless=%v: spec differs from runc's:\nours %s\nrunc %s", rootless, ja, jb)
		}
	}
	dir := t.TempDir()
	h.run("spec", "--bundle", dir)
	if code, _, errOut := h.run("spec", "--bundle", dir); code != 1 || !strings.Contains(errOut, "exists") {
		t.Errorf("spec over an existing config: exit %d, %q", code, errOut)
	}
}

func TestBadConfigRefused(t *testing.T) {
	h := newHarness(t)
	bundle := h.bundle("true")
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	os.WriteFile(filepath.Join(bundle, "config.json"), bytes.Replace(b, []byte(`"hostname"`), []byte(`"hostnmae"`), 1), 0o644)
	if code, _, errOut := h.run("create", "--bundle", bundle, "bad"); code != 1 || !strings.Contains(errOut, "hostnmae") {
		t.Errorf("unknown field: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(h.root, "bad")); !os.IsNotExist(err) {
		t.Errorf("state left behind: %v", err)
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{"KILL": unix.SIGKILL, "SIGTERM": unix.SIGTERM, "9": unix.SIGKILL, "hup": unix.SIGHUP, "SIGRTMIN+1": 0} {
		got, err := ParseSignal(in)
		if want == 0 {
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "65", "SIGNOPE"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
