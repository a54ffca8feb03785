package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestMain doubles as a helper process: CGROUPS_TEST_HELPER selects what
// the re-executed test binary does instead of running tests.
func TestMain(m *testing.M) {
	if os.Getpid() == 1 {
		vmInit(m)
	}
	switch os.Getenv("CGROUPS_TEST_HELPER") {
	case "":
		os.Exit(m.Run())
	case "alloc":
		// Allocate and touch MiB megabytes, then report.
		n, _ := strconv.Atoi(os.Getenv("MIB"))
		var keep [][]byte
		for i := 0; i < n; i++ {
			b := make([]byte, 1<<20)
			for j := range b {
				if j%4096 == 0 {
					b[j] = 1
				}
			}
			keep = append(keep, b)
		}
		fmt.Println("allocated", len(keep))
		os.Exit(0)
	case "load-kill":
		// Another process: reopen by path, kill and destroy.
		c, err := Load(os.Getenv("CGROUP"))
		if err == nil {
			err = c.Destroy()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(3)
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups")
	}
}

func host(t *testing.T) Host {
	t.Helper()
	needRoot(t)
	h, err := DetectHost()
	if err != nil {
		t.Skipf("no cgroups: %v", err)
	}
	return h
}

// v1Host skips unless this is a v1 (or hybrid) host.
func v1Host(t *testing.T) Host {
	t.Helper()
	h := host(t)
	if h.Kind != V1 {
		t.Skip("needs a cgroup v1 host")
	}
	return h
}

// unifiedHost is the cgroup2 hierarchy alone (the whole host on V2, the
// controller-less unified mount on a hybrid one).
func unifiedHost(t *testing.T) Host {
	t.Helper()
	h, err := host(t).UnifiedOnly()
	if err != nil {
		t.Skipf("no cgroup2 hierarchy: %v", err)
	}
	return h
}

// testPath is an absolute cgroups path unique to this test run.
func testPath(t *testing.T, name string) string {
	return fmt.Sprintf("/corebox-cgtest-%d/%s", os.Getpid(), name)
}

func newCgroup(t *testing.T, h Host, path string, r *specs.LinuxResources) *Cgroup {
	t.Helper()
	c, err := h.New(path, r)
	if err != nil {
		t.Fatalf("New(%q): %v", path, err)
	}
	t.Cleanup(func() {
		if err := c.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
	})
	return c
}

// started is a process running inside a cgroup.
type started struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{} // closed when Wait returned err
	err  error
}

// lockedBuffer collects a child's output while tests read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (s *started) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(d):
		t.Fatalf("process %d still running after %v", s.cmd.Process.Pid, d)
		return nil
	}
}

// startIn starts cmd inside c before it runs anything: cloned into the
// cgroup on v2, added and then released on v1 (the child first blocks
// reading a line from a pipe).
func startIn(t *testing.T, c *Cgroup, cmd *exec.Cmd) *started {
	t.Helper()
	gate, release, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	fd, onV2 := c.FD()
	if onV2 {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	} else {
		// The child waits for a byte on fd 3 before exec'ing the real command.
		cmd.ExtraFiles = []*os.File{gate}
		cmd.Args = append([]string{"/bin/busybox", "sh", "-c", `read x <&3; exec "$@"`, "gate"}, cmd.Args...)
		cmd.Path = "/bin/busybox"
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gate.Close()
	if !onV2 {
		if err := c.Add(cmd.Process.Pid); err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
	}
	release.Write([]byte("go\n"))
	release.Close()
	s := &started{cmd: cmd, out: out, done: make(chan struct{})}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-s.done })
	return s
}

func busybox(t *testing.T, script string) *exec.Cmd {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static)")
	}
	return exec.Command("/bin/busybox", "sh", "-c", script)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func exitSignal(err error) syscall.Signal {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return ws.Signal()
		}
	}
	return 0
}

