package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// write is one value for one interface file.
type write struct {
	ctrl  string // controller owning the file; "" for cgroup core files
	what  string // the resource, for errors ("memory limit")
	file  string
	value string
	// orElse is written instead when file does not exist (io.bfq.weight
	// versus io.weight).
	orElse *write
	// optional writes are skipped when the file does not exist.
	optional bool
	// then is written right after; if this write fails with EINVAL, then
	// goes first and this is retried (v1 memory limit and memsw, cpu period
	// and quota: the kernel checks each against the other).
	then *write
}

// plan is what applying a LinuxResources does, computed and checked
// before anything is touched.
type plan struct {
	writes []write
	// devices is the v2 device rule list to compile to eBPF; nil leaves
	// device access alone.
	devices []specs.LinuxDeviceCgroup
}

// controllers lists the controllers the plan needs.
func (p plan) controllers() []string {
	var out []string
	var add func(w *write)
	add = func(w *write) {
		if w.ctrl != "" && !slices.Contains(out, w.ctrl) {
			out = append(out, w.ctrl)
		}
		if w.then != nil {
			add(w.then)
		}
	}
	for i := range p.writes {
		add(&p.writes[i])
	}
	return out
}

func missing(ctrl, what string) error {
	return fmt.Errorf("%s needs the %q controller, which this host does not provide: %w", what, ctrl, ErrNoController)
}

// unifiedControllers reads the controllers the cgroup2 mount offers.
func (h Host) unifiedControllers() []string {
	if h.Unified.Dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(h.Unified.Dir, "cgroup.controllers"))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// onUnified says whether a V1 host serves ctrl from its cgroup2 hierarchy
// (hugetlb on hybrid hosts whose v1 side lacks it).
func (h Host) onUnified(ctrl string) bool {
	if h.Kind == V2 {
		return true
	}
	if _, ok := h.v1Mount(ctrl); ok {
		return false
	}
	return slices.Contains(h.unifiedControllers(), ctrl)
}

func (h Host) has(ctrl string) bool {
	if ctrl == "" {
		return true
	}
	if h.Kind == V1 {
		if _, ok := h.v1Mount(ctrl); ok {
			return true
		}
	}
	return slices.Contains(h.unifiedControllers(), ctrl)
}

// plan translates r for this host, checking that every controller it
// needs is there.
func (h Host) plan(r *specs.LinuxResources) (plan, error) {
	var p plan
	if r == nil {
		return p, nil
	}
	var err error
	if h.Kind == V1 {
		err = planV1(h, r, &p)
	} else {
		err = planV2(r, &p)
	}
	if err != nil {
		return plan{}, err
	}
	var check func(w *write) error
	check = func(w *write) error {
		if !h.has(w.ctrl) {
			return missing(w.ctrl, w.what)
		}
		if w.then != nil {
			return check(w.then)
		}
		return nil
	}
	for i := range p.writes {
		if err := check(&p.writes[i]); err != nil {
			return plan{}, err
		}
	}
	return p, nil
}

func limitV1(v int64) string { return strconv.FormatInt(v, 10) }

