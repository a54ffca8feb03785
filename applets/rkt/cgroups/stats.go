package cgroups

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Stats is a snapshot of a cgroup's accounting. A field is zero when the
// controller that counts it is not there (see Have).
type Stats struct {
	// MemoryUsage is the memory charged to the cgroup, in bytes.
	MemoryUsage uint64
	// MemoryLimit is the memory limit in bytes; 0 means none.
	MemoryLimit uint64
	// OOMKills counts processes the OOM killer killed in the cgroup.
	OOMKills int
	// PidsCurrent is the number of tasks; PidsLimit their limit (0: none).
	PidsCurrent, PidsLimit uint64
	// CPUUsage is the CPU time the cgroup's tasks used.
	CPUUsage time.Duration
	// Have names the controllers the numbers come from ("memory", "pids",
	// "cpu").
	Have []string
}

// controllerDir is the directory holding controller's files, if the
// cgroup has one: on V2 when the controller is enabled for it.
func (c *Cgroup) controllerDir(ctrl string) (string, bool) {
	if c.host.Kind == V2 {
		if ctrl == "cpu" { // cpu.stat is always there
			return c.unified, true
		}
		b, err := os.ReadFile(filepath.Join(c.unified, "cgroup.controllers"))
		if err != nil || !slices.Contains(strings.Fields(string(b)), ctrl) {
			return "", false
		}
		return c.unified, true
	}
	for i, m := range c.host.V1 {
		if slices.Contains(m.Controllers, ctrl) {
			return c.dirs[i], true
		}
	}
	if c.unified != "" {
		b, err := os.ReadFile(filepath.Join(c.unified, "cgroup.controllers"))
		if err == nil && slices.Contains(strings.Fields(string(b)), ctrl) {
			return c.unified, true
		}
	}
	return "", false
}

// Stats reads the cgroup's memory, OOM, pids and CPU accounting.
func (c *Cgroup) Stats() (Stats, error) {
	var s Stats
	if d, ok := c.controllerDir("memory"); ok {
		s.Have = append(s.Have, "memory")
		usage, limit := "memory.current", "memory.max"
		if c.host.Kind == V1 {
			usage, limit = "memory.usage_in_bytes", "memory.limit_in_bytes"
		}
		var err error
		if s.MemoryUsage, err = readUint(filepath.Join(d, usage)); err != nil {
			return Stats{}, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
		}
		if s.MemoryLimit, err = readUint(filepath.Join(d, limit)); err != nil {
			return Stats{}, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
		}
		if s.MemoryLimit >= math.MaxInt64/4096*4096 { // v1's "unlimited"
			s.MemoryLimit = 0
		}
		if s.OOMKills, err = c.OOMKills(); err != nil {
			return Stats{}, err
		}
	}
	if d, ok := c.controllerDir("pids"); ok {
		s.Have = append(s.Have, "pids")
		var err error
		if s.PidsCurrent, err = readUint(filepath.Join(d, "pids.current")); err != nil {
			return Stats{}, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
		}
		if s.PidsLimit, err = readUint(filepath.Join(d, "pids.max")); err != nil {
			return Stats{}, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
		}
	}
	if c.host.Kind == V2 {
		b, err := os.ReadFile(filepath.Join(c.unified, "cpu.stat"))
		if err != nil {
			return Stats{}, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
		}
		kv, err := ParseFlatKeyed(b)
		if err != nil {
			return Stats{}, fmt.Errorf("stats of cgroup %s: cpu.stat: %w", c.path, err)
		}
		s.Have = append(s.Have, "cpu")
		s.CPUUsage = time.Duration(kv["usage_usec"]) * time.Microsecond
	} else if d, ok := c.controllerDir("cpuacct"); ok {
		ns, err := readUint(filepath.Join(d, "cpuacct.usage"))
		if err != nil {
			return Stats{}, fmt.Errorf("stats of cgroup %s: %w", c.path, err)
		}
		s.Have = append(s.Have, "cpu")
		s.CPUUsage = time.Duration(ns)
	}
	return s, nil
}

// OOMKills counts the processes the OOM killer killed in the cgroup (v2
// memory.events oom_kill, v1 memory.oom_control oom_kill).
func (c *Cgroup) OOMKills() (int, error) {
	d, ok := c.controllerDir("memory")
	if !ok {
		return 0, fmt.Errorf("OOM kills of cgroup %s: memory: %w", c.path, ErrNoController)
	}
	file := "memory.events"
	if c.host.Kind == V1 {
		file = "memory.oom_control"
	}
	b, err := os.ReadFile(filepath.Join(d, file))
	if err != nil {
		return 0, fmt.Errorf("OOM kills of cgroup %s: %w", c.path, err)
	}
	kv, err := ParseFlatKeyed(b)
	if err != nil {
		return 0, fmt.Errorf("OOM kills of cgroup %s: %s: %w", c.path, file, err)
	}
	n, ok := kv["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("OOM kills of cgroup %s: %s has no oom_kill count (kernel older than 4.13?)", c.path, file)
	}
	if n > math.MaxInt32 {
		return 0, fmt.Errorf("OOM kills of cgroup %s: %s: oom_kill %d out of range", c.path, file, n)
	}
	return int(n), nil
}

// ParseFlatKeyed parses a cgroup "flat keyed" file (memory.events,
// cpu.stat, cgroup.events, v1 memory.oom_control): "KEY VALUE" lines with
// unsigned values. A duplicate key is an error.
func ParseFlatKeyed(b []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	for n, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d %q: want KEY VALUE", n+1, line)
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d %q: value: %w", n+1, line, err)
		}
		if _, dup := out[f[0]]; dup {
			return nil, fmt.Errorf("line %d %q: key %q repeated", n+1, line, f[0])
		}
		out[f[0]] = v
	}
	return out, nil
}

// readUint reads a one-number interface file; "max" reads as 0 (no limit).
func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseUintOrMax(strings.TrimSpace(string(b)), path)
}

func parseUintOrMax(s, name string) (uint64, error) {
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if n, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && n < 0 {
			return 0, nil // v1 writes -1 as "no limit" in some files
		}
		return 0, fmt.Errorf("%s: %q is not a number: %w", name, s, errors.Unwrap(err))
	}
	return v, nil
}
