package cgroups

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/a/b", "a", "", "/", "../x", "a:b:c", "/a/./b", "a//b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		for _, comp := range strings.Split(p, "/") {
			if comp == ".." {
				t.Fatalf("ParsePath(%q) = %q keeps ..", s, p)
			}
		}
		if p == "/" || p == "" || strings.Contains(p, ":") {
			t.Fatalf("ParsePath(%q) = %q", s, p)
		}
		again, err := ParsePath(p)
		if err != nil || again != p {
			t.Fatalf("ParsePath not idempotent: %q -> %q -> %q, %v", s, p, again, err)
		}
		r, err := resolve(p, "/own", "/")
		if err != nil || !strings.HasPrefix(r, "/") || strings.Contains(r, "/../") {
			t.Fatalf("resolve(%q) = %q, %v", p, r, err)
		}
	})
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(hybridMountinfo))
	f.Add([]byte(v2Mountinfo))
	f.Add([]byte("1 0 0:1 / /a\\040b rw - cgroup cgroup rw,cpu,cpuacct\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseMountinfo(b)
		if err != nil {
			return
		}
		if h.Kind != V1 && h.Kind != V2 {
			t.Fatalf("kind %v", h.Kind)
		}
		for _, m := range h.V1 {
			if len(m.Controllers) == 0 || !strings.HasPrefix(m.Dir, "/") {
				t.Fatalf("bad mount %+v", m)
			}
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	f.Add([]byte("9:name=systemd:/\n4:memory:/process_api/x\n0::/\n"))
	f.Add([]byte("0::/user.slice/a.scope\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pc, err := ParseProcCgroup(b)
		if err != nil {
			return
		}
		if pc.Unified != "" && !strings.HasPrefix(pc.Unified, "/") {
			t.Fatalf("unified %q", pc.Unified)
		}
		for c, p := range pc.V1 {
			if c == "" || !strings.HasPrefix(p, "/") {
				t.Fatalf("v1 %q=%q", c, p)
			}
		}
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	f.Add([]byte("low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\n"))
	f.Add([]byte("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"))
	f.Add([]byte("populated 1\nfrozen 0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kv, err := ParseFlatKeyed(b)
		if err != nil {
			return
		}
		for k := range kv {
			if k == "" || strings.ContainsAny(k, " \t\n") {
				t.Fatalf("key %q", k)
			}
		}
	})
}

func FuzzParseProcs(f *testing.F) {
	f.Add([]byte("1\n22\n333\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		pids, err := ParseProcs(b)
		if err != nil {
			return
		}
		for _, p := range pids {
			if p <= 0 {
				t.Fatalf("pid %d", p)
			}
		}
	})
}

func FuzzDeviceFilter(f *testing.F) {
	f.Add(true, "c", int64(1), int64(3), "rw")
	f.Add(false, "", int64(-1), int64(-1), "")
	f.Add(true, "b", int64(8), int64(-1), "m")
	f.Fuzz(func(t *testing.T, allow bool, typ string, major, minor int64, access string) {
		rule := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Major: &major, Minor: &minor, Access: access}
		code, err := DeviceFilter([]specs.LinuxDeviceCgroup{{Access: "rwm"}, rule})
		if err != nil {
			return
		}
		if len(code)%bpfInsnLen != 0 || code[len(code)-bpfInsnLen] != opExit {
			t.Fatalf("malformed program for %+v", rule)
		}
		if _, err := deviceRulesV1(rule); err != nil {
			t.Fatalf("v2 accepts %+v but v1 does not: %v", rule, err)
		}
	})
}
