package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// helperEnv makes the test binary a lease-taking helper process (see
// TestMain): "STATEDIR,PREFIX,N" takes N leases for pods PREFIX-0…
const helperEnv = "COREBOX_NETWORK_TEST_LEASE_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(leaseHelper(spec))
	}
	os.Exit(m.Run())
}

func leaseHelper(spec string) int {
	parts := strings.Split(spec, ",")
	n, _ := strconv.Atoi(parts[2])
	cfg, err := Config{StateDir: parts[0], Bridge: "cbtestlease", Subnet: netip.MustParsePrefix("10.231.250.0/24")}.withDefaults()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range n {
		if _, err := takeLease(context.Background(), cfg, fmt.Sprintf("%s-%d", parts[1], i)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

// takeLease leases an address the way Setup does, without the links.
func takeLease(ctx context.Context, cfg Config, podID string) (Lease, error) {
	s, err := lockLeases(ctx, cfg)
	if err != nil {
		return Lease{}, err
	}
	defer s.unlock()
	_, l, err := s.lease(podID, hostVethName(cfg.Bridge, podID), nil)
	return l, err
}

func leaseConfig(t *testing.T, subnet string) Config {
	t.Helper()
	cfg, err := Config{StateDir: t.TempDir(), Bridge: "cbtestlease", Subnet: netip.MustParsePrefix(subnet)}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestAllocateLowestFreeAddress(t *testing.T) {
	lf := leaseFile{Subnet: netip.MustParsePrefix("10.1.0.0/24")}
	for i, pod := range []string{"a", "b", "c"} {
		l, err := lf.allocate(pod, "v"+pod, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := netip.AddrFrom4([4]byte{10, 1, 0, byte(2 + i)}); l.IP != want {
			t.Errorf("pod %s got %s, want %s", pod, l.IP, want)
		}
	}
	lf.remove("b")
	l, err := lf.allocate("d", "vd", nil)
	if err != nil || l.IP != netip.MustParseAddr("10.1.0.3") {
		t.Errorf("after releasing 10.1.0.3 the next lease is %v, %v", l.IP, err)
	}
	if _, err := lf.allocate("a", "va", nil); err == nil || !strings.Contains(err.Error(), "already has address 10.1.0.2") {
		t.Errorf("second lease for a pod: err = %v", err)
	}
}

func TestAllocateRefusesForwardedHostPort(t *testing.T) {
	lf := leaseFile{Subnet: netip.MustParsePrefix("10.1.0.0/24")}
	fwd := Forward{Protocol: "tcp", HostPort: 8080, PodPort: 80}
	if _, err := lf.allocate("a", "va", []Forward{fwd}); err != nil {
		t.Fatal(err)
	}
	if _, err := lf.allocate("b", "vb", []Forward{{Protocol: "udp", HostPort: 53, PodPort: 53}, {Protocol: "tcp", HostPort: 8080, PodPort: 81}}); err == nil || !strings.Contains(err.Error(), "host port tcp/8080 is already forwarded to pod a") {
		t.Errorf("second forward of tcp/8080: err = %v", err)
	}
	if len(lf.Leases) != 1 {
		t.Errorf("a refused allocation added a lease: %+v", lf.Leases)
	}
	if _, err := lf.allocate("c", "vc", []Forward{{Protocol: "udp", HostPort: 8080, PodPort: 80}}); err != nil {
		t.Errorf("udp/8080 next to tcp/8080: %v", err)
	}
}

func TestAllocateExhaustion(t *testing.T) {
	for _, tc := range []struct {
		subnet string
		hosts  int
	}{{"10.1.0.0/30", 1}, {"10.1.0.8/29", 5}, {"10.1.0.0/28", 13}} {
		t.Run(tc.subnet, func(t *testing.T) {
			cfg := leaseConfig(t, tc.subnet)
			seen := map[netip.Addr]bool{}
			for i := range tc.hosts {
				l, err := takeLease(context.Background(), cfg, "pod"+strconv.Itoa(i))
				if err != nil {
					t.Fatalf("lease %d of %d: %v", i+1, tc.hosts, err)
				}
				if err := checkHostAddr(cfg.Subnet, l.IP); err != nil || seen[l.IP] {
					t.Fatalf("lease %d: %s (seen before: %v): %v", i+1, l.IP, seen[l.IP], err)
				}
				seen[l.IP] = true
			}
			_, err := takeLease(context.Background(), cfg, "one-too-many")
			if err == nil || !strings.Contains(err.Error(), "exhausted") {
				t.Fatalf("lease beyond the subnet: err = %v, want 'exhausted'", err)
			}
			ls, err := Leases(context.Background(), cfg)
			if err != nil || len(ls) != tc.hosts {
				t.Errorf("after exhaustion: %d leases, %v; want %d", len(ls), err, tc.hosts)
			}
		})
	}
}

func TestLeasesSurviveRestart(t *testing.T) {
	cfg := leaseConfig(t, "10.1.0.0/24")
	a, err := takeLease(context.Background(), cfg, "a")
	if err != nil {
		t.Fatal(err)
	}
	// A new process: a new Config value over the same directory.
	again := Config{StateDir: cfg.StateDir, Bridge: cfg.Bridge, Subnet: cfg.Subnet}
	ls, err := Leases(context.Background(), again)
	if err != nil || len(ls) != 1 || !reflect.DeepEqual(ls[0], a) {
		t.Fatalf("leases after restart = %+v, %v; want [%+v]", ls, err, a)
	}
	cfg2, _ := again.withDefaults()
	b, err := takeLease(context.Background(), cfg2, "b")
	if err != nil || b.IP == a.IP {
		t.Fatalf("lease after restart = %v, %v; must differ from %s", b.IP, err, a.IP)
	}
}

func TestConcurrentLeasesFromGoroutines(t *testing.T) {
	cfg := leaseConfig(t, "10.1.0.0/24")
	const n = 50
	ips := make([]netip.Addr, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			l, err := takeLease(context.Background(), cfg, "pod"+strconv.Itoa(i))
			if err != nil {
				errs <- err
			}
			ips[i] = l.IP
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkDistinct(t, cfg, ips, n)
}

func TestConcurrentLeasesFromProcesses(t *testing.T) {
	cfg := leaseConfig(t, "10.231.250.0/24")
	const procs, each = 6, 10
	var cmds []*exec.Cmd
	for p := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,proc%d,%d", helperEnv, cfg.StateDir, p, each))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}
	ls, err := Leases(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ips []netip.Addr
	for _, l := range ls {
		ips = append(ips, l.IP)
	}
	checkDistinct(t, cfg, ips, procs*each)
}

func checkDistinct(t *testing.T, cfg Config, ips []netip.Addr, want int) {
	t.Helper()
	seen := map[netip.Addr]bool{}
	for _, ip := range ips {
		if seen[ip] {
			t.Errorf("address %s handed out twice", ip)
		}
		seen[ip] = true
	}
	ls, err := Leases(context.Background(), cfg)
	if err != nil || len(ls) != want || len(seen) != want {
		t.Errorf("%d leases on file (%v), %d distinct addresses; want %d", len(ls), err, len(seen), want)
	}
}

func TestLeaseLockWaitHonorsContext(t *testing.T) {
	cfg := leaseConfig(t, "10.1.0.0/24")
	held, err := lockLeases(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := takeLease(ctx, cfg, "a"); err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("lease while the lock is held: err = %v, want a deadline error", err)
	}
	held.unlock()
	if _, err := takeLease(context.Background(), cfg, "a"); err != nil {
		t.Errorf("lease after the lock was released: %v", err)
	}
}

func TestSubnetChange(t *testing.T) {
	cfg := leaseConfig(t, "10.1.0.0/24")
	if _, err := takeLease(context.Background(), cfg, "a"); err != nil {
		t.Fatal(err)
	}
	moved := cfg
	moved.Subnet = netip.MustParsePrefix("10.2.0.0/24")
	if _, err := takeLease(context.Background(), moved, "b"); err == nil || !strings.Contains(err.Error(), "tear its pods down first") {
		t.Errorf("lease in a renumbered network with leases: err = %v", err)
	}
	s, err := lockLeases(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	lf, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	lf.remove("a")
	if err := s.save(lf); err != nil {
		t.Fatal(err)
	}
	s.unlock()
	l, err := takeLease(context.Background(), moved, "b")
	if err != nil || l.IP != netip.MustParseAddr("10.2.0.2") {
		t.Errorf("lease in an emptied, renumbered network = %v, %v", l.IP, err)
	}
}

func TestCorruptLeaseFileIsAnError(t *testing.T) {
	cfg := leaseConfig(t, "10.1.0.0/24")
	dir := filepath.Join(cfg.StateDir, cfg.Bridge)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, leaseFileName)
	if err := os.WriteFile(path, []byte(`{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.1","hostVeth":"v"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := takeLease(context.Background(), cfg, "b")
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "gateway") {
		t.Errorf("lease over a corrupt file: err = %v, want one naming %s and the gateway", err, path)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), `"b"`) {
		t.Error("the corrupt lease file was rewritten")
	}
}

func TestSavedLeaseFileFormat(t *testing.T) {
	cfg := leaseConfig(t, "10.1.0.0/24")
	if _, err := takeLease(context.Background(), cfg, "pod-1"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(cfg.StateDir, cfg.Bridge, leaseFileName))
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"subnet": "10.1.0.0/24", "leases": []any{map[string]any{"pod": "pod-1", "ip": "10.1.0.2", "hostVeth": hostVethName(cfg.Bridge, "pod-1")}}}
	if fmt.Sprint(raw) != fmt.Sprint(want) {
		t.Errorf("lease file = %s", data)
	}
}

func TestParseLeaseFile(t *testing.T) {
	for _, tc := range []struct{ name, in, wantErr string }{
		{"empty network", `{"subnet":"10.1.0.0/24","leases":[]}`, ""},
		{"two leases", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va"},{"pod":"b","ip":"10.1.0.3","hostVeth":"vb"}]}`, ""},
		{"not json", `subnet: 10.1.0.0/24`, "decoding lease file"},
		{"trailing data", `{"subnet":"10.1.0.0/24","leases":[]} {}`, "trailing data"},
		{"unknown field", `{"subnet":"10.1.0.0/24","leases":[],"extra":1}`, "unknown field"},
		{"no subnet", `{"leases":[]}`, "not IPv4"},
		{"ipv6 subnet", `{"subnet":"fd00::/64","leases":[]}`, "not IPv4"},
		{"host bits", `{"subnet":"10.1.0.1/24","leases":[]}`, "host bits"},
		{"tiny subnet", `{"subnet":"10.1.0.0/31","leases":[]}`, "smaller than a /30"},
		{"outside", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.2.0.2","hostVeth":"va"}]}`, "outside subnet"},
		{"network address", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.0","hostVeth":"va"}]}`, "network address"},
		{"broadcast", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.255","hostVeth":"va"}]}`, "broadcast"},
		{"bad ip", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.300","hostVeth":"va"}]}`, "decoding lease file"},
		{"empty pod", `{"subnet":"10.1.0.0/24","leases":[{"pod":"","ip":"10.1.0.2","hostVeth":"va"}]}`, "pod ID is empty"},
		{"pod with space", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a b","ip":"10.1.0.2","hostVeth":"va"}]}`, "whitespace"},
		{"bad veth", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"a/b"}]}`, "host veth"},
		{"long veth", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"veth0123456789ab"}]}`, "longer than 15"},
		{"same ip twice", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va"},{"pod":"b","ip":"10.1.0.2","hostVeth":"vb"}]}`, "leased to both a and b"},
		{"same pod twice", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va"},{"pod":"a","ip":"10.1.0.3","hostVeth":"vb"}]}`, "two leases"},
		{"forwards", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"tcp","hostPort":8080,"podPort":80},{"protocol":"udp","hostPort":8080,"podPort":53}]},{"pod":"b","ip":"10.1.0.3","hostVeth":"vb","forwards":[]}]}`, ""},
		{"forward protocol", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"sctp","hostPort":8080,"podPort":80}]}]}`, "pod a: forward sctp/8080->80: protocol"},
		{"forward port 0", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"tcp","hostPort":0,"podPort":80}]}]}`, "port 0"},
		{"forward port too big", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"tcp","hostPort":65536,"podPort":80}]}]}`, "decoding lease file"},
		{"forward unknown field", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"tcp","hostPort":1,"podPort":80,"hostIP":"0.0.0.0"}]}]}`, "unknown field"},
		{"host port twice in a pod", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"tcp","hostPort":1,"podPort":80},{"protocol":"tcp","hostPort":1,"podPort":81}]}]}`, "host port tcp/1 is forwarded twice"},
		{"host port in two pods", `{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"tcp","hostPort":1,"podPort":80}]},{"pod":"b","ip":"10.1.0.3","hostVeth":"vb","forwards":[{"protocol":"tcp","hostPort":1,"podPort":80}]}]}`, "host port tcp/1 is forwarded to both a and b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLeaseFile([]byte(tc.in))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzParseLeaseFile: no input panics, and what parses saves and parses
// back to the same thing.
func FuzzParseLeaseFile(f *testing.F) {
	f.Add([]byte(`{"subnet":"172.16.28.0/24","leases":[]}`))
	f.Add([]byte(`{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va"},{"pod":"b","ip":"10.1.0.3","hostVeth":"vb"}]}`))
	f.Add([]byte(`{"subnet":"10.1.0.0/30","leases":[{"pod":"x","ip":"10.1.0.2","hostVeth":"veth01234567"}]}`))
	f.Add([]byte(`{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va"},{"pod":"b","ip":"10.1.0.2","hostVeth":"vb"}]}`))
	f.Add([]byte(`{"subnet":"10.1.0.1/24","leases":null}`))
	f.Add([]byte(`{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"tcp","hostPort":8080,"podPort":80},{"protocol":"udp","hostPort":8080,"podPort":53}]}]}`))
	f.Add([]byte(`{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[]}]}`))
	f.Add([]byte(`{"subnet":"10.1.0.0/24","leases":[{"pod":"a","ip":"10.1.0.2","hostVeth":"va","forwards":[{"protocol":"tcp","hostPort":1,"podPort":1}]},{"pod":"b","ip":"10.1.0.3","hostVeth":"vb","forwards":[{"protocol":"tcp","hostPort":1,"podPort":2}]}]}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		lf, err := parseLeaseFile(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(lf)
		if err != nil {
			t.Fatalf("marshalling a parsed lease file: %v", err)
		}
		again, err := parseLeaseFile(out)
		if err != nil {
			t.Fatalf("re-parsing %s: %v", out, err)
		}
		if fmt.Sprint(again) != fmt.Sprint(lf) {
			t.Fatalf("round trip changed %+v into %+v", lf, again)
		}
		if len(lf.Leases) > 0 {
			if _, err := lf.allocate(lf.Leases[0].PodID, "v", nil); err == nil {
				t.Fatal("allocate gave a leased pod a second address")
			}
			if fw := lf.Leases[0].Forwards; len(fw) > 0 {
				if _, err := lf.allocate("fuzz-new-pod", "v", fw[:1]); err == nil {
					t.Fatalf("allocate forwarded host port %s a second time", fw[0].hostKey())
				}
			}
		}
	})
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"zero is the default network", Config{}, ""},
		{"bridge too long", Config{Bridge: "abcdefghijklmnop"}, "longer than 15"},
		{"bridge with slash", Config{Bridge: "a/b"}, "'/'"},
		{"bridge with space", Config{Bridge: "a b"}, "whitespace"},
		{"ipv6 subnet", Config{Subnet: netip.MustParsePrefix("fd00::/64")}, "not IPv4"},
		{"host bits", Config{Subnet: netip.MustParsePrefix("10.0.0.5/24")}, "did you mean 10.0.0.0/24"},
		{"/31", Config{Subnet: netip.MustParsePrefix("10.0.0.0/31")}, "smaller than a /30"},
		{"/4", Config{Subnet: netip.MustParsePrefix("16.0.0.0/4")}, "larger than a /8"},
		{"MTU", Config{MTU: 20}, "MTU 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cfg.withDefaults()
			if tc.wantErr == "" {
				if err != nil || got.Bridge != DefaultBridge || got.Subnet != DefaultSubnet() || got.StateDir != DefaultStateDir || got.MTU != DefaultMTU {
					t.Fatalf("defaults = %+v, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestBadPodIDs(t *testing.T) {
	ctx := context.Background()
	cfg := Config{StateDir: t.TempDir(), Bridge: "cbtestbad"}
	for _, id := range []string{"", "a b", "a/b", "a\nb", strings.Repeat("x", 257), "\xff"} {
		if _, err := Setup(ctx, cfg, id, "/nonexistent"); err == nil || !strings.Contains(err.Error(), "pod ID") {
			t.Errorf("Setup(%q): err = %v, want a pod ID error", id, err)
		}
		if err := Teardown(ctx, cfg, id); err == nil || !strings.Contains(err.Error(), "pod ID") {
			t.Errorf("Teardown(%q): err = %v, want a pod ID error", id, err)
		}
	}
	if entries, _ := os.ReadDir(cfg.StateDir); len(entries) != 0 {
		t.Errorf("bad pod IDs created %d entries in the state directory", len(entries))
	}
}

func TestHostVethName(t *testing.T) {
	a, b := hostVethName("rkt0", "pod"), hostVethName("rkt1", "pod")
	if a == b || a != hostVethName("rkt0", "pod") {
		t.Errorf("names %s, %s: want stable and distinct per bridge", a, b)
	}
	if err := checkInterfaceName(a); err != nil {
		t.Error(err)
	}
}