// memoryLimit is a memory limit of n bytes, with no swap on v1 (v2
// kernels without swap have no memory.swap.max to write).
func memoryLimit(h Host, n int64) *specs.LinuxResources {
	m := &specs.LinuxMemory{Limit: i64(n)}
	if h.Kind == V1 {
		m.Swap = i64(n)
	}
	return &specs.LinuxResources{Memory: m}
}

func TestMemoryLimitOOMKill(t *testing.T) {
	h := host(t)
	c := newCgroup(t, h, testPath(t, "oom"), memoryLimit(h, 32<<20))
	file := map[Kind]string{V1: "memory.limit_in_bytes", V2: "memory.max"}[h.Kind]
	if got := readFile(t, filepath.Join(c.dirFor("memory"), file)); got != strconv.Itoa(32<<20) {
		t.Fatalf("%s = %s", file, got)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CGROUPS_TEST_HELPER=alloc", "MIB=128")
	s := startIn(t, c, cmd)
	err := s.wait(t, 60*time.Second)
	if exitSignal(err) != syscall.SIGKILL {
		t.Fatalf("allocating 128 MiB under a 32 MiB limit: %v, output %q; want killed by SIGKILL", err, s.out)
	}
	n, err := c.OOMKills()
	if err != nil || n < 1 {
		t.Fatalf("OOMKills = %d, %v; want ≥ 1", n, err)
	}
	st, err := c.Stats()
	if err != nil || st.OOMKills != n || st.MemoryLimit != 32<<20 {
		t.Errorf("Stats = %+v, %v", st, err)
	}
	// Under a raised limit the same program succeeds.
	if err := c.Update(memoryLimit(h, 256<<20)); err != nil {
		t.Fatalf("Update raising the limit: %v", err)
	}
	cmd = exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CGROUPS_TEST_HELPER=alloc", "MIB=128")
	s = startIn(t, c, cmd)
	if err := s.wait(t, 60*time.Second); err != nil {
		t.Fatalf("under a raised limit: %v, %q", err, s.out)
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	h := host(t)
	c := newCgroup(t, h, testPath(t, "pids"), &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(8)}})
	s := startIn(t, c, busybox(t, `i=0; while [ $i -lt 40 ]; do /bin/busybox sleep 30 >/dev/null 2>&1 & i=$((i+1)); done; echo spawned`))
	s.wait(t, 60*time.Second)
	if !strings.Contains(s.out.String(), "fork") && !strings.Contains(s.out.String(), "Resource temporarily unavailable") {
		t.Errorf("no fork failure reported; output %q", s.out)
	}
	ev := readFile(t, c.dirFor("pids")+"/pids.events")
	kv, err := ParseFlatKeyed([]byte(ev))
	if err != nil || kv["max"] == 0 {
		t.Errorf("pids.events %q: want max > 0", ev)
	}
	st, err := c.Stats()
	if err != nil || st.PidsLimit != 8 {
		t.Errorf("Stats = %+v, %v", st, err)
	}
}

