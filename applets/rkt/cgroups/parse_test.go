package cgroups

import (
	"errors"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const hybridMountinfo = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,release_agent=/lib/systemd/x,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const v2Mountinfo = `22 1 0:21 / /sys rw - sysfs sysfs rw
25 22 0:23 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate
`

func TestParseMountinfo(t *testing.T) {
	h, err := ParseMountinfo([]byte(hybridMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if h.Kind != V1 || h.Unified.Dir != "/sys/fs/cgroup/unified" || len(h.V1) != 4 {
		t.Fatalf("hybrid: %+v", h)
	}
	if got := h.v1Controllers(); !slices.Equal(got, []string{"cpu", "cpuacct", "memory", "name=systemd"}) {
		t.Errorf("v1 controllers %v", got)
	}
	h, err = ParseMountinfo([]byte(v2Mountinfo))
	if err != nil {
		t.Fatal(err)
	}
	if h.Kind != V2 || h.Unified.Dir != "/sys/fs/cgroup" || len(h.V1) != 0 {
		t.Fatalf("v2: %+v", h)
	}
	comounted := "1 0 0:1 /docker/x /sys/fs/cgroup/cpu\\040acct rw - cgroup cgroup rw,cpu,cpuacct\n"
	h, err = ParseMountinfo([]byte(comounted))
	if err != nil {
		t.Fatal(err)
	}
	if h.V1[0].Dir != "/sys/fs/cgroup/cpu acct" || h.V1[0].Root != "/docker/x" || !slices.Equal(h.V1[0].Controllers, []string{"cpu", "cpuacct"}) {
		t.Errorf("comounted: %+v", h.V1[0])
	}
	for _, bad := range []string{"", "22 1 0:21 / /sys rw - sysfs sysfs rw\n", "1 2 3 4\n", "1 0 0:1 / rel rw - cgroup2 cgroup2 rw\n"} {
		if _, err := ParseMountinfo([]byte(bad)); err == nil {
			t.Errorf("ParseMountinfo(%q): no error", bad)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	pc, err := ParseProcCgroup([]byte("9:name=systemd:/\n4:memory:/process_api/771e\n2:cpu,cpuacct:/a\n0::/\n"))
	if err != nil {
		t.Fatal(err)
	}
	if pc.Unified != "/" || pc.V1["memory"] != "/process_api/771e" || pc.V1["cpuacct"] != "/a" || pc.V1["name=systemd"] != "/" {
		t.Errorf("%+v", pc)
	}
	for _, bad := range []string{"x\n", "1::/a\n", "4:memory:rel\n", "4:,:/\n"} {
		if _, err := ParseProcCgroup([]byte(bad)); err == nil {
			t.Errorf("ParseProcCgroup(%q): no error", bad)
		}
	}
}

func TestParsePath(t *testing.T) {
	good := map[string]string{"/a/b": "/a/b", "a//b/": "a/b", "/corebox/pod-1": "/corebox/pod-1", "x": "x"}
	for in, want := range good {
		got, err := ParsePath(in)
		if err != nil || got != want {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                       "empty",
		"/":                      "root",
		"//":                     "root",
		"../x":                   `".."`,
		"/a/../../b":             `".."`,
		"/a/./b":                 `"."`,
		"system.slice:corebox:x": "systemd form",
		"a\nb":                   "control character",
	}
	for in, want := range bad {
		_, err := ParsePath(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParsePath(%q) = %v; want an error saying %s", in, err, want)
		}
	}
}

func TestResolve(t *testing.T) {
	for _, c := range []struct{ p, own, root, want string }{
		{"/a", "/x", "/", "/a"},
		{"a", "/x", "/", "/x/a"},
		{"a", "", "/", "/a"},
		{"a", "/docker/c1", "/docker/c1", "/a"},   // bind-mounted sub-tree
		{"/docker/c1/a", "/", "/docker/c1", "/a"}, // absolute inside it
		{"a", "/", "/docker/c1", "/a"},            // cgroup namespace: own path already relative
	} {
		got, err := resolve(c.p, c.own, c.root)
		if err != nil || got != c.want {
			t.Errorf("resolve(%q, %q, %q) = %q, %v; want %q", c.p, c.own, c.root, got, err, c.want)
		}
	}
}

func TestParseFlatKeyed(t *testing.T) {
	kv, err := ParseFlatKeyed([]byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\noom_group_kill 0\n"))
	if err != nil || kv["oom_kill"] != 2 || kv["max"] != 3 {
		t.Fatalf("%v %v", kv, err)
	}
	for _, bad := range []string{"a\n", "a b\n", "a 1\na 2\n", "a 1 2\n", "a -1\n"} {
		if _, err := ParseFlatKeyed([]byte(bad)); err == nil {
			t.Errorf("ParseFlatKeyed(%q): no error", bad)
		}
	}
}

func TestParseProcs(t *testing.T) {
	p, err := ParseProcs([]byte("12\n7\n"))
	if err != nil || !slices.Equal(p, []int{12, 7}) {
		t.Fatalf("%v %v", p, err)
	}
	for _, bad := range []string{"x\n", "0\n", "-3\n", "1 2\n"} {
		if _, err := ParseProcs([]byte(bad)); err == nil {
			t.Errorf("ParseProcs(%q): no error", bad)
		}
	}
}

func TestConversions(t *testing.T) {
	// Values runc's ConvertCPUSharesToCgroupV2Value and
	// ConvertBlkIOToIOWeightValue give.
	for shares, want := range map[uint64]uint64{0: 0, 2: 1, 1024: 39, 262144: 10000} {
		if got := SharesToWeight(shares); got != want {
			t.Errorf("SharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 500: 4950, 1000: 10000} {
		if got := BlkioToIOWeight(w); got != want {
			t.Errorf("BlkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
	i64 := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		limit, swap int64
		want        string
		err         bool
	}{
		{100, -1, "max", false},
		{100, 0, "", false},
		{100, 300, "200", false},
		{-1, 300, "", true},
	} {
		got, err := swapV2(&specs.LinuxMemory{Limit: i64(c.limit), Swap: i64(c.swap)})
		if got != c.want || (err != nil) != c.err {
			t.Errorf("swapV2(limit %d, swap %d) = %q, %v", c.limit, c.swap, got, err)
		}
	}
}

// planFiles is file=value for a plan's writes, in order.
func planFiles(p plan) []string {
	var out []string
	var add func(w write)
	add = func(w write) {
		out = append(out, w.file+"="+w.value)
		if w.then != nil {
			add(*w.then)
		}
	}
	for _, w := range p.writes {
		add(w)
	}
	return out
}

func TestPlanV1AndV2(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	u16 := func(v uint16) *uint16 { return &v }
	r := &specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(96 << 20), Reservation: i64(32 << 20)},
		CPU:     &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Cpus: "0"},
		Pids:    &specs.LinuxPids{Limit: i64(10)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(500), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1000}}},
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}},
	}
	var p1 plan
	if err := planV1(Host{Kind: V1}, r, &p1); err != nil {
		t.Fatal(err)
	}
	want1 := []string{
		"memory.limit_in_bytes=67108864", "memory.memsw.limit_in_bytes=100663296", "memory.soft_limit_in_bytes=33554432",
		"cpu.shares=1024", "cpu.cfs_period_us=100000", "cpu.cfs_quota_us=50000", "cpuset.cpus=0",
		"pids.max=10", "blkio.weight=500", "blkio.throttle.read_bps_device=8:0 1000",
		"devices.deny=a", "devices.deny=a", "devices.allow=c 1:3 rw",
	}
	if got := planFiles(p1); !slices.Equal(got, want1) {
		t.Errorf("v1 plan\n got %q\nwant %q", got, want1)
	}
	var p2 plan
	if err := planV2(r, &p2); err != nil {
		t.Fatal(err)
	}
	want2 := []string{
		"memory.swap.max=33554432", "memory.max=67108864", "memory.low=33554432",
		"cpu.weight=39", "cpu.max=50000 100000", "cpuset.cpus=0", "pids.max=10",
		"io.bfq.weight=500", "io.max=8:0 rbps=1000",
	}
	if got := planFiles(p2); !slices.Equal(got, want2) {
		t.Errorf("v2 plan\n got %q\nwant %q", got, want2)
	}
	if p2.writes[7].orElse == nil || p2.writes[7].orElse.value != "default 4950" {
		t.Errorf("io.weight fallback: %+v", p2.writes[7].orElse)
	}
	if len(p2.devices) != 2 {
		t.Errorf("v2 devices: %v", p2.devices)
	}
}

func TestPlanRejects(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	yes := true
	cases := []struct {
		name string
		kind Kind
		r    *specs.LinuxResources
		want string
	}{
		{"unified on v1", V1, &specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, "cgroup v1 host"},
		{"kernel memory", V2, &specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: i64(1)}}, "kernel"},
		{"swap below limit", V1, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(50)}}, "below memory limit"},
		{"zero limit", V1, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(0)}}, "memory limit 0"},
		{"oom killer v2", V2, &specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: &yes}}, "cannot disable the OOM killer"},
		{"realtime v2", V2, &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}}, "realtime"},
		{"swappiness v2", V2, &specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(10)}}, "swappiness"},
		{"net_cls v2", V2, &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: new(uint32)}}, "net_cls"},
		{"bad page size", V2, &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2M"}}}, "hugepage size"},
		{"unified path", V2, &specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, "not an interface file"},
		{"device type", V1, &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}, "device type"},
		{"device access", V2, &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwx"}}}, "device access"},
	}
	for _, c := range cases {
		var p plan
		var err error
		if c.kind == V1 {
			err = planV1(Host{Kind: V1}, c.r, &p)
		} else {
			err = planV2(c.r, &p)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.want)
		}
	}
}

