package network

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteHosts(t *testing.T) {
	a := &Attachment{IP: netip.MustParseAddr("172.16.28.5")}
	for _, tc := range []struct {
		name, hostname string
		a              *Attachment
		want           string
	}{
		{"pod network", "web", a, "172.16.28.5\tweb\n"},
		{"fqdn", "web.example.com", a, "172.16.28.5\tweb.example.com web\n"},
		{"no pod network", "web", nil, "127.0.1.1\tweb\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etc := t.TempDir()
			if err := WriteHosts(etc, tc.hostname, tc.a); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(filepath.Join(etc, "hosts"))
			if err != nil {
				t.Fatal(err)
			}
			s := string(data)
			if !strings.HasSuffix(s, tc.want) || !strings.Contains(s, "127.0.0.1\tlocalhost") || !strings.Contains(s, "::1\tlocalhost") {
				t.Errorf("hosts =\n%s\nwant it to end with %q and name localhost", s, tc.want)
			}
			st, err := os.Stat(filepath.Join(etc, "hosts"))
			if err != nil || st.Mode().Perm() != 0o644 {
				t.Errorf("hosts mode = %v, %v; want 0644", st.Mode(), err)
			}
			if entries, _ := os.ReadDir(etc); len(entries) != 1 {
				t.Errorf("etc holds %d entries, want only hosts (no temporary file left)", len(entries))
			}
		})
	}
}

func TestWriteHostsBadInput(t *testing.T) {
	etc := t.TempDir()
	for _, name := range []string{"", "-web", "web-", "we_b", "a..b", "web\nevil", strings.Repeat("a", 65)} {
		if err := WriteHosts(etc, name, nil); err == nil || !strings.Contains(err.Error(), "hostname") {
			t.Errorf("WriteHosts(%q): err = %v, want a hostname error", name, err)
		}
	}
	if err := WriteHosts(etc, "web", &Attachment{}); err == nil {
		t.Error("WriteHosts with an attachment without an address succeeded")
	}
	if err := WriteHosts(filepath.Join(etc, "missing"), "web", nil); err == nil {
		t.Error("WriteHosts into a missing directory succeeded")
	}
	if entries, _ := os.ReadDir(etc); len(entries) != 0 {
		t.Errorf("bad input wrote %d files", len(entries))
	}
}

// A symlink an image put at etc/hosts or at etc itself must not lead the
// write out of the pod.
func TestEtcFilesDoNotFollowSymlinks(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "hosts")
	if err := os.WriteFile(victim, []byte("host's own\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rootfs := t.TempDir()
	etc := filepath.Join(rootfs, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(etc, "hosts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(etc, "resolv.conf")); err != nil {
		t.Fatal(err)
	}
	if err := WriteHosts(etc, "web", nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteResolvConf(etc, []string{"10.0.0.53"}, false); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(victim); string(data) != "host's own\n" {
		t.Errorf("the file outside the pod was written: %q", data)
	}
	for _, name := range []string{"hosts", "resolv.conf"} {
		if st, err := os.Lstat(filepath.Join(etc, name)); err != nil || !st.Mode().IsRegular() {
			t.Errorf("etc/%s is %v, %v; want a regular file", name, st.Mode(), err)
		}
	}

	linkedEtc := filepath.Join(rootfs, "etc-link")
	if err := os.Symlink(outside, linkedEtc); err != nil {
		t.Fatal(err)
	}
	if err := WriteHosts(linkedEtc, "web", nil); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("WriteHosts into a symlinked etc: err = %v, want a symlink error", err)
	}
	if err := WriteResolvConf(linkedEtc, []string{"10.0.0.53"}, false); err == nil {
		t.Error("WriteResolvConf into a symlinked etc succeeded")
	}
	if data, _ := os.ReadFile(victim); string(data) != "host's own\n" {
		t.Errorf("the file outside the pod was written: %q", data)
	}
}

func TestWriteResolvConf(t *testing.T) {
	t.Run("servers", func(t *testing.T) {
		etc := t.TempDir()
		if err := WriteResolvConf(etc, []string{"8.8.8.8", "2001:4860:4860::8888"}, true); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(etc, "resolv.conf"))
		if !strings.HasSuffix(string(data), "nameserver 8.8.8.8\nnameserver 2001:4860:4860::8888\n") {
			t.Errorf("resolv.conf =\n%s", data)
		}
	})
	t.Run("from host", func(t *testing.T) {
		host, err := os.ReadFile(hostResolvConf)
		if err != nil {
			t.Skipf("the host has no %s: %v", hostResolvConf, err)
		}
		etc := t.TempDir()
		if err := WriteResolvConf(etc, nil, true); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(etc, "resolv.conf"))
		if !bytes.Equal(data, host) {
			t.Errorf("resolv.conf =\n%s\nwant the host's\n%s", data, host)
		}
	})
	t.Run("neither keeps the image's", func(t *testing.T) {
		etc := t.TempDir()
		if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("image's\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteResolvConf(etc, nil, false); err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(filepath.Join(etc, "resolv.conf")); string(data) != "image's\n" {
			t.Errorf("resolv.conf = %q, want the image's", data)
		}
	})
	t.Run("bad server", func(t *testing.T) {
		etc := t.TempDir()
		for _, bad := range []string{"dns.example.com", "8.8.8.8\nnameserver 6.6.6.6", "fe80::1%eth0", ""} {
			if err := WriteResolvConf(etc, []string{"1.1.1.1", bad}, false); err == nil || !strings.Contains(err.Error(), "DNS server") {
				t.Errorf("WriteResolvConf(%q): err = %v, want a DNS server error", bad, err)
			}
		}
		if entries, _ := os.ReadDir(etc); len(entries) != 0 {
			t.Errorf("bad servers wrote %d files", len(entries))
		}
	})
}

// FuzzCheckHostname: whatever is accepted makes a hosts file whose last
// line is exactly the address and the name (no injected lines or fields).
func FuzzCheckHostname(f *testing.F) {
	for _, s := range []string{"web", "web.example.com", "-a", "a..b", "a b", "x\n1.2.3.4 evil", strings.Repeat("a", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkHostname(name) != nil {
			return
		}
		lines := strings.Split(strings.TrimSuffix(string(hostsContent(name, nil)), "\n"), "\n")
		last := strings.Fields(lines[len(lines)-1])
		if len(lines) != 4 || last[0] != "127.0.1.1" || last[1] != name {
			t.Fatalf("hostname %q made hosts lines %q", name, lines)
		}
	})
}

// FuzzResolvConfContent: every accepted server becomes exactly one
// nameserver line.
func FuzzResolvConfContent(f *testing.F) {
	for _, s := range []string{"8.8.8.8", "::1", "fe80::1%eth0", "1.2.3.4\nsearch evil", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, server string) {
		c, err := resolvConfContent([]string{server})
		if err != nil {
			return
		}
		lines := strings.Split(strings.TrimSuffix(string(c), "\n"), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "nameserver ") || strings.ContainsAny(strings.TrimPrefix(lines[1], "nameserver "), " \t") {
			t.Fatalf("server %q made lines %q", server, lines)
		}
	})
}