func TestCPUWrittenAndEnforced(t *testing.T) {
	h := host(t)
	c := newCgroup(t, h, testPath(t, "cpu"), &specs.LinuxResources{
		CPU: &specs.LinuxCPU{Shares: u64(512), Quota: i64(20000), Period: u64(100000), Cpus: "0", Mems: "0"},
	})
	want := map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "20000", "cpu.cfs_period_us": "100000"}
	if h.Kind == V2 {
		want = map[string]string{"cpu.weight": strconv.FormatUint(SharesToWeight(512), 10), "cpu.max": "20000 100000"}
	}
	for file, want := range want {
		if got := readFile(t, filepath.Join(c.dirFor("cpu"), file)); got != want {
			t.Errorf("%s = %s, want %s", file, got, want)
		}
	}
	for file, want := range map[string]string{"cpuset.cpus": "0", "cpuset.mems": "0"} {
		if got := readFile(t, filepath.Join(c.dirFor("cpuset"), file)); got != want {
			t.Errorf("%s = %s, want %s", file, got, want)
		}
	}
	// A busy loop for a second gets at most ~20% of one CPU.
	s := startIn(t, c, busybox(t, `while :; do :; done`))
	time.Sleep(time.Second)
	st, err := c.Stats()
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Process.Kill()
	if st.CPUUsage > 400*time.Millisecond || st.CPUUsage == 0 {
		t.Errorf("cpu usage %v in ~1s under a 20%% quota", st.CPUUsage)
	}
	// Update with a larger quota and a period change (ordering handled).
	if err := c.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(400000), Period: u64(200000)}}); err != nil {
		t.Fatal(err)
	}
	file, want400 := "cpu.cfs_quota_us", "400000"
	if h.Kind == V2 {
		file, want400 = "cpu.max", "400000 200000"
	}
	if got := readFile(t, filepath.Join(c.dirFor("cpu"), file)); got != want400 {
		t.Errorf("%s = %s after Update", file, got)
	}
}

func TestKillForkingProcess(t *testing.T) {
	for _, kind := range []string{"v1", "unified"} {
		t.Run(kind, func(t *testing.T) {
			h := host(t)
			if kind == "unified" {
				h = unifiedHost(t)
			} else if h.Kind != V1 {
				t.Skip("needs a cgroup v1 host")
			}
			c := newCgroup(t, h, testPath(t, "kill-"+kind), nil)
			s := startIn(t, c, busybox(t, `while :; do /bin/busybox sleep 100 & done`))
			deadline := time.Now().Add(10 * time.Second)
			for {
				pids, _ := c.Pids()
				if len(pids) > 20 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("only %d processes after 10s", len(pids))
				}
				time.Sleep(10 * time.Millisecond)
			}
			start := time.Now()
			if err := c.Kill(); err != nil {
				t.Fatal(err)
			}
			t.Logf("Kill took %v", time.Since(start))
			if pids, err := c.Pids(); err != nil || len(pids) != 0 {
				t.Fatalf("after Kill: %v, %v", pids, err)
			}
			if sig := exitSignal(s.wait(t, 5*time.Second)); sig != syscall.SIGKILL {
				t.Errorf("shell ended by %v", sig)
			}
		})
	}
}

func TestFreezeThaw(t *testing.T) {
	for _, kind := range []string{"v1", "unified"} {
		t.Run(kind, func(t *testing.T) {
			h := host(t)
			if kind == "unified" {
				h = unifiedHost(t)
			} else if h.Kind != V1 {
				t.Skip("needs a cgroup v1 host")
			}
			c := newCgroup(t, h, testPath(t, "freeze-"+kind), nil)
			progress, err := os.CreateTemp(t.TempDir(), "progress")
			if err != nil {
				t.Fatal(err)
			}
			// The loop grows a file: frozen, it must stop growing.
			startIn(t, c, busybox(t, `while :; do echo x >> `+progress.Name()+`; done`))
			size := func() int64 { fi, _ := os.Stat(progress.Name()); return fi.Size() }
			time.Sleep(200 * time.Millisecond)
			if err := c.Freeze(); err != nil {
				t.Fatal(err)
			}
			a := size()
			time.Sleep(300 * time.Millisecond)
			if b := size(); b != a {
				t.Errorf("frozen cgroup kept running: %d → %d bytes", a, b)
			}
			if err := c.Thaw(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(300 * time.Millisecond)
			if b := size(); b == a {
				t.Errorf("thawed cgroup does not run")
			}
		})
	}
}

func TestDestroyLeavesNothing(t *testing.T) {
	h := v1Host(t)
	top := fmt.Sprintf("/corebox-cgtest-destroy-%d", os.Getpid())
	c, err := h.New(top+"/a/b", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(100)}})
	if err != nil {
		t.Fatal(err)
	}
	dirs := c.Dirs()
	if len(dirs) < len(h.V1) {
		t.Fatalf("dirs %v", dirs)
	}
	startIn(t, c, busybox(t, `/bin/busybox sleep 100 & /bin/busybox sleep 100`))
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, m := range h.V1 {
		if _, err := os.Stat(filepath.Join(m.Dir, top)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there (%v)", filepath.Join(m.Dir, top), err)
		}
	}
	if h.Unified.Dir != "" {
		if _, err := os.Stat(filepath.Join(h.Unified.Dir, top)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("unified %s still there", top)
		}
	}
	if err := c.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