func TestPlanMissingController(t *testing.T) {
	// A v1 host with only a memory hierarchy: a pids limit names "pids".
	h := Host{Kind: V1, V1: []Mount{{Dir: "/nonexistent/memory", Root: "/", Controllers: []string{"memory"}}}}
	lim := int64(5)
	_, err := h.plan(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &lim}})
	if !errors.Is(err, ErrNoController) || !strings.Contains(err.Error(), `"pids"`) {
		t.Fatalf("got %v, want ErrNoController naming pids", err)
	}
}

func TestDeviceRulesV1(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		d    specs.LinuxDeviceCgroup
		want []string
	}{
		{specs.LinuxDeviceCgroup{Access: "rwm"}, []string{"a"}},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i64(1), Minor: i64(3), Access: "wr"}, []string{"c 1:3 rw"}},
		{specs.LinuxDeviceCgroup{Type: "b", Major: i64(8), Access: "m"}, []string{"b 8:* m"}},
		{specs.LinuxDeviceCgroup{Type: "a", Major: i64(136), Access: "rw"}, []string{"b 136:* rw", "c 136:* rw"}},
	} {
		got, err := deviceRulesV1(c.d)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("deviceRulesV1(%+v) = %q, %v; want %q", c.d, got, err, c.want)
		}
	}
}

func TestDeviceFilterShape(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	code, err := DeviceFilter([]specs.LinuxDeviceCgroup{{Access: "rwm"}, {Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}})
	if err != nil {
		t.Fatal(err)
	}
	// 6 prologue + (jne type, mov, and, jne access, jne major, jne minor,
	// mov, exit) + the deny-all (mov, exit), and no unreachable default.
	if len(code) != (6+8+2)*bpfInsnLen {
		t.Fatalf("program is %d instructions", len(code)/bpfInsnLen)
	}
	if code[len(code)-8] != opExit {
		t.Errorf("program does not end in exit")
	}
	// Without a catch-all rule the default deny closes the program.
	code, err = DeviceFilter([]specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}})
	if err != nil || len(code) != (6+8+2)*bpfInsnLen {
		t.Fatalf("%d instructions, %v", len(code)/bpfInsnLen, err)
	}
}
