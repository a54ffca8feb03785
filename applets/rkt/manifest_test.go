package rkt

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func validManifest() *PodManifest {
	return &PodManifest{
		Version: manifestVersion, UUID: "5bc080ca-9e03-480d-b705-5928af396cc5", Created: time.Unix(1700000000, 0).UTC(),
		Net: "default", Hostname: "rkt-5bc080ca",
		Volumes: []Volume{{Name: "data", Kind: "host", Source: "/srv", Recursive: true}},
		Apps: []AppManifest{{
			Name: "web", Image: ImageRef{Name: "oci-layout:/x:v1", ID: "sha256:ab"}, Exec: []string{"/bin/sh"},
			User: "0", Group: "0", Capabilities: []string{"CAP_KILL"}, Mounts: []Mount{{Volume: "data", Target: "/data"}},
			Env: []EnvVar{{"PATH", "/bin"}},
		}},
	}
}

func TestManifestRoundTripAndErrors(t *testing.T) {
	m := validManifest()
	b, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeManifest(bytes.NewReader(b))
	if err != nil || got.Apps[0].Mounts[0].Target != "/data" || !got.Created.Equal(m.Created) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, tc := range []struct {
		change  func(m *PodManifest)
		wantErr string
	}{
		{func(m *PodManifest) { m.Version = 2 }, "version 2"},
		{func(m *PodManifest) { m.UUID = "x" }, "not a UUID"},
		{func(m *PodManifest) { m.Apps = nil }, "no apps"},
		{func(m *PodManifest) { m.Net = "bridge" }, "net"},
		{func(m *PodManifest) { m.Apps = append(m.Apps, m.Apps[0]) }, "used twice"},
		{func(m *PodManifest) { m.Apps[0].Exec = nil }, "no command"},
		{func(m *PodManifest) { m.Apps[0].Capabilities = []string{"CAP_FLY"} }, "unknown capability"},
		{func(m *PodManifest) { m.Apps[0].Mounts[0].Volume = "other" }, "undefined volume"},
		{func(m *PodManifest) { m.Apps[0].Mounts[0].Target = "/a/../b" }, "clean absolute path"},
		{func(m *PodManifest) { m.Volumes[0].Source = "rel" }, "not an absolute path"},
		{func(m *PodManifest) { m.Interactive = true; m.Apps = append(m.Apps, m.Apps[0]); m.Apps[1].Name = "b" }, "exactly one app"},
		{func(m *PodManifest) { m.Apps[0].Seccomp = &SeccompOverride{Mode: "retain", Errno: "EWHAT"} }, "errno"},
	} {
		m := validManifest()
		tc.change(m)
		b, _ := m.encode()
		if _, err := decodeManifest(bytes.NewReader(b)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("decode: %v, want an error with %q", err, tc.wantErr)
		}
	}
	if _, err := decodeManifest(strings.NewReader(`{"version":1,"surprise":true}`)); err == nil || !strings.Contains(err.Error(), "surprise") {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := decodeManifest(strings.NewReader(string(b) + "{}")); err == nil {
		t.Error("trailing data accepted")
	}
}

func FuzzDecodeManifest(f *testing.F) {
	b, _ := validManifest().encode()
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(bytes.NewReader(b))
		if err != nil {
			return
		}
		// What decodes must survive a round trip and still validate.
		b2, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeManifest(bytes.NewReader(b2)); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

func TestParseMountPoints(t *testing.T) {
	in := "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n37 35 0:5 / /proc rw - proc proc rw\n"
	got, err := parseMountPoints([]byte(in))
	if err != nil || len(got) != 2 || got[0] != "/mnt/with space" || got[1] != "/proc" {
		t.Errorf("parseMountPoints = %q, %v", got, err)
	}
	for _, bad := range []string{"1 2 3\n", "1 2 3 4 /a rw\n", "1 2 0:1 / /a rw - ext4\n"} {
		if _, err := parseMountPoints([]byte(bad)); err == nil {
			t.Errorf("parseMountPoints(%q) accepted", bad)
		}
	}
}

func FuzzParseMountPoints(f *testing.F) {
	f.Add([]byte("36 35 98:0 /mnt1 /mnt/x\\040y rw - ext3 /dev/root rw\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseMountPoints(b)
	})
}

func TestLookupColonFile(t *testing.T) {
	passwd := "# comment\nroot:x:0:0::/root:/bin/sh\ncore:x:500:501::/:/bin/sh\nbad:x:zz:1::/:/bin/sh\n"
	if u, g, err := lookupColonFile(strings.NewReader(passwd), "core"); err != nil || u != 500 || g != 501 {
		t.Errorf("core = %d %d %v", u, g, err)
	}
	if _, _, err := lookupColonFile(strings.NewReader(passwd), "nobody"); err == nil || !strings.Contains(err.Error(), `no entry for "nobody"`) {
		t.Errorf("nobody: %v", err)
	}
	if _, _, err := lookupColonFile(strings.NewReader(passwd), "bad"); err == nil || !strings.Contains(err.Error(), "bad id") {
		t.Errorf("bad: %v", err)
	}
}

func FuzzLookupColonFile(f *testing.F) {
	f.Add("root:x:0:0::/root:/bin/sh\n", "root")
	f.Fuzz(func(t *testing.T, file, name string) {
		lookupColonFile(strings.NewReader(file), name)
	})
}

func TestAppSeccomp(t *testing.T) {
	def, err := appSeccomp(nil, defaultCapabilities)
	if err != nil || def == nil || len(def.Syscalls) == 0 {
		t.Fatalf("default profile: %v", err)
	}
	retain, err := appSeccomp(&SeccompOverride{Mode: "retain", Errno: "ENOSYS", Syscalls: []string{"read", "write", "exit_group"}}, defaultCapabilities)
	if err != nil || retain.DefaultAction != "SCMP_ACT_ERRNO" || *retain.DefaultErrnoRet != 38 || len(retain.Syscalls) != 1 || len(retain.Syscalls[0].Names) != 3 {
		t.Errorf("retain: %+v %v", retain, err)
	}
	remove, err := appSeccomp(&SeccompOverride{Mode: "remove", Syscalls: []string{"mkdir", "mkdirat"}}, defaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range remove.Syscalls[:len(remove.Syscalls)-1] {
		for _, n := range r.Names {
			if n == "mkdir" || n == "mkdirat" {
				t.Errorf("remove mode still allows %s", n)
			}
		}
	}
	if last := remove.Syscalls[len(remove.Syscalls)-1]; last.Action != "SCMP_ACT_KILL_PROCESS" || len(last.Names) != 2 {
		t.Errorf("remove mode's deny rule: %+v", last)
	}
}

func TestAppSpec(t *testing.T) {
	m := validManifest()
	m.Apps[0].Memory, m.Apps[0].CPUMilli, m.Apps[0].Pids, m.Apps[0].ReadOnlyRootfs = 64<<20, 500, 10, true
	m.Volumes[0].ReadOnly = true
	s, err := appSpec{pod: m, app: &m.Apps[0], rootfs: "/r", podDir: "/p", uid: 5, gid: 6, cgroup: "/rkt/u/web", ns: podNamespaces{pid: "/proc/1/ns/pid", net: "/proc/1/ns/net", ipc: "/proc/1/ns/ipc", uts: "/proc/1/ns/uts"}}.spec()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Root.Readonly || s.Process.User.UID != 5 || *s.Linux.Resources.Memory.Limit != 64<<20 || *s.Linux.Resources.CPU.Quota != 50000 || *s.Linux.Resources.Pids.Limit != 10 || s.Hostname != "" {
		t.Errorf("spec: %+v", s)
	}
	last := s.Mounts[len(s.Mounts)-1]
	if last.Destination != "/data" || last.Source != "/srv" || !strings.Contains(strings.Join(last.Options, ","), "ro") {
		t.Errorf("volume mount: %+v", last)
	}
	if len(s.Linux.Namespaces) != 5 || !s.Process.NoNewPrivileges || s.Linux.Seccomp == nil {
		t.Errorf("namespaces %v nnp %v seccomp %v", s.Linux.Namespaces, s.Process.NoNewPrivileges, s.Linux.Seccomp != nil)
	}
}