func TestLoadFromAnotherProcess(t *testing.T) {
	h := v1Host(t)
	c, err := h.New(testPath(t, "load"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	s := startIn(t, c, busybox(t, `/bin/busybox sleep 100 & /bin/busybox sleep 100`))
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), "CGROUPS_TEST_HELPER=load-kill", "CGROUP="+c.Path())
	if out, err := helper.CombinedOutput(); err != nil {
		t.Fatalf("helper Load+Destroy: %v: %s", err, out)
	}
	if sig := exitSignal(s.wait(t, 5*time.Second)); sig != syscall.SIGKILL {
		t.Errorf("process ended by %v", sig)
	}
	for _, d := range c.Dirs() {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there", d)
		}
	}
	if _, err := h.Load(c.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a destroyed cgroup: %v", err)
	}
}

func TestRelativeAndAbsolutePaths(t *testing.T) {
	h := v1Host(t)
	own, err := readOwnCgroups()
	if err != nil {
		t.Fatal(err)
	}
	rel := fmt.Sprintf("corebox-cgtest-rel-%d", os.Getpid())
	c := newCgroup(t, h, rel, nil)
	for i, m := range h.V1 {
		want := filepath.Join(m.Dir, own.V1[m.Controllers[0]], rel)
		if c.Dirs()[i] != want {
			t.Errorf("%v: dir %s, want %s", m.Controllers, c.Dirs()[i], want)
		}
	}
	differ := false
	for _, m := range h.V1 {
		if own.V1[m.Controllers[0]] != own.V1[h.V1[0].Controllers[0]] {
			differ = true
		}
	}
	if differ && c.Path() != rel {
		t.Errorf("Path() = %q: own cgroups differ between hierarchies, want the relative %q", c.Path(), rel)
	}
	if !differ && c.Path() != filepath.Join(own.V1[h.V1[0].Controllers[0]], rel) {
		t.Errorf("Path() = %q, want absolute", c.Path())
	}
	if _, err := h.Load(rel); err != nil {
		t.Errorf("Load(%q): %v", rel, err)
	}
	abs := newCgroup(t, h, testPath(t, "abs"), nil)
	for i, m := range h.V1 {
		if want := filepath.Join(m.Dir, testPath(t, "abs")); abs.Dirs()[i] != want {
			t.Errorf("absolute: dir %s, want %s", abs.Dirs()[i], want)
		}
	}
	if abs.Path() != testPath(t, "abs") {
		t.Errorf("absolute Path() = %q", abs.Path())
	}
}

func TestBadPathsRejected(t *testing.T) {
	h := host(t)
	for _, p := range []string{"", "/", "/corebox-cgtest/../x", "../x", "system.slice:corebox:x", "/a/./b"} {
		if c, err := h.New(p, nil); err == nil {
			c.Destroy()
			t.Errorf("New(%q) succeeded", p)
		}
	}
}

func TestMissingControllerNamedAndNothingLeft(t *testing.T) {
	h := v1Host(t)
	if _, ok := h.v1Mount("net_cls"); ok {
		t.Skip("this host has net_cls")
	}
	p := testPath(t, "netcls")
	id := uint32(0x100001)
	_, err := h.New(p, &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: &id}})
	if !errors.Is(err, ErrNoController) || !strings.Contains(err.Error(), `"net_cls"`) {
		t.Fatalf("got %v; want ErrNoController naming net_cls", err)
	}
	for _, m := range h.V1 {
		if _, err := os.Stat(filepath.Join(m.Dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", filepath.Join(m.Dir, p))
		}
	}
}

