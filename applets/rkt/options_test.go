package rkt

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseVolume(t *testing.T) {
	good := []struct {
		in   string
		want Volume
	}{
		{"data,kind=host,source=/srv/data", Volume{Name: "data", Kind: "host", Source: "/srv/data", Recursive: true, Mode: 0o755}},
		{"data,kind=host,source=/srv/data/,readOnly=true,recursive=false", Volume{Name: "data", Kind: "host", Source: "/srv/data", ReadOnly: true, Mode: 0o755}},
		{"scratch,kind=empty,mode=0700,uid=1,gid=2", Volume{Name: "scratch", Kind: "empty", Recursive: true, Mode: 0o700, UID: 1, GID: 2}},
	}
	for _, tc := range good {
		got, err := parseVolume(tc.in)
		if err != nil {
			t.Errorf("parseVolume(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseVolume(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	bad := []struct{ in, wantErr string }{
		{"", "invalid volume name"},
		{"Data,kind=host,source=/x", "invalid volume name"},
		{"data", "missing kind"},
		{"data,kind=host", "needs source"},
		{"data,kind=host,source=rel", "not an absolute path"},
		{"data,kind=bind,source=/x", "want host or empty"},
		{"data,kind=host,source=/x,readOnly=maybe", "invalid syntax"},
		{"data,kind=host,source=/x,color=red", "unknown key"},
		{"data,kind=host,source=/x,source=/y", "given twice"},
		{"data,kind=empty,source=/x", "takes no source"},
		{"data,kind=host,source=/x,mode=0700", "for kind=empty"},
		{"data,kind=empty,mode=99", "invalid syntax"},
		{"data,kind=empty,mode=17777", "more than 07777"},
		{"data,kind=empty,uid=-1", "out of range"},
		{"data,kind", "not KEY=VALUE"},
	}
	for _, tc := range bad {
		_, err := parseVolume(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parseVolume(%q) = %v, want an error with %q", tc.in, err, tc.wantErr)
		}
	}
}

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"data,kind=host,source=/srv", "x,kind=empty,mode=0700,uid=1,gid=2", "a,kind=host,source=/,readOnly=true,recursive=false", ",", "a,=,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseVolume(s)
		if err != nil {
			return
		}
		if checkName("volume", v.Name) != nil || (v.Kind != "host" && v.Kind != "empty") ||
			(v.Kind == "host" && !strings.HasPrefix(v.Source, "/")) || v.Mode > 0o7777 {
			t.Fatalf("parseVolume(%q) accepted %+v", s, v)
		}
	})
}

func TestParseMount(t *testing.T) {
	got, err := parseMount("volume=data,target=/var/data/")
	if err != nil || got != (Mount{Volume: "data", Target: "/var/data"}) {
		t.Errorf("parseMount = %+v, %v", got, err)
	}
	got, err = parseMount("target=/x,volume=v1")
	if err != nil || got != (Mount{Volume: "v1", Target: "/x"}) {
		t.Errorf("parseMount reversed = %+v, %v", got, err)
	}
	for in, wantErr := range map[string]string{
		"":                           "not KEY=VALUE",
		"volume=data":                "needs volume=NAME and target=PATH",
		"volume=data,target=rel":     "not an absolute path",
		"volume=Data,target=/x":      "invalid volume name",
		"volume=a,volume=b,target=/": "volume given twice",
		"volume=a,target=/x,ro=true": "unknown key",
	} {
		if _, err := parseMount(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseMount(%q) = %v, want an error with %q", in, err, wantErr)
		}
	}
}

func FuzzParseMount(f *testing.F) {
	f.Add("volume=data,target=/var/data")
	f.Add("target=/,volume=x")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMount(s)
		if err == nil && (checkName("volume", m.Volume) != nil || !strings.HasPrefix(m.Target, "/")) {
			t.Fatalf("parseMount(%q) accepted %+v", s, m)
		}
	})
}

