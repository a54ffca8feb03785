package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// harness is a supervisor over a temporary unit directory.
type harness struct {
	t    *testing.T
	dir  string // the unit directory
	work string // scratch files units write to
	sup  *Supervisor
}

func newHarness(t *testing.T, units map[string]string) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), work: t.TempDir()}
	for name, body := range units {
		h.write(name, body)
	}
	cfg := Config{
		UnitDirs:        []string{h.dir},
		RuntimeDir:      filepath.Join(t.TempDir(), "run"),
		MaxRestartDelay: 400 * time.Millisecond,
		CgroupRoot:      testCgroupRoot(t),
	}
	sup, err := New(cfg)
	if sup == nil {
		t.Fatalf("New: %v", err)
	}
	h.sup = sup
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := sup.StopAll(ctx); err != nil {
			t.Errorf("StopAll: %v", err)
		}
		sup.Close()
	})
	return h
}

// testCgroupRoot returns a cgroup directory for the test when running as
// root: in the cgroup v2 hierarchy (at /sys/fs/cgroup, or the unified one
// at /sys/fs/cgroup/unified on hybrid hosts), else in the v1 pids
// hierarchy; "" when not root or there is none.
func testCgroupRoot(t *testing.T) string {
	if os.Geteuid() != 0 {
		return ""
	}
	base := ""
	for _, c := range []struct {
		dir  string
		kind cgroupKind
	}{{"/sys/fs/cgroup", cgroupV2}, {"/sys/fs/cgroup/unified", cgroupV2}, {"/sys/fs/cgroup/pids", cgroupV1}} {
		if k, err := detectCgroups(c.dir); err == nil && k == c.kind {
			base = c.dir
			break
		}
	}
	if base == "" {
		return ""
	}
	dir := filepath.Join(base, fmt.Sprintf("corebox-test-%d-%s", os.Getpid(), strings.NewReplacer("/", "-").Replace(t.Name())))
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

func (h *harness) write(name, body string) {
	h.t.Helper()
	body = strings.ReplaceAll(body, "$WORK", h.work)
	if err := os.WriteFile(filepath.Join(h.dir, name), []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or 15 s pass.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) status(name string) Status {
	h.t.Helper()
	st, err := h.sup.Status(name)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) read(file string) string {
	b, _ := os.ReadFile(filepath.Join(h.work, file))
	return string(b)
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// state is the field after the ")" of the command name; Z is a zombie.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] != 'Z'
}

func TestSimpleStartStopAndLogs(t *testing.T) {
	h := newHarness(t, map[string]string{"web.service": `
[Unit]
Description=A web server
[Service]
Environment="GREETING=hello world"
ExecStart=/bin/sh -c 'echo "$GREETING"; echo to-stderr >&2; exec sleep 1000'
`})
	if err := h.sup.Start(h.ctx(), "web.service"); err != nil {
		t.Fatal(err)
	}
	st := h.status("web.service")
	if st.ActiveState != "active" || st.SubState != "running" || st.MainPID == 0 || st.Description != "A web server" {
		t.Fatalf("after start: %+v", st)
	}
	h.waitFor("output in the journal", func() bool {
		var got []string
		for _, e := range h.sup.Logs("web.service", 0) {
			got = append(got, e.Message)
		}
		s := strings.Join(got, "\n")
		return strings.Contains(s, "hello world") && strings.Contains(s, "to-stderr")
	})
	pid := st.MainPID
	if err := h.sup.Stop(h.ctx(), "web.service"); err != nil {
		t.Fatal(err)
	}
	st = h.status("web.service")
	if st.ActiveState != "inactive" || st.MainPID != 0 {
		t.Fatalf("after stop: %+v", st)
	}
	if alive(pid) {
		t.Fatalf("main process %d still alive after stop", pid)
	}
}

func TestStopKillsWholeProcessTree(t *testing.T) {
	h := newHarness(t, map[string]string{"tree.service": `
[Service]
ExecStart=/bin/sh -c 'sleep 1000 & echo $! > $WORK/child; setsid sleep 1001 & echo $! > $WORK/escaped; exec sleep 1002'
`})
	if err := h.sup.Start(h.ctx(), "tree.service"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("child pids", func() bool { return h.read("child") != "" && h.read("escaped") != "" })
	child, _ := strconv.Atoi(strings.TrimSpace(h.read("child")))
	escaped, _ := strconv.Atoi(strings.TrimSpace(h.read("escaped")))
	if err := h.sup.Stop(h.ctx(), "tree.service"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("child gone", func() bool { return !alive(child) })
	if h.sup.CgroupKind() != "v2" {
		// Without cgroup v2 a process that left the session can escape (v1:
		// when it forked before the unit was moved in); clean it up.
		syscall.Kill(escaped, syscall.SIGKILL)
		t.Logf("cgroups %s: a setsid child may escape; only cgroup v2 guarantees the tree", h.sup.CgroupKind())
		return
	}
	h.waitFor("escaped child killed through the cgroup", func() bool { return !alive(escaped) })
}

func TestDependencyOrder(t *testing.T) {
	h := newHarness(t, map[string]string{
		"db.service": `
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo db >> $WORK/order'
`,
		"cache.service": `
[Unit]
Before=app.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo cache >> $WORK/order'
`,
		"app.service": `
[Unit]
Requires=db.service
Wants=cache.service optional-missing.service
After=db.service
[Service]
Type=oneshot
ExecStartPre=/bin/sh -c 'echo app-pre >> $WORK/order'
ExecStart=/bin/sh -c 'echo app >> $WORK/order'
ExecStartPost=/bin/sh -c 'echo app-post >> $WORK/order'
`,
	})
	if err := h.sup.Start(h.ctx(), "app.service"); err != nil {
		t.Fatal(err)
	}
	want := "cache\ndb\napp-pre\napp\napp-post\n"
	if got := h.read("order"); got != want {
		t.Fatalf("start order:\n%s\nwant:\n%s", got, want)
	}
	if st := h.status("db.service"); st.ActiveState != "active" || st.SubState != "exited" {
		t.Fatalf("db after start: %+v", st)
	}
	// Stopping db stops app's dependents first (app is a finished oneshot).
	if err := h.sup.Stop(h.ctx(), "db.service"); err != nil {
		t.Fatal(err)
	}
	if st := h.status("db.service"); st.ActiveState != "inactive" {
		t.Fatalf("db after stop: %+v", st)
	}
}

func TestRequiredFailureFailsDependents(t *testing.T) {
	h := newHarness(t, map[string]string{
		"broken.service": "[Service]\nType=oneshot\nExecStart=/bin/false\n",
		"needs.service":  "[Unit]\nRequires=broken.service\nAfter=broken.service\n[Service]\nExecStart=/bin/sleep 1000\n",
	})
	err := h.sup.Start(h.ctx(), "needs.service")
	if err == nil || !strings.Contains(err.Error(), "broken.service") || !strings.Contains(err.Error(), "dependency broken.service failed") {
		t.Fatalf("want failure naming broken.service, got %v", err)
	}
	if st := h.status("needs.service"); st.ActiveState == "active" {
		t.Fatalf("needs.service started although its requirement failed: %+v", st)
	}
	if st := h.status("broken.service"); st.ActiveState != "failed" || st.Result != "exit-code" {
		t.Fatalf("broken.service: %+v", st)
	}
}

func TestRestartPolicies(t *testing.T) {
	h := newHarness(t, map[string]string{
		"crash.service":  "[Service]\nExecStart=/bin/sh -c 'echo run >> $WORK/crash; exit 3'\nRestart=on-failure\nRestartSec=50ms\n",
		"clean.service":  "[Service]\nExecStart=/bin/sh -c 'echo run >> $WORK/clean; exit 0'\nRestart=on-failure\nRestartSec=50ms\n",
		"always.service": "[Service]\nExecStart=/bin/sh -c 'echo run >> $WORK/always; exit 0'\nRestart=always\nRestartSec=50ms\n",
		"never.service":  "[Service]\nExecStart=/bin/sh -c 'exit 4'\n",
	})
	if err := h.sup.Start(h.ctx(), "crash.service", "clean.service", "always.service", "never.service"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("crash restarted 3 times", func() bool { return strings.Count(h.read("crash"), "run") >= 4 })
	h.waitFor("always restarted", func() bool { return strings.Count(h.read("always"), "run") >= 3 })
	h.waitFor("never failed", func() bool { return h.status("never.service").ActiveState == "failed" })
	if st := h.status("crash.service"); st.Restarts < 3 {
		t.Fatalf("crash restarts = %d", st.Restarts)
	}
	time.Sleep(300 * time.Millisecond)
	if n := strings.Count(h.read("clean"), "run"); n != 1 {
		t.Fatalf("on-failure restarted a clean exit: ran %d times", n)
	}
	if st := h.status("never.service"); st.ExitStatus != "status=4" || st.Restarts != 0 {
		t.Fatalf("never.service: %+v", st)
	}
	// A stop cancels a pending restart.
	if err := h.sup.Stop(h.ctx(), "crash.service"); err != nil {
		t.Fatal(err)
	}
	n := strings.Count(h.read("crash"), "run")
	time.Sleep(600 * time.Millisecond)
	if m := strings.Count(h.read("crash"), "run"); m != n {
		t.Fatalf("crash.service ran again after stop (%d -> %d)", n, m)
	}
}

func TestRestartBackoffGrows(t *testing.T) {
	h := newHarness(t, map[string]string{
		"crash.service": "[Service]\nExecStart=/bin/false\nRestart=always\nRestartSec=20ms\n",
	})
	if err := h.sup.Start(h.ctx(), "crash.service"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("4 restarts", func() bool { return h.status("crash.service").Restarts >= 4 })
	var delays []string
	for _, e := range h.sup.Logs("crash.service", 0) {
		if strings.HasPrefix(e.Message, "Scheduled restart in ") {
			delays = append(delays, strings.Fields(e.Message)[3])
		}
	}
	want := []string{"20ms", "40ms", "80ms", "160ms"}
	if len(delays) < 4 || strings.Join(delays[:4], " ") != strings.Join(want, " ") {
		t.Fatalf("restart delays %v, want %v…", delays, want)
	}
}

func TestStopTimeoutEscalatesToKill(t *testing.T) {
	h := newHarness(t, map[string]string{"stubborn.service": `
[Service]
ExecStart=/bin/sh -c 'trap "" TERM; echo ready > $WORK/ready; while :; do sleep 0.1; done'
TimeoutStopSec=300ms
`})
	if err := h.sup.Start(h.ctx(), "stubborn.service"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("ready", func() bool { return h.read("ready") != "" })
	if err := h.sup.Stop(h.ctx(), "stubborn.service"); err != nil {
		t.Fatal(err)
	}
	st := h.status("stubborn.service")
	if st.Result != "timeout" || st.ActiveState == "active" {
		t.Fatalf("want timeout result, got %+v", st)
	}
}

func TestExecStopAndKillSignal(t *testing.T) {
	h := newHarness(t, map[string]string{"graceful.service": `
[Service]
ExecStart=/bin/sh -c 'trap "echo got-usr1 > $WORK/sig; exit 0" USR1; while :; do sleep 0.1; done'
ExecStop=/bin/sh -c 'echo stop $MAINPID > $WORK/stop'
KillSignal=SIGUSR1
`})
	if err := h.sup.Start(h.ctx(), "graceful.service"); err != nil {
		t.Fatal(err)
	}
	pid := h.status("graceful.service").MainPID
	time.Sleep(100 * time.Millisecond)
	if err := h.sup.Stop(h.ctx(), "graceful.service"); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(h.read("stop")), fmt.Sprintf("stop %d", pid); got != want {
		t.Fatalf("ExecStop wrote %q, want %q", got, want)
	}
	if got := strings.TrimSpace(h.read("sig")); got != "got-usr1" {
		t.Fatalf("KillSignal not delivered: %q", got)
	}
}

func TestMissingBinaryAndBadUnitFiles(t *testing.T) {
	h := newHarness(t, map[string]string{
		"nobin.service": "[Service]\nExecStart=/nonexistent/daemon --flag\n",
		"bad.service":   "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\nRestart=sometimes\n",
	})
	err := h.sup.Start(h.ctx(), "nobin.service")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/daemon") {
		t.Fatalf("want error naming the missing binary, got %v", err)
	}
	if st := h.status("nobin.service"); st.ActiveState != "failed" {
		t.Fatalf("nobin: %+v", st)
	}
	err = h.sup.Reload()
	if err == nil || !strings.Contains(err.Error(), "bad.service:5") {
		t.Fatalf("want reload error naming bad.service:5, got %v", err)
	}
	st := h.status("bad.service")
	if st.LoadState != "error" || !strings.Contains(st.LoadError, "Restart") {
		t.Fatalf("bad.service status: %+v", st)
	}
	if err := h.sup.Start(h.ctx(), "bad.service"); err == nil || !strings.Contains(err.Error(), "bad.service:5") {
		t.Fatalf("starting a unit with errors: %v", err)
	}
	if err := h.sup.Start(h.ctx(), "ghost.service"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("starting an unknown unit: %v", err)
	}
}

func TestOrderingCycle(t *testing.T) {
	h := newHarness(t, map[string]string{
		"a.service": "[Unit]\nAfter=b.service\nWants=b.service\n[Service]\nExecStart=/bin/sleep 100\n",
		"b.service": "[Unit]\nAfter=a.service\nWants=a.service\n[Service]\nExecStart=/bin/sleep 100\n",
	})
	err := h.sup.Start(h.ctx(), "a.service")
	if err == nil || !strings.Contains(err.Error(), "cycle") || !strings.Contains(err.Error(), "a.service, b.service") {
		t.Fatalf("want cycle error naming both units, got %v", err)
	}
}

func TestConditionAndEnvironmentFile(t *testing.T) {
	h := newHarness(t, nil)
	os.WriteFile(filepath.Join(h.work, "env"), []byte("# comment\nA=from-file\nB=\"quoted value\"\n"), 0o644)
	h.write("cond.service", "[Unit]\nConditionPathExists=/nonexistent\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo ran > $WORK/cond'\n")
	h.write("env.service", "[Service]\nType=oneshot\nEnvironment=A=inline C=c\nEnvironmentFile=$WORK/env\nEnvironmentFile=-/nonexistent/env\nWorkingDirectory=$WORK\nExecStart=/bin/sh -c 'echo \"$A|$B|$C|$(pwd)\" > out'\n")
	if err := h.sup.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := h.sup.Start(h.ctx(), "cond.service", "env.service"); err != nil {
		t.Fatal(err)
	}
	if h.read("cond") != "" {
		t.Fatal("unit with a failed condition ran")
	}
	if st := h.status("cond.service"); st.Result != "condition" || st.ActiveState != "inactive" {
		t.Fatalf("cond.service: %+v", st)
	}
	if got, want := strings.TrimSpace(h.read("out")), "from-file|quoted value|c|"+h.work; got != want {
		t.Fatalf("environment: got %q want %q", got, want)
	}
}

func TestAddAndRemoveRuntimeUnit(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.sup.AddUnit("bad.service", []byte("[Service]\nExecStart=\n")); err == nil {
		t.Fatal("a bad runtime unit was accepted")
	}
	if _, err := h.sup.Status("bad.service"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused unit was loaded: %v", err)
	}
	if err := h.sup.AddUnit("rt.service", []byte("[Service]\nExecStart=/bin/sleep 1000\n")); err != nil {
		t.Fatal(err)
	}
	if err := h.sup.Start(h.ctx(), "rt.service"); err != nil {
		t.Fatal(err)
	}
	b, path, err := h.sup.UnitFile("rt.service")
	if err != nil || !strings.Contains(string(b), "sleep 1000") || !strings.HasSuffix(path, "run/rt.service") {
		t.Fatalf("UnitFile = %q, %q, %v", b, path, err)
	}
	if err := h.sup.RemoveUnit(h.ctx(), "rt.service"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sup.Status("rt.service"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("removed unit still known: %v", err)
	}
}

func TestOrphansAreReaped(t *testing.T) {
	h := newHarness(t, map[string]string{"orphan.service": `
[Service]
Type=oneshot
ExecStart=/bin/sh -c '(sleep 0.2; exit 0) & echo $! > $WORK/orphan'
`})
	if err := h.sup.Start(h.ctx(), "orphan.service"); err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(h.read("orphan")))
	if pid == 0 {
		t.Fatal("no orphan pid")
	}
	h.waitFor("orphan reaped (not a zombie, not present)", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return err != nil
	})
}

func TestBootTargetsAndStopAllOrder(t *testing.T) {
	h := newHarness(t, map[string]string{
		"first.service":  "[Service]\nExecStart=/bin/sleep 1000\nExecStop=/bin/sh -c 'echo first >> $WORK/stops'\n[Install]\nWantedBy=multi-user.target\n",
		"second.service": "[Unit]\nAfter=first.service\n[Service]\nExecStart=/bin/sleep 1000\nExecStop=/bin/sh -c 'echo second >> $WORK/stops'\n[Install]\nWantedBy=multi-user.target\n",
		"manual.service": "[Service]\nExecStart=/bin/sleep 1000\n",
	})
	if got := strings.Join(h.sup.Enabled(), " "); got != "first.service second.service" {
		t.Fatalf("Enabled = %q", got)
	}
	if err := h.sup.Start(h.ctx(), h.sup.Enabled()...); err != nil {
		t.Fatal(err)
	}
	if err := h.sup.StopAll(h.ctx()); err != nil {
		t.Fatal(err)
	}
	if got := h.read("stops"); got != "second\nfirst\n" {
		t.Fatalf("stop order %q, want second then first", got)
	}
}

func TestUserAndGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("User= needs root: skipped when not root")
	}
	h := newHarness(t, map[string]string{
		"asnobody.service": "[Service]\nType=oneshot\nUser=nobody\nGroup=nogroup\nExecStart=/bin/sh -c 'echo uid=$(id -u) gid=$(id -g)'\n",
		"ghost.service":    "[Service]\nUser=no-such-user-here\nExecStart=/bin/true\n",
	})
	if err := h.sup.Start(h.ctx(), "asnobody.service"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("the unit's output", func() bool {
		for _, e := range h.sup.Logs("asnobody.service", 0) {
			if e.Message == "uid=65534 gid=65534" {
				return true
			}
		}
		return false
	})
	if err := h.sup.Start(h.ctx(), "ghost.service"); err == nil || !strings.Contains(err.Error(), "no-such-user-here") {
		t.Fatalf("unknown user: %v", err)
	}
}