func TestV1FailedApplyLeavesNothing(t *testing.T) {
	h := v1Host(t)
	top := fmt.Sprintf("/corebox-cgtest-fail-%d", os.Getpid())
	// cpuset.cpus naming a CPU that does not exist: the kernel refuses it
	// after the directories were made.
	_, err := h.New(top+"/x", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4095"}})
	if err == nil {
		t.Fatal("New with cpuset 4095 succeeded")
	}
	for _, m := range h.V1 {
		if _, err := os.Stat(filepath.Join(m.Dir, top)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind", filepath.Join(m.Dir, top))
		}
	}
}

func TestV1Devices(t *testing.T) {
	h := v1Host(t)
	c := newCgroup(t, h, testPath(t, "devices"), &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rw"}, // /dev/zero
	}})
	if got := readFile(t, c.dirFor("devices")+"/devices.list"); got != "c 1:5 rw" {
		t.Errorf("devices.list = %q", got)
	}
	s := startIn(t, c, busybox(t, `[ "$(/bin/busybox head -c1 /dev/zero | /bin/busybox wc -c)" = 1 ] && echo zero-ok; echo x >/dev/null && echo null-ok; echo done`))
	s.wait(t, 10*time.Second)
	if out := s.out.String(); !strings.Contains(out, "zero-ok") || strings.Contains(out, "null-ok") {
		t.Errorf("output %q: want /dev/zero usable and /dev/null denied", out)
	}
}

func TestHybridHugetlbOnUnified(t *testing.T) {
	h := v1Host(t)
	if _, ok := h.v1Mount("hugetlb"); ok || !h.onUnified("hugetlb") {
		t.Skip("needs a hybrid host with hugetlb on the cgroup2 side only")
	}
	if _, err := os.Stat(filepath.Join(h.Unified.Dir, "hugetlb.2MB.max")); err == nil {
		t.Skip("root shows hugetlb files: unexpected layout")
	}
	c, err := h.New(testPath(t, "hugetlb"), &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}})
	if err != nil {
		if errors.Is(err, ErrNoController) {
			t.Skipf("kernel without 2MB huge pages: %v", err)
		}
		t.Fatal(err)
	}
	defer c.Destroy()
	if got := readFile(t, filepath.Join(c.unified, "hugetlb.2MB.max")); got != strconv.Itoa(4<<20) {
		t.Errorf("hugetlb.2MB.max = %s", got)
	}
}

func TestUnifiedCloneIntoCgroupAndKill(t *testing.T) {
	h := unifiedHost(t)
	p := testPath(t, "v2clone")
	c := newCgroup(t, h, p, nil)
	fd, ok := c.FD()
	if !ok || fd < 0 {
		t.Fatalf("FD() = %d, %v on a v2 view", fd, ok)
	}
	cmd := busybox(t, `cat /proc/self/cgroup; /bin/busybox sleep 100`)
	r, w := io.Pipe()
	cmd.Stdout = w
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); w.Close() }()
	sc := bufio.NewScanner(r)
	found := false
	for sc.Scan() {
		if sc.Text() == "0::"+p {
			found = true
			break
		}
	}
	go io.Copy(io.Discard, r)
	if !found {
		t.Fatalf("child's /proc/self/cgroup has no 0::%s", p)
	}
	if _, err := os.Stat(filepath.Join(c.unified, "cgroup.kill")); err != nil {
		t.Skipf("kernel without cgroup.kill: %v", err)
	}
	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if sig := exitSignal(<-done); sig != syscall.SIGKILL {
		t.Errorf("ended by %v", sig)
	}
	if err := c.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.unified); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still there", c.unified)
	}
}