func TestParseMemoryAndCPU(t *testing.T) {
	mem := map[string]int64{"512M": 512e6, "128Mi": 128 << 20, "1Gi": 1 << 30, "1.5G": 1.5e9, "4096": 4096, "64k": 64000, "4Ki": 4096}
	for in, want := range mem {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, wantErr := range map[string]string{"": "not a quantity", "12Q": "unknown unit", "-5M": "not a quantity", "1": "less than a page", "M": "not a quantity", "99999999E": "too large", "1.5.5M": "not a quantity"} {
		if _, err := parseMemory(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseMemory(%q) = %v, want an error with %q", in, err, wantErr)
		}
	}
	cpu := map[string]int64{"500m": 500, "1": 1000, "1.5": 1500, "750m": 750, "0.1": 100, "2": 2000}
	for in, want := range cpu {
		if got, err := parseCPU(in); err != nil || got != want {
			t.Errorf("parseCPU(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, wantErr := range map[string]string{"0": "less than 1m", "0m": "less than 1m", "abc": "not a quantity", "1Gi": "more than", "5x": "unknown unit"} {
		if _, err := parseCPU(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseCPU(%q) = %v, want an error with %q", in, err, wantErr)
		}
	}
}

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"512M", "1.5Gi", "500m", "0.001", "9E", ".5k"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := parseMemory(s); err == nil && n < 4096 {
			t.Fatalf("parseMemory(%q) = %d", s, n)
		}
		if n, err := parseCPU(s); err == nil && n < 1 {
			t.Fatalf("parseCPU(%q) = %d", s, n)
		}
	})
}

func TestParseEnv(t *testing.T) {
	if e, err := parseEnv("--set-env", "FOO=bar=baz"); err != nil || e != (EnvVar{"FOO", "bar=baz"}) {
		t.Errorf("parseEnv = %+v, %v", e, err)
	}
	if e, err := parseEnv("--set-env", "EMPTY="); err != nil || e != (EnvVar{"EMPTY", ""}) {
		t.Errorf("parseEnv empty value = %+v, %v", e, err)
	}
	for in, wantErr := range map[string]string{"FOO": "want NAME=VALUE", "=x": "empty variable name", "A B=1": "no blanks", "A=\x00": "NUL"} {
		if _, err := parseEnv("--set-env", in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseEnv(%q) = %v, want an error with %q", in, err, wantErr)
		}
	}
}

func FuzzParseEnv(f *testing.F) {
	f.Add("FOO=bar")
	f.Add("=")
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseEnv("--set-env", s)
		if err == nil && (e.Name == "" || e.String() != s) {
			t.Fatalf("parseEnv(%q) = %+v", s, e)
		}
	})
}

func TestParseCapabilities(t *testing.T) {
	got, err := parseCapabilities("--caps-retain", "CAP_NET_ADMIN,sys_admin,CAP_NET_ADMIN")
	if err != nil || !reflect.DeepEqual(got, []string{"CAP_NET_ADMIN", "CAP_SYS_ADMIN"}) {
		t.Errorf("parseCapabilities = %v, %v", got, err)
	}
	if _, err := parseCapabilities("--caps-remove", "CAP_FLY"); err == nil || !strings.Contains(err.Error(), `unknown capability "CAP_FLY"`) {
		t.Errorf("parseCapabilities(CAP_FLY) = %v", err)
	}
}

func TestParseSeccomp(t *testing.T) {
	got, err := parseSeccomp("mode=retain,errno=EPERM,chmod,@rkt/default-whitelist")
	want := SeccompOverride{Mode: "retain", Errno: "EPERM", Syscalls: []string{"chmod", "@rkt/default-whitelist"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parseSeccomp = %+v, %v", got, err)
	}
	for in, wantErr := range map[string]string{
		"chmod":                     "missing mode",
		"mode=retain":               "no syscalls",
		"mode=keep,chmod":           "want retain or remove",
		"mode=remove,errno=EWHAT,x": "unknown errno",
		"mode=remove,CHMOD":         "not a syscall name",
		"mode=remove,level=3,x":     "unknown key",
		"mode=remove,mode=retain,x": "mode given twice",
		"mode=retain,@x/y":          "unknown syscall set",
	} {
		if _, err := parseSeccomp(in); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseSeccomp(%q) = %v, want an error with %q", in, err, wantErr)
		}
	}
}