func limitV2(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

var pageSizeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[1-9][0-9]*[KMG]B$`) })

func planV1(h Host, r *specs.LinuxResources, p *plan) error {
	if m := r.Memory; m != nil {
		if err := checkMemory(m); err != nil {
			return err
		}
		var lim, sw *write
		if m.Limit != nil {
			lim = &write{ctrl: "memory", what: "memory limit", file: "memory.limit_in_bytes", value: limitV1(*m.Limit)}
		}
		if m.Swap != nil {
			sw = &write{ctrl: "memory", what: "memory+swap limit", file: "memory.memsw.limit_in_bytes", value: limitV1(*m.Swap)}
		}
		switch {
		case lim != nil && sw != nil:
			lim.then = sw
			p.writes = append(p.writes, *lim)
		case lim != nil:
			p.writes = append(p.writes, *lim)
		case sw != nil:
			p.writes = append(p.writes, *sw)
		}
		if m.Reservation != nil {
			p.writes = append(p.writes, write{ctrl: "memory", what: "memory reservation", file: "memory.soft_limit_in_bytes", value: limitV1(*m.Reservation)})
		}
		if m.Swappiness != nil {
			if *m.Swappiness > 100 {
				return fmt.Errorf("memory swappiness %d: must be 0…100", *m.Swappiness)
			}
			p.writes = append(p.writes, write{ctrl: "memory", what: "memory swappiness", file: "memory.swappiness", value: strconv.FormatUint(*m.Swappiness, 10)})
		}
		if m.DisableOOMKiller != nil {
			v := "0"
			if *m.DisableOOMKiller {
				v = "1"
			}
			p.writes = append(p.writes, write{ctrl: "memory", what: "disabling the OOM killer", file: "memory.oom_control", value: v})
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			p.writes = append(p.writes, write{ctrl: "cpu", what: "cpu shares", file: "cpu.shares", value: strconv.FormatUint(*c.Shares, 10)})
		}
		var period, quota *write
		if c.Period != nil && *c.Period != 0 {
			period = &write{ctrl: "cpu", what: "cpu period", file: "cpu.cfs_period_us", value: strconv.FormatUint(*c.Period, 10)}
		}
		if c.Quota != nil && *c.Quota != 0 {
			quota = &write{ctrl: "cpu", what: "cpu quota", file: "cpu.cfs_quota_us", value: strconv.FormatInt(*c.Quota, 10)}
		}
		p.writes = appendPair(p.writes, period, quota)
		if c.Burst != nil {
			p.writes = append(p.writes, write{ctrl: "cpu", what: "cpu burst", file: "cpu.cfs_burst_us", value: strconv.FormatUint(*c.Burst, 10)})
		}
		var rtPeriod, rtRuntime *write
		if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
			rtPeriod = &write{ctrl: "cpu", what: "realtime period (CONFIG_RT_GROUP_SCHED)", file: "cpu.rt_period_us", value: strconv.FormatUint(*c.RealtimePeriod, 10)}
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
			rtRuntime = &write{ctrl: "cpu", what: "realtime runtime (CONFIG_RT_GROUP_SCHED)", file: "cpu.rt_runtime_us", value: strconv.FormatInt(*c.RealtimeRuntime, 10)}
		}
		p.writes = appendPair(p.writes, rtPeriod, rtRuntime)
		if c.Idle != nil {
			p.writes = append(p.writes, write{ctrl: "cpu", what: "cpu idle", file: "cpu.idle", value: strconv.FormatInt(*c.Idle, 10)})
		}
		planCpuset(c, p)
	}
	planPids(r, p)
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			if err := checkBlkioWeight(*b.Weight); err != nil {
				return err
			}
			v := strconv.Itoa(int(*b.Weight))
			p.writes = append(p.writes, write{ctrl: "blkio", what: "blkio weight", file: "blkio.weight", value: v,
				orElse: &write{ctrl: "blkio", what: "blkio weight", file: "blkio.bfq.weight", value: v}})
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			p.writes = append(p.writes, write{ctrl: "blkio", what: "blkio leaf weight (CFQ)", file: "blkio.leaf_weight", value: strconv.Itoa(int(*b.LeafWeight))})
		}
		for _, wd := range b.WeightDevice {
			dev := fmt.Sprintf("%d:%d", wd.Major, wd.Minor)
			if wd.Weight != nil {
				if err := checkBlkioWeight(*wd.Weight); err != nil {
					return fmt.Errorf("device %s: %w", dev, err)
				}
				v := fmt.Sprintf("%s %d", dev, *wd.Weight)
				p.writes = append(p.writes, write{ctrl: "blkio", what: "blkio device weight", file: "blkio.weight_device", value: v,
					orElse: &write{ctrl: "blkio", what: "blkio device weight", file: "blkio.bfq.weight_device", value: v}})
			}
			if wd.LeafWeight != nil {
				p.writes = append(p.writes, write{ctrl: "blkio", what: "blkio device leaf weight (CFQ)", file: "blkio.leaf_weight_device", value: fmt.Sprintf("%s %d", dev, *wd.LeafWeight)})
			}
		}
		for _, t := range []struct {
			file string
			devs []specs.LinuxThrottleDevice
		}{
			{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
			{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
			{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
			{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				p.writes = append(p.writes, write{ctrl: "blkio", what: "blkio throttle", file: t.file, value: fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)})
			}
		}
	}
	for _, hp := range r.HugepageLimits {
		if !pageSizeRE().MatchString(hp.Pagesize) {
			return fmt.Errorf("hugepage size %q: want a size like 2MB or 1GB", hp.Pagesize)
		}
		v := strconv.FormatUint(hp.Limit, 10)
		if h.onUnified("hugetlb") {
			p.writes = append(p.writes, hugetlbV2(hp.Pagesize, v)...)
		} else {
			p.writes = append(p.writes, write{ctrl: "hugetlb", what: "hugepage limit", file: "hugetlb." + hp.Pagesize + ".limit_in_bytes", value: v})
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			p.writes = append(p.writes, write{ctrl: "net_cls", what: "network class id", file: "net_cls.classid", value: strconv.FormatUint(uint64(*n.ClassID), 10)})
		}
		for _, pr := range n.Priorities {
			if pr.Name == "" || strings.ContainsAny(pr.Name, " \n/") {
				return fmt.Errorf("network priority: interface name %q is not valid", pr.Name)
			}
			p.writes = append(p.writes, write{ctrl: "net_prio", what: "network priority", file: "net_prio.ifpriomap", value: fmt.Sprintf("%s %d", pr.Name, pr.Priority)})
		}
	}
	if err := planRdma(r, p); err != nil {
		return err
	}
	if len(r.Unified) > 0 {
		return fmt.Errorf("unified (cgroup v2) resources %v: this is a cgroup v1 host", slices.Sorted(mapsKeys(r.Unified)))
	}
	if len(r.Devices) > 0 {
		p.writes = append(p.writes, write{ctrl: "devices", what: "device rules", file: "devices.deny", value: "a"})
		for i, d := range r.Devices {
			rules, err := deviceRulesV1(d)
			if err != nil {
				return fmt.Errorf("device rule %d: %w", i, err)
			}
			file := "devices.deny"
			if d.Allow {
				file = "devices.allow"
			}
			for _, rule := range rules {
				p.writes = append(p.writes, write{ctrl: "devices", what: "device rules", file: file, value: rule})
			}
		}
	}
	return nil
}

func planV2(r *specs.LinuxResources, p *plan) error {
	if m := r.Memory; m != nil {
		if err := checkMemory(m); err != nil {
			return err
		}
		if m.Swap != nil {
			v, err := swapV2(m)
			if err != nil {
				return err
			}
			if v != "" {
				p.writes = append(p.writes, write{ctrl: "memory", what: "swap limit", file: "memory.swap.max", value: v})
			}
		}
		if m.Limit != nil {
			p.writes = append(p.writes, write{ctrl: "memory", what: "memory limit", file: "memory.max", value: limitV2(*m.Limit)})
		}
		if m.Reservation != nil {
			p.writes = append(p.writes, write{ctrl: "memory", what: "memory reservation", file: "memory.low", value: limitV2(*m.Reservation)})
		}
		if m.Swappiness != nil {
			return fmt.Errorf("memory swappiness: cgroup v2 has no per-cgroup swappiness")
		}
		if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
			return fmt.Errorf("disableOOMKiller: cgroup v2 cannot disable the OOM killer")
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			p.writes = append(p.writes, write{ctrl: "cpu", what: "cpu shares", file: "cpu.weight", value: strconv.FormatUint(SharesToWeight(*c.Shares), 10)})
		}
		quota := c.Quota != nil && *c.Quota != 0
		period := c.Period != nil && *c.Period != 0
		if quota || period {
			v := "max"
			if quota && *c.Quota > 0 {
				v = strconv.FormatInt(*c.Quota, 10)
			}
			if period {
				v += " " + strconv.FormatUint(*c.Period, 10)
			}
			p.writes = append(p.writes, write{ctrl: "cpu", what: "cpu quota", file: "cpu.max", value: v})
		}
		if c.Burst != nil {
			p.writes = append(p.writes, write{ctrl: "cpu", what: "cpu burst", file: "cpu.max.burst", value: strconv.FormatUint(*c.Burst, 10)})
		}
		if (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) || (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) {
			return fmt.Errorf("cpu realtimePeriod/realtimeRuntime: cgroup v2 has no realtime group scheduling")
		}
		if c.Idle != nil {
			p.writes = append(p.writes, write{ctrl: "cpu", what: "cpu idle", file: "cpu.idle", value: strconv.FormatInt(*c.Idle, 10)})
		}
		planCpuset(c, p)
	}
	planPids(r, p)
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			if err := checkBlkioWeight(*b.Weight); err != nil {
				return err
			}
			p.writes = append(p.writes, write{ctrl: "io", what: "io weight", file: "io.bfq.weight", value: strconv.Itoa(int(*b.Weight)),
				orElse: &write{ctrl: "io", what: "io weight", file: "io.weight", value: "default " + strconv.FormatUint(BlkioToIOWeight(*b.Weight), 10)}})
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			return fmt.Errorf("blockIO leafWeight: cgroup v2 has no leaf weights")
		}
		for _, wd := range b.WeightDevice {
			dev := fmt.Sprintf("%d:%d", wd.Major, wd.Minor)
			if wd.LeafWeight != nil {
				return fmt.Errorf("blockIO device %s leafWeight: cgroup v2 has no leaf weights", dev)
			}
			if wd.Weight != nil {
				if err := checkBlkioWeight(*wd.Weight); err != nil {
					return fmt.Errorf("device %s: %w", dev, err)
				}
				p.writes = append(p.writes, write{ctrl: "io", what: "io device weight", file: "io.bfq.weight", value: fmt.Sprintf("%s %d", dev, *wd.Weight),
					orElse: &write{ctrl: "io", what: "io device weight", file: "io.weight", value: fmt.Sprintf("%s %d", dev, BlkioToIOWeight(*wd.Weight))}})
			}
		}
		for _, t := range []struct {
			key  string
			devs []specs.LinuxThrottleDevice
		}{
			{"rbps", b.ThrottleReadBpsDevice},
			{"wbps", b.ThrottleWriteBpsDevice},
			{"riops", b.ThrottleReadIOPSDevice},
			{"wiops", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				p.writes = append(p.writes, write{ctrl: "io", what: "io throttle", file: "io.max", value: fmt.Sprintf("%d:%d %s=%d", d.Major, d.Minor, t.key, d.Rate)})
			}
		}
	}
	for _, hp := range r.HugepageLimits {
		if !pageSizeRE().MatchString(hp.Pagesize) {
			return fmt.Errorf("hugepage size %q: want a size like 2MB or 1GB", hp.Pagesize)
		}
		p.writes = append(p.writes, hugetlbV2(hp.Pagesize, strconv.FormatUint(hp.Limit, 10))...)
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		return fmt.Errorf("network classID/priorities: net_cls and net_prio do not exist on cgroup v2: %w", ErrNoController)
	}
	if err := planRdma(r, p); err != nil {
		return err
	}
	for _, k := range slices.Sorted(mapsKeys(r.Unified)) {
		v := r.Unified[k]
		if k == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." || !strings.Contains(k, ".") {
			return fmt.Errorf("unified resource %q: not an interface file name", k)
		}
		ctrl, _, _ := strings.Cut(k, ".")
		if ctrl == "cgroup" {
			ctrl = ""
		}
		p.writes = append(p.writes, write{ctrl: ctrl, what: "unified resource " + k, file: k, value: v})
	}
	if len(r.Devices) > 0 {
		for i, d := range r.Devices {
			if _, err := parseDeviceRule(d); err != nil {
				return fmt.Errorf("device rule %d: %w", i, err)
			}
		}
		p.devices = slices.Clone(r.Devices)
	}
	return nil
}

func hugetlbV2(size, v string) []write {
	return []write{
		{ctrl: "hugetlb", what: "hugepage limit", file: "hugetlb." + size + ".max", value: v},
		{ctrl: "hugetlb", what: "hugepage reservation limit", file: "hugetlb." + size + ".rsvd.max", value: v, optional: true},
	}
}

func appendPair(ws []write, first, second *write) []write {
	switch {
	case first != nil && second != nil:
		first.then = second
		return append(ws, *first)
	case first != nil:
		return append(ws, *first)
	case second != nil:
		return append(ws, *second)
	}
	return ws
}

func planCpuset(c *specs.LinuxCPU, p *plan) {
	if c.Cpus != "" {
		p.writes = append(p.writes, write{ctrl: "cpuset", what: "cpuset cpus", file: "cpuset.cpus", value: c.Cpus})
	}
	if c.Mems != "" {
		p.writes = append(p.writes, write{ctrl: "cpuset", what: "cpuset mems", file: "cpuset.mems", value: c.Mems})
	}
}

func planPids(r *specs.LinuxResources, p *plan) {
	if r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit == 0 {
		return
	}
	v := "max"
	if *r.Pids.Limit > 0 {
		v = strconv.FormatInt(*r.Pids.Limit, 10)
	}
	p.writes = append(p.writes, write{ctrl: "pids", what: "pids limit", file: "pids.max", value: v})
}

func planRdma(r *specs.LinuxResources, p *plan) error {
	for _, dev := range slices.Sorted(mapsKeys(r.Rdma)) {
		if dev == "" || strings.ContainsAny(dev, " \n=") {
			return fmt.Errorf("rdma device %q: not a device name", dev)
		}
		l := r.Rdma[dev]
		v := dev
		for _, f := range []struct {
			key string
			n   *uint32
		}{{"hca_handle", l.HcaHandles}, {"hca_object", l.HcaObjects}} {
			if f.n != nil {
				v += fmt.Sprintf(" %s=%d", f.key, *f.n)
			} else {
				v += " " + f.key + "=max"
			}
		}
		p.writes = append(p.writes, write{ctrl: "rdma", what: "rdma limit", file: "rdma.max", value: v})
	}
	return nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k) {
				return
			}
		}
	}
}

func checkMemory(m *specs.LinuxMemory) error {
	if m.Kernel != nil || m.KernelTCP != nil {
		return fmt.Errorf("memory kernel/kernelTCP limits: not supported (obsolete since Linux 5.4)")
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}} {
		if f.v != nil && (*f.v < -1 || (*f.v == 0 && f.name == "limit")) {
			return fmt.Errorf("memory %s %d: want a positive number of bytes or -1 (unlimited)", f.name, *f.v)
		}
	}
	if m.Limit != nil && m.Swap != nil && *m.Limit > 0 && *m.Swap > 0 && *m.Swap < *m.Limit {
		return fmt.Errorf("memory swap %d is below memory limit %d: swap is the memory+swap total", *m.Swap, *m.Limit)
	}
	return nil
}

// swapV2 converts OCI's memory+swap total to memory.swap.max the way runc
// does: -1 is unlimited, 0 leaves it alone, otherwise swap minus limit.
func swapV2(m *specs.LinuxMemory) (string, error) {
	s := *m.Swap
	switch {
	case s == -1:
		return "max", nil
	case s == 0:
		return "", nil
	case m.Limit == nil || *m.Limit <= 0:
		return "", fmt.Errorf("memory swap %d: a swap limit needs a memory limit on cgroup v2", s)
	}
	return strconv.FormatInt(s-*m.Limit, 10), nil
}

// SharesToWeight converts v1 cpu.shares (2…262144) to v2 cpu.weight
// (1…10000) with runc's linear formula; 0 stays 0 (unset).
func SharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// BlkioToIOWeight converts a v1 blkio weight (10…1000) to a v2 io.weight
// (1…10000) as runc does; 0 stays 0 (unset).
func BlkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(max(w, 10))-10)*9999/990
}

func checkBlkioWeight(w uint16) error {
	if w < 10 || w > 1000 {
		return fmt.Errorf("blkio weight %d: must be 10…1000", w)
	}
	return nil
}

// Update applies r to the cgroup. Everything is checked before the first
// write (controllers, values, that every interface file exists); a write
// the kernel refuses (a memory limit below current usage) leaves the
// earlier writes of the same call applied.
func (c *Cgroup) Update(r *specs.LinuxResources) error {
	pl, err := c.host.plan(r)
	if err != nil {
		return fmt.Errorf("updating cgroup %s: %w", c.path, err)
	}
	if r != nil && r.Memory != nil && r.Memory.CheckBeforeUpdate != nil && *r.Memory.CheckBeforeUpdate && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
		if s, err := c.Stats(); err == nil && uint64(*r.Memory.Limit) < s.MemoryUsage {
			return fmt.Errorf("updating cgroup %s: memory limit %d is below current usage %d", c.path, *r.Memory.Limit, s.MemoryUsage)
		}
	}
	if err := c.apply(pl, nil); err != nil {
		return fmt.Errorf("updating cgroup %s: %w", c.path, err)
	}
	return nil
}

// dirFor is where controller ctrl's files are for this cgroup.
func (c *Cgroup) dirFor(ctrl string) string {
	if c.host.Kind == V2 || ctrl == "" {
		if c.host.Kind == V1 {
			return c.dirs[0]
		}
		return c.unified
	}
	for i, m := range c.host.V1 {
		if slices.Contains(m.Controllers, ctrl) {
			return c.dirs[i]
		}
	}
	return c.unified
}

// apply enables the controllers the plan needs (cgroup2), checks every
// file, then writes. undo, when not nil, collects how to revert the
// controller enabling.
func (c *Cgroup) apply(pl plan, undo *[]func()) error {
	var unifiedCtrls []string
	for _, ctrl := range pl.controllers() {
		if c.host.Kind == V2 || c.host.onUnified(ctrl) {
			unifiedCtrls = append(unifiedCtrls, ctrl)
		}
	}
	if len(unifiedCtrls) > 0 {
		if err := enableControllers(c.host.Unified.Dir, c.unified, unifiedCtrls, undo); err != nil {
			return err
		}
	}
	// Resolve alternatives and check that every file exists first.
	var resolved []write
	var check func(w write) (write, bool, error)
	check = func(w write) (write, bool, error) {
		path := filepath.Join(c.dirFor(w.ctrl), w.file)
		if _, err := os.Stat(path); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return w, false, fmt.Errorf("%s: %w", w.what, err)
			}
			switch {
			case w.orElse != nil:
				return check(*w.orElse)
			case w.optional:
				return w, false, nil
			}
			return w, false, fmt.Errorf("%s: the kernel does not provide %s: %w", w.what, w.file, ErrNoController)
		}
		if w.then != nil {
			t, ok, err := check(*w.then)
			if err != nil {
				return w, false, err
			}
			if ok {
				w.then = &t
			} else {
				w.then = nil
			}
		}
		return w, true, nil
	}
	for _, w := range pl.writes {
		rw, ok, err := check(w)
		if err != nil {
			return err
		}
		if ok {
			resolved = append(resolved, rw)
		}
	}
	for _, w := range resolved {
		if err := c.write(w); err != nil {
			return err
		}
	}
	if pl.devices != nil {
		if err := c.setDeviceFilter(pl.devices); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cgroup) write(w write) error {
	path := filepath.Join(c.dirFor(w.ctrl), w.file)
	err := writeFile(path, w.value)
	if w.then == nil {
		if err != nil {
			return fmt.Errorf("%s: %w", w.what, err)
		}
		return nil
	}
	if err == nil {
		return c.write(*w.then)
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%s: %w", w.what, err)
	}
	if err := c.write(*w.then); err != nil {
		return err
	}
	if err := writeFile(path, w.value); err != nil {
		return fmt.Errorf("%s: %w", w.what, err)
	}
	return nil
}

// enableControllers turns ctrls on in the cgroup.subtree_control of every
// ancestor of leaf below (and including) the mount root, only where they
// are off. A cgroup with member processes cannot hand domain controllers
// down (the "no internal processes" rule): that is an error naming it.
func enableControllers(mountDir, leaf string, ctrls []string, undo *[]func()) error {
	var chain []string
	for d := filepath.Dir(leaf); ; d = filepath.Dir(d) {
		chain = append(chain, d)
		if d == mountDir || d == "/" || !strings.HasPrefix(d, mountDir) {
			break
		}
	}
	slices.Reverse(chain)
	for _, d := range chain {
		sub, err := os.ReadFile(filepath.Join(d, "cgroup.subtree_control"))
		if err != nil {
			return fmt.Errorf("enabling controllers %v: %w", ctrls, err)
		}
		on := strings.Fields(string(sub))
		for _, ctrl := range ctrls {
			if slices.Contains(on, ctrl) {
				continue
			}
			avail, err := os.ReadFile(filepath.Join(d, "cgroup.controllers"))
			if err != nil {
				return fmt.Errorf("enabling controller %s: %w", ctrl, err)
			}
			if !slices.Contains(strings.Fields(string(avail)), ctrl) {
				return fmt.Errorf("the %q controller is not available in %s: %w", ctrl, d, ErrNoController)
			}
			err = writeFile(filepath.Join(d, "cgroup.subtree_control"), "+"+ctrl)
			if errors.Is(err, unix.EBUSY) {
				return fmt.Errorf("enabling the %q controller in %s: that cgroup has processes of its own, and cgroup v2 gives controllers only to children of cgroups without processes; use a cgroups path outside it: %w", ctrl, d, err)
			}
			if err != nil {
				return fmt.Errorf("enabling the %q controller: %w", ctrl, err)
			}
			if undo != nil {
				file := filepath.Join(d, "cgroup.subtree_control")
				off := "-" + ctrl
				*undo = append(*undo, func() { writeFile(file, off) })
			}
		}
	}
	return nil
}