func TestUnifiedMemoryLimitWithoutController(t *testing.T) {
	h := unifiedHost(t)
	if h.has("memory") {
		t.Skip("the cgroup2 hierarchy has the memory controller")
	}
	p := testPath(t, "v2mem")
	_, err := h.New(p, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20)}})
	if !errors.Is(err, ErrNoController) || !strings.Contains(err.Error(), `"memory"`) {
		t.Fatalf("got %v; want ErrNoController naming memory", err)
	}
	if _, err := os.Stat(filepath.Join(h.Unified.Dir, p)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("left behind: %v", err)
	}
}

func TestUnifiedEnablesOnlyNeededControllers(t *testing.T) {
	h := unifiedHost(t)
	if !h.has("hugetlb") {
		t.Skip("needs hugetlb on the cgroup2 hierarchy")
	}
	top := fmt.Sprintf("/corebox-cgtest-enable-%d", os.Getpid())
	c, err := h.New(top+"/a/b", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}})
	if errors.Is(err, ErrNoController) {
		t.Skipf("no 2MB huge pages: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	for _, d := range []string{top, top + "/a"} {
		if got := readFile(t, filepath.Join(h.Unified.Dir, d, "cgroup.subtree_control")); got != "hugetlb" {
			t.Errorf("%s subtree_control = %q, want hugetlb only", d, got)
		}
	}
	if got := readFile(t, filepath.Join(c.unified, "hugetlb.2MB.max")); got != strconv.Itoa(2<<20) {
		t.Errorf("hugetlb.2MB.max = %s", got)
	}
	// A process in top+"/a/b" forbids enabling controllers below it.
	startIn(t, c, busybox(t, `/bin/busybox sleep 100`))
	_, err = h.New(top+"/a/b/inner", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}}})
	if err == nil || !strings.Contains(err.Error(), "has processes of its own") {
		t.Errorf("New below a populated cgroup: %v; want the no-internal-processes error", err)
	}
	if _, err := os.Stat(filepath.Join(h.Unified.Dir, top, "a/b/inner")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("inner left behind")
	}
}

func TestUnifiedDeviceFilter(t *testing.T) {
	h := unifiedHost(t)
	c := newCgroup(t, h, testPath(t, "v2devices"), &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rw"}, // /dev/zero
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "r"},  // /dev/null read-only
	}})
	script := `[ "$(/bin/busybox head -c1 /dev/zero | /bin/busybox wc -c)" = 1 ] && echo zero-ok; ` +
		`/bin/busybox cat /dev/null && echo null-read-ok; ` +
		`echo x >/dev/null && echo null-write-ok; ` +
		`[ "$(/bin/busybox head -c1 /dev/urandom | /bin/busybox wc -c)" = 1 ] && echo urandom-ok; echo done`
	s := startIn(t, c, busybox(t, script))
	s.wait(t, 10*time.Second)
	out := s.out.String()
	if !strings.Contains(out, "zero-ok") || !strings.Contains(out, "null-read-ok") || strings.Contains(out, "null-write-ok") || strings.Contains(out, "urandom-ok") {
		t.Errorf("output %q: want /dev/zero rw, /dev/null read only, /dev/urandom denied", out)
	}
	// Update swaps the program: now /dev/urandom is allowed, nothing else.
	if err := c.Update(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "r"},
	}}); err != nil {
		t.Fatal(err)
	}
	ids, err := c.attachedDevicePrograms()
	if err != nil || len(ids) != 1 {
		t.Errorf("attached programs after Update: %v, %v; want exactly one", ids, err)
	}
	s = startIn(t, c, busybox(t, script))
	s.wait(t, 10*time.Second)
	if out := s.out.String(); strings.Contains(out, "zero-ok") || !strings.Contains(out, "urandom-ok") {
		t.Errorf("after Update output %q: want only /dev/urandom", out)
	}
}