func FuzzParseSeccomp(f *testing.F) {
	f.Add("mode=retain,errno=EPERM,chmod,fchmod")
	f.Add("mode=retain,@docker/default-whitelist")
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseSeccomp(s)
		if err == nil && ((o.Mode != "retain" && o.Mode != "remove") || len(o.Syscalls) == 0) {
			t.Fatalf("parseSeccomp(%q) = %+v", s, o)
		}
	})
}

func TestParsePort(t *testing.T) {
	got, err := parsePort("80-tcp:8080")
	if err != nil || got != (PortMapping{Name: "80-tcp", Port: 80, Protocol: "tcp", HostPort: 8080}) {
		t.Errorf("parsePort = %+v, %v", got, err)
	}
	for _, in := range []string{"80", "80-sctp:1", "x-tcp:1", "80-tcp:0", "80-tcp:70000", "0-udp:5"} {
		if _, err := parsePort(in); err == nil {
			t.Errorf("parsePort(%q) accepted", in)
		}
	}
}

func FuzzParsePort(f *testing.F) {
	f.Add("80-tcp:8080")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePort(s)
		if err == nil && (p.Port == 0 || p.HostPort == 0) {
			t.Fatalf("parsePort(%q) = %+v", s, p)
		}
	})
}

func TestCheckPorts(t *testing.T) {
	web := PortMapping{Name: "80-tcp", Port: 80, Protocol: "tcp", HostPort: 8080}
	dns := PortMapping{Name: "53-udp", Port: 53, Protocol: "udp", HostPort: 8080}
	for _, tc := range []struct {
		name    string
		net     string
		ports   []PortMapping
		wantErr string
	}{
		{"none given", netHost, nil, ""},
		{"default network", netDefault, []PortMapping{web, dns}, ""},
		{"host network", netHost, []PortMapping{web}, "--net=host the apps listen on the host's ports"},
		{"no network", netNone, []PortMapping{web}, "--net=none pod has only lo"},
		{"host port twice", netDefault, []PortMapping{web, {Name: "81-tcp", Port: 81, Protocol: "tcp", HostPort: 8080}}, "host port tcp/8080 is forwarded twice"},
		{"port 0", netDefault, []PortMapping{{Name: "0-tcp", Protocol: "tcp", HostPort: 8080}}, "non-zero"},
		{"protocol", netDefault, []PortMapping{{Name: "80-sctp", Port: 80, Protocol: "sctp", HostPort: 8080}}, "tcp or udp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPorts(tc.net, tc.ports)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestSmallChecks(t *testing.T) {
	if _, err := parseDNS("8.8.8.8"); err != nil {
		t.Error(err)
	}
	if _, err := parseDNS("dns.google"); err == nil {
		t.Error("parseDNS accepted a name")
	}
	if err := checkHostname("web-1.example"); err != nil {
		t.Error(err)
	}
	for _, h := range []string{"-x", "a_b", strings.Repeat("a", 65), ""} {
		if checkHostname(h) == nil {
			t.Errorf("checkHostname(%q) accepted", h)
		}
	}
	if _, err := parseNet("bridge"); err == nil {
		t.Error("parseNet(bridge) accepted")
	}
	for _, u := range []string{"0", "1000", "core"} {
		if err := checkUserGroup("--user", u); err != nil {
			t.Error(err)
		}
	}
	for _, u := range []string{"", "a:b", "4294967295", "x/y"} {
		if checkUserGroup("--user", u) == nil {
			t.Errorf("checkUserGroup(%q) accepted", u)
		}
	}
}
