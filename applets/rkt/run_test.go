package rkt

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/nftables"

	"github.com/corebox/corebox/applets/rkt/container"
)

// TestMain lets the test binary be the engine's stub and, for tests that
// signal rkt, rkt itself.
func TestMain(m *testing.M) {
	switch {
	case filepath.Base(os.Args[0]) == container.StubApplet:
		os.Exit(container.StubMain(context.Background(), os.Args[1:]))
	case os.Getenv("RKT_TEST_AS_RKT") == "1":
		os.Exit(Main(context.Background(), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// rktProc starts rkt as a separate process (this test binary).
func rktProc(t *testing.T, dir string, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command("/proc/self/exe", append([]string{"--dir=" + dir}, args...)...)
	cmd.Env = append(os.Environ(), "RKT_TEST_AS_RKT=1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func TestRunExitCodesAndStatus(t *testing.T) {
	needRoot(t, "pods need namespaces, cgroups and overlayfs")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	r := rktIn(t, dir, "run", "--net=none", ref, "--exec=/bin/sh", "--", "-c", "echo hello from $(hostname); exit 7")
	if r.code != 7 || !regexp.MustCompile(`hello from rkt-[0-9a-f-]{36}`).MatchString(r.stdout) {
		t.Fatalf("run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = rktIn(t, dir, "list", "--no-legend", "--full")
	uuid := strings.Fields(r.stdout)[0]
	r = rktIn(t, dir, "status", uuid)
	if !strings.Contains(r.stdout, "state=exited\n") || !strings.Contains(r.stdout, "app-layout=7\n") || !strings.Contains(r.stdout, "exited=true\n") {
		t.Errorf("status:\n%s", r.stdout)
	}
	// gc: marked, then deleted; nothing left.
	if r = rktIn(t, dir, "gc", "--grace-period=0s"); !strings.Contains(r.stdout, "Moving pod") || !strings.Contains(r.stdout, "Garbage collecting pod") {
		t.Errorf("gc: %s%s", r.stdout, r.stderr)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), dir) {
		t.Errorf("mounts left under %s", dir)
	}
	if _, err := os.Stat("/sys/fs/cgroup/pids/rkt/" + uuid); !os.IsNotExist(err) {
		t.Errorf("cgroup left: %v", err)
	}
}

func TestRunSignalReachesApp(t *testing.T) {
	needRoot(t, "pods need namespaces")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/sleep", "60"}})
	cmd, out := rktProc(t, dir, "run", "--net=host", ref)
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(rktIn(t, dir, "list").stdout, "running") {
		if time.Now().After(deadline) {
			t.Fatalf("pod never ran: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+15 {
		t.Errorf("rkt after SIGTERM: %v\n%s", err, out)
	}
}

func TestMultiAppVolumesAndEnter(t *testing.T) {
	needRoot(t, "pods need namespaces")
	dir := t.TempDir()
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in"), []byte("data\n"), 0o644)
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	r := rktIn(t, dir, "run", "--net=none", "--volume=data,kind=host,source="+host+",readOnly=true",
		ref, "--name=reader", "--mount=volume=data,target=/data", "--exec=/bin/sh", "--", "-c", "cat /data/in; touch /data/x 2>/dev/null && exit 9; sleep 1; ps | grep -c '[s]leep 2'; ps | grep -c '[/]pause'", "---",
		ref, "--name=sleeper", "--exec=/bin/sleep", "--", "2")
	if r.code != 0 || r.stdout != "data\n1\n1\n" {
		t.Errorf("multi-app run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(host, "x")); err == nil {
		t.Error("a read-only volume was written")
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	needRoot(t, "cgroups")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	r := rktIn(t, dir, "run", "--net=host", ref, "--memory=16M", "--exec=/bin/sh", "--", "-c", "dd if=/dev/zero bs=64M count=1 | wc -c")
	uuid := strings.Fields(rktIn(t, dir, "list", "--no-legend", "--full").stdout)[0]
	st := rktIn(t, dir, "status", uuid).stdout
	if !strings.Contains(st, "oom-killed=true") {
		t.Errorf("OOM not reported: %d %s\n%s", r.code, r.stderr, st)
	}
}

// waitRunning waits until n pods in dir run with all their apps started,
// and returns their UUIDs.
func waitRunning(t *testing.T, dir string, n int, out *strings.Builder) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var uuids []string
		for _, l := range strings.Split(rktIn(t, dir, "list", "--no-legend", "--full").stdout, "\n") {
			if f := strings.Fields(l); len(f) > 4 && f[4] == "running" && strings.Contains(rktIn(t, dir, "status", f[0]).stdout, "pid=") &&
				!strings.Contains(rktIn(t, dir, "status", f[0]).stdout, "pid=-1") {
				uuids = append(uuids, f[0])
			}
		}
		if len(uuids) >= n {
			return uuids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pods never ran: %s", n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStopEnterAndRunPrepared(t *testing.T) {
	needRoot(t, "pods need namespaces")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/sleep", "60"}, Env: []string{"PATH=/bin", "WHO=app"}})
	r := rktIn(t, dir, "prepare", "--net=none", "--hostname=pod1", ref)
	if r.code != 0 {
		t.Fatalf("prepare: %s", r.stderr)
	}
	uuid := strings.TrimSpace(r.stdout)
	cmd, out := rktProc(t, dir, "run-prepared", uuid[:8])
	waitRunning(t, dir, 1, out)
	if r = rktIn(t, dir, "run-prepared", uuid); r.code != exitError || !strings.Contains(r.stderr, "not prepared") {
		t.Errorf("run-prepared twice: %d %s", r.code, r.stderr)
	}
	r = rktIn(t, dir, "enter", uuid, "/bin/sh", "-c", "echo $(hostname) $WHO; exit 4")
	if r.code != 4 || r.stdout != "pod1 app\n" {
		t.Errorf("enter: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = rktIn(t, dir, "status", uuid); !strings.Contains(r.stdout, "state=running\n") || !regexp.MustCompile(`pid=[1-9]`).MatchString(r.stdout) {
		t.Errorf("status of a running pod:\n%s", r.stdout)
	}
	if r = rktIn(t, dir, "rm", uuid); r.code != exitError || !strings.Contains(r.stderr, "stop it first") {
		t.Errorf("rm of a running pod: %d %s", r.code, r.stderr)
	}
	if r = rktIn(t, dir, "stop", uuid); r.code != 0 || r.stdout != "\""+uuid+"\"\n" {
		t.Errorf("stop: %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = rktIn(t, dir, "status", "--wait=20s", uuid)
	if !strings.Contains(r.stdout, "state=exited\n") || !strings.Contains(r.stdout, "app-layout=143\n") {
		t.Errorf("status --wait after stop: %s %s", r.stdout, r.stderr)
	}
	if err := cmd.Wait(); err == nil || err.(*exec.ExitError).ExitCode() != 143 {
		t.Errorf("rkt run-prepared after stop: %v\n%s", err, out)
	}
	if r = rktIn(t, dir, "stop", uuid); r.code != exitError || !strings.Contains(r.stderr, "not running") {
		t.Errorf("stop of an exited pod: %d %s", r.code, r.stderr)
	}
	if r = rktIn(t, dir, "enter", uuid); r.code != exitError || !strings.Contains(r.stderr, "not running") {
		t.Errorf("enter of an exited pod: %d %s", r.code, r.stderr)
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	needRoot(t, "cgroups")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	start := time.Now()
	r := rktIn(t, dir, "run", "--net=host", ref, "--pids-limit=16", "--exec=/bin/sh", "--", "-c", "n=0; while [ $n -lt 60 ]; do sleep 30 & n=$((n+1)); done; echo spawned")
	if !strings.Contains(r.stderr, "can't fork") || time.Since(start) > 25*time.Second {
		t.Errorf("fork bomb under --pids-limit=16: %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestDefaultNetwork(t *testing.T) {
	needRoot(t, "bridges, veths and nftables")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/sleep", "60"}})
	c1, out1 := rktProc(t, dir, "run", ref)
	c2, out2 := rktProc(t, dir, "run", ref)
	t.Cleanup(func() {
		for _, l := range strings.Split(rktIn(t, dir, "list", "--no-legend", "--full").stdout, "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				rktIn(t, dir, "stop", "--force", f[0])
			}
		}
		c1.Wait()
		c2.Wait()
		rktIn(t, dir, "gc", "--grace-period=0s")
	})
	uuids := waitRunning(t, dir, 2, out1)
	var ips []string
	for _, u := range uuids {
		st := rktIn(t, dir, "status", u).stdout
		m := regexp.MustCompile(`networks=default:ip4=(\S+)`).FindStringSubmatch(st)
		if m == nil {
			t.Fatalf("status without a network:\n%s\n%s\n%s", st, out1, out2)
		}
		ips = append(ips, m[1])
	}
	if r := rktIn(t, dir, "enter", uuids[0], "/bin/ping", "-c1", "-W3", ips[1]); r.code != 0 {
		t.Errorf("pod %s cannot ping pod %s: %s%s", ips[0], ips[1], r.stdout, r.stderr)
	}
	if out, err := exec.Command("/bin/busybox", "ping", "-c1", "-W3", ips[0]).CombinedOutput(); err != nil {
		t.Errorf("the host cannot ping pod %s: %v %s", ips[0], err, out)
	}
	if r := rktIn(t, dir, "enter", uuids[0], "/bin/cat", "/etc/hosts"); !strings.Contains(r.stdout, ips[0]) {
		t.Errorf("/etc/hosts:\n%s", r.stdout)
	}
	for _, u := range uuids {
		rktIn(t, dir, "stop", "--force", u)
	}
	c1.Wait()
	c2.Wait()
	rktIn(t, dir, "gc", "--grace-period=0s")
	leases, _ := os.ReadFile(filepath.Join(dir, "networks", "rkt0", "leases.json"))
	for _, ip := range ips {
		if strings.Contains(string(leases), ip) {
			t.Errorf("lease of %s left: %s", ip, leases)
		}
	}
	links, _ := exec.Command("ip", "-o", "link").Output()
	if strings.Count(string(links), "master rkt0") != 0 {
		t.Errorf("veths left on rkt0:\n%s", links)
	}
}

// BenchmarkRunHostTrue is `rkt run --net=host` of an image whose app is
// /bin/true, in process (rkt's own exec is not counted).
func BenchmarkRunHostTrue(b *testing.B) {
	needRoot(b, "pods need namespaces")
	dir := b.TempDir()
	ref := busyboxImage(b, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	if r := rktIn(b, dir, "fetch", ref); r.code != 0 {
		b.Fatal(r.stderr)
	}
	for b.Loop() {
		if r := rktIn(b, dir, "run", "--net=host", ref); r.code != 0 {
			b.Fatal(r.stderr)
		}
	}
	rktIn(b, dir, "gc", "--grace-period=0s")
}

// TestPortForward runs a pod with --port whose app answers on port 80,
// reaches it from the host at 127.0.0.1:HOSTPORT, and checks that gc
// removes the forwarding rules.
func TestPortForward(t *testing.T) {
	needRoot(t, "bridges, veths and nftables")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	hostAddr := fmt.Sprintf("127.0.0.1:%d", port)

	// A pod prepared with --port cannot run in the host's network.
	r := rktIn(t, dir, "prepare", fmt.Sprintf("--port=80-tcp:%d", port), ref)
	if r.code != 0 {
		t.Fatalf("prepare: %d %s", r.code, r.stderr)
	}
	prepared := strings.TrimSpace(r.stdout)
	if r := rktIn(t, dir, "run-prepared", "--net=host", prepared); r.code != exitError || !strings.Contains(r.stderr, "prepared with --port: --port needs --net=default") {
		t.Errorf("run-prepared --net=host of a pod with --port: %d %q", r.code, r.stderr)
	}
	rktIn(t, dir, "rm", prepared)

	cmd, out := rktProc(t, dir, "run", fmt.Sprintf("--port=80-tcp:%d", port), ref, "--exec=/bin/nc", "--", "-ll", "-p", "80", "-e", "/bin/echo", "hi from the pod")
	t.Cleanup(func() {
		for _, l := range strings.Split(rktIn(t, dir, "list", "--no-legend", "--full").stdout, "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				rktIn(t, dir, "stop", "--force", f[0])
			}
		}
		cmd.Wait()
		rktIn(t, dir, "gc", "--grace-period=0s")
	})
	uuid := waitRunning(t, dir, 1, out)[0]
	if st := rktIn(t, dir, "status", uuid).stdout; !strings.Contains(st, fmt.Sprintf("ports=80-tcp:%d\n", port)) {
		t.Errorf("status lacks the forward:\n%s", st)
	}
	if n := forwardingRules(t, uuid); n == 0 {
		t.Fatalf("no forwarding rules for pod %s", uuid)
	}

	// The app may not listen yet when the pod runs.
	var answer string
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp4", hostAddr, 2*time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			b, _ := io.ReadAll(c)
			c.Close()
			if answer = strings.TrimSpace(string(b)); answer != "" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer at %s: %v %q\n%s", hostAddr, err, answer, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if answer != "hi from the pod" {
		t.Errorf("answer at %s = %q", hostAddr, answer)
	}

	rktIn(t, dir, "stop", "--force", uuid)
	cmd.Wait()
	if r := rktIn(t, dir, "gc", "--grace-period=0s"); r.code != 0 {
		t.Errorf("gc: %d %s", r.code, r.stderr)
	}
	if n := forwardingRules(t, uuid); n != 0 {
		t.Errorf("%d forwarding rules of pod %s left after gc", n, uuid)
	}
	if c, err := net.DialTimeout("tcp4", hostAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after gc", hostAddr)
	}
}

// forwardingRules counts the rules in the corebox nftables table whose
// comment names the pod.
func forwardingRules(t *testing.T, uuid string) int {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range chains {
		if c.Table.Name != "corebox" {
			continue
		}
		rules, err := conn.GetRules(c.Table, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if bytes.Contains(r.UserData, []byte("pod="+uuid+" ")) {
				n++
			}
		}
	}
	return n
}
