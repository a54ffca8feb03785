package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
)

// freePort is a TCP port nothing on the host listens on right now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// forwardRules counts podID's rules in bridge's port-forwarding chains.
func forwardRules(t *testing.T, bridge, podID string) int {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	have, err := tableChains(conn)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range natChains(bridge)[1:] {
		if have[c.Name] == nil {
			continue
		}
		rules, err := conn.GetRules(c.Table, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if pod, _, ok := parseForwardTag(r.UserData); ok && pod == podID {
				n++
			}
		}
	}
	return n
}

func hostPort(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// TestForwardReachesPod: a forwarded host port reaches the pod's listener
// from the host (at 127.0.0.1, the gateway and another host address), from
// another host and from another pod; after Teardown it does not.
func TestForwardReachesPod(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 15)
	hp := freePort(t)
	fwd := Forward{Protocol: "tcp", HostPort: hp, PodPort: 8080}
	ns, a := setupPod(t, cfg, "pod-a", fwd, Forward{Protocol: "udp", HostPort: hp, PodPort: 53})
	nsB, b := setupPod(t, cfg, "pod-b")
	outside, hostAddr, outsideAddr := newOutside(t, 15)
	listenIn(t, ns, netip.AddrPortFrom(a.IP, 8080))

	if len(a.Forwards) != 2 || a.Forwards[0] != fwd {
		t.Errorf("attachment forwards = %+v", a.Forwards)
	}
	ls, err := Leases(context.Background(), cfg)
	if err != nil || len(ls) != 2 || !reflect.DeepEqual(ls[0].Forwards, a.Forwards) || ls[1].Forwards != nil {
		t.Errorf("leases = %+v, %v; want pod-a's with its forwards", ls, err)
	}
	if n := forwardRules(t, cfg.Bridge, "pod-a"); n != 4 {
		t.Errorf("pod-a has %d forwarding rules, want 4 (prerouting and output, two forwards)", n)
	}

	for _, tc := range []struct {
		name, from, to string
		seenAs         netip.Addr // the client address the pod sees
	}{
		{"host to 127.0.0.1", "", hostPort(netip.MustParseAddr("127.0.0.1"), hp), a.Gateway},
		{"host to the gateway", "", hostPort(a.Gateway, hp), a.Gateway},
		{"host to another address of its own", "", hostPort(hostAddr.Addr(), hp), hostAddr.Addr()},
		{"outside to the host", outside, hostPort(hostAddr.Addr(), hp), outsideAddr.Addr()},
		{"another pod to the gateway (hairpin)", nsB, hostPort(a.Gateway, hp), a.Gateway},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer, err := dialFrom(tc.from, tc.to, 5*time.Second)
			if err != nil {
				t.Fatalf("dialling %s: %v", tc.to, err)
			}
			if !strings.HasPrefix(peer, tc.seenAs.String()+":") {
				t.Errorf("the pod saw the client as %s, want %s", peer, tc.seenAs)
			}
		})
	}
	// Only the host's own addresses are forwarded: another pod's address
	// at that port is that pod's.
	if peer, err := dialFrom(ns, hostPort(b.IP, hp), time.Second); err == nil {
		t.Errorf("pod-a dialling pod-b:%d reached a listener (seen as %s): the forward caught traffic to a non-host address", hp, peer)
	}

	if err := Teardown(context.Background(), cfg, "pod-a"); err != nil {
		t.Fatal(err)
	}
	if n := forwardRules(t, cfg.Bridge, "pod-a"); n != 0 {
		t.Errorf("%d forwarding rules of pod-a left after Teardown", n)
	}
	if peer, err := dialFrom("", hostPort(netip.MustParseAddr("127.0.0.1"), hp), time.Second); err == nil {
		t.Errorf("127.0.0.1:%d still answers after Teardown (seen as %s)", hp, peer)
	}
	if ls, err := Leases(context.Background(), cfg); err != nil || len(ls) != 1 || ls[0].PodID != "pod-b" {
		t.Errorf("leases after Teardown = %+v, %v", ls, err)
	}
}

// TestForwardTeardownFromLeaseFile tears a pod with forwards down as a new
// process does: a new Config over the same state directory.
func TestForwardTeardownFromLeaseFile(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 16)
	hp := freePort(t)
	fwd := Forward{Protocol: "tcp", HostPort: hp, PodPort: 80}
	ns, a := setupPod(t, cfg, "pod-a", fwd)
	listenIn(t, ns, netip.AddrPortFrom(a.IP, 80))
	to := hostPort(netip.MustParseAddr("127.0.0.1"), hp)
	if _, err := dialFrom("", to, 5*time.Second); err != nil {
		t.Fatalf("before Teardown: %v", err)
	}
	restarted := Config{StateDir: cfg.StateDir, Bridge: cfg.Bridge, Subnet: cfg.Subnet}
	ls, err := Leases(context.Background(), restarted)
	if err != nil || len(ls) != 1 || !reflect.DeepEqual(ls[0].Forwards, []Forward{fwd}) {
		t.Fatalf("leases seen after restart = %+v, %v", ls, err)
	}
	if err := Teardown(context.Background(), restarted, "pod-a"); err != nil {
		t.Fatal(err)
	}
	if n := forwardRules(t, cfg.Bridge, "pod-a"); n != 0 {
		t.Errorf("%d forwarding rules left", n)
	}
	if _, err := dialFrom("", to, time.Second); err == nil {
		t.Error("the forward still answers after Teardown")
	}
	checkNothingLeft(t, cfg, "pod-a")
}

// A host port forwarded to one pod is refused to another, of the same
// network or of another, and the refused Setup leaves nothing; the same
// port of the other protocol is free.
func TestForwardDuplicateHostPort(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 17)
	other := testConfig(t, 18)
	ctx := context.Background()
	hp := freePort(t)
	setupPod(t, cfg, "pod-a", Forward{Protocol: "tcp", HostPort: hp, PodPort: 80})

	_, err := Setup(ctx, cfg, "pod-b", newNetns(t, "pod-b"), Forward{Protocol: "tcp", HostPort: hp, PodPort: 81})
	if want := fmt.Sprintf("host port tcp/%d is already forwarded to pod pod-a", hp); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("same network: err = %v, want %q", err, want)
	}
	if ls, err := Leases(ctx, cfg); err != nil || len(ls) != 1 {
		t.Errorf("leases after the refused Setup = %+v, %v", ls, err)
	}
	if linkExists(t, hostVethName(cfg.Bridge, "pod-b")) || forwardRules(t, cfg.Bridge, "pod-b") != 0 {
		t.Error("the refused Setup left a veth or rules")
	}

	_, err = Setup(ctx, other, "pod-c", newNetns(t, "pod-c"), Forward{Protocol: "udp", HostPort: 1 + hp%65535, PodPort: 53}, Forward{Protocol: "tcp", HostPort: hp, PodPort: 80})
	if want := fmt.Sprintf("host port tcp/%d is already forwarded to pod pod-a (nftables chain portmap-in-%s)", hp, cfg.Bridge); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("other network: err = %v, want %q", err, want)
	}
	checkNothingLeft(t, other, "pod-c")
	if n := forwardRules(t, other.Bridge, "pod-c"); n != 0 {
		t.Errorf("the refused Setup left %d rules (all or nothing)", n)
	}

	setupPod(t, cfg, "pod-d", Forward{Protocol: "udp", HostPort: hp, PodPort: 53})
	if n := forwardRules(t, cfg.Bridge, "pod-d"); n != 2 {
		t.Errorf("pod-d has %d rules, want 2", n)
	}
}

// A Setup that fails after its forwards were checked leaves no rules, and
// leaves the rules of the pods already attached alone.
func TestForwardSetupFailureLeavesNoRules(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 19)
	fwd := Forward{Protocol: "tcp", HostPort: freePort(t), PodPort: 80}
	if _, err := Setup(context.Background(), cfg, "pod-x", "/proc/self/ns/net", fwd); err == nil {
		t.Fatal("Setup into the host namespace succeeded")
	}
	checkNothingLeft(t, cfg, "pod-x")
	if n := forwardRules(t, cfg.Bridge, "pod-x"); n != 0 {
		t.Errorf("%d rules left", n)
	}

	setupPod(t, cfg, "pod-a", Forward{Protocol: "tcp", HostPort: freePort(t), PodPort: 80})
	ns := newNetns(t, "taken")
	if out, err := runInNetns(ns, "/bin/busybox", "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"); err != nil {
		t.Fatalf("making an eth0 in the pod: %v\n%s", err, out)
	}
	if _, err := Setup(context.Background(), cfg, "pod-x", ns, fwd); err == nil || !strings.Contains(err.Error(), "creating veth pair") {
		t.Fatalf("Setup into a namespace with an eth0: err = %v", err)
	}
	if n := forwardRules(t, cfg.Bridge, "pod-x"); n != 0 {
		t.Errorf("%d rules of the failed pod left", n)
	}
	if n := forwardRules(t, cfg.Bridge, "pod-a"); n != 2 {
		t.Errorf("pod-a has %d rules after another pod's failed Setup, want 2", n)
	}
	// Its port is free again.
	setupPod(t, cfg, "pod-y", fwd)
}

// Bad forwards are refused before anything is touched (no root needed).
func TestForwardValidation(t *testing.T) {
	cfg := Config{StateDir: t.TempDir(), Bridge: "cbtestfwd"}
	long := strings.Repeat("p", 240)
	for _, tc := range []struct {
		name    string
		pod     string
		fwds    []Forward
		wantErr string
	}{
		{"host port 0", "pod", []Forward{{"tcp", 0, 80}}, "port 0"},
		{"pod port 0", "pod", []Forward{{"tcp", 8080, 0}}, "port 0"},
		{"protocol", "pod", []Forward{{"sctp", 8080, 80}}, `protocol "sctp"`},
		{"no protocol", "pod", []Forward{{"", 8080, 80}}, `protocol ""`},
		{"twice", "pod", []Forward{{"tcp", 8080, 80}, {"tcp", 8080, 81}}, "host port tcp/8080 is forwarded twice"},
		{"long pod ID", long, []Forward{{"tcp", 8080, 80}}, "too long to name its port forwarding rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Setup(context.Background(), cfg, tc.pod, "/nonexistent", tc.fwds...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	if entries, _ := os.ReadDir(cfg.StateDir); len(entries) != 0 {
		t.Errorf("refused forwards created %d entries in the state directory", len(entries))
	}
	// The same ports of two protocols are two host ports.
	if err := checkForwards([]Forward{{"tcp", 8080, 80}, {"udp", 8080, 80}}); err != nil {
		t.Error(err)
	}
}

func TestForwardTag(t *testing.T) {
	f := Forward{Protocol: "udp", HostPort: 5353, PodPort: 53}
	ud := forwardUserData(forwardTag("4a1f-pod", f))
	pod, key, ok := parseForwardTag(ud)
	if !ok || pod != "4a1f-pod" || key != "udp/5353" {
		t.Errorf("parseForwardTag(%q) = %q, %q, %t", ud, pod, key, ok)
	}
	// Malformed user data.
	for _, bad := range []string{
		"", "\x00", "\x00\x01\x00", "\x01\x05abcd\x00",
		"\x00\x1acorebox-rkt pod=a tcp/8080\x00extra", // more than one comment
		"\x00\x19corebox-rkt pod=a tcp/8080",          // no NUL
		"\x00\x30corebox-rkt pod=a tcp/8080\x00",      // length beyond the data
	} {
		if pod, key, ok := parseForwardTag([]byte(bad)); ok {
			t.Errorf("parseForwardTag(%q) = %q, %q: want not ours", bad, pod, key)
		}
	}
	// Well-formed comments that are not forwardTags.
	for _, bad := range []string{
		"other pod=a tcp/8080",
		"corebox-rkt pod=a tcp/0",
		"corebox-rkt pod=a tcp/08080",
		"corebox-rkt pod=a tcp/+8080",
		"corebox-rkt pod=a sctp/8080",
		"corebox-rkt pod=a tcp/65536",
		"corebox-rkt pod=a tcp8080",
		"corebox-rkt pod= tcp/8080",
		"corebox-rkt pod=a  tcp/8080",
		"corebox-rkt pod=a tcp/8080 ",
		"corebox-rkt a tcp/8080",
	} {
		if pod, key, ok := parseForwardTag(forwardUserData(bad)); ok {
			t.Errorf("parseForwardTag of comment %q = %q, %q: want not ours", bad, pod, key)
		}
	}
}

// FuzzParseForwardTag: no input panics, and what parses is exactly what
// forwardUserData makes of the pod and host port it names.
func FuzzParseForwardTag(f *testing.F) {
	f.Add(forwardUserData(forwardTag("pod-a", Forward{Protocol: "tcp", HostPort: 8080, PodPort: 80})))
	f.Add(forwardUserData(forwardTag("0c0ffee0-1234-5678-9abc-def012345678", Forward{Protocol: "udp", HostPort: 65535, PodPort: 1})))
	f.Add([]byte("\x00\x05abcd\x00"))
	f.Add([]byte("\x00\xffcorebox-rkt"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		pod, key, ok := parseForwardTag(data)
		if !ok {
			return
		}
		proto, _, _ := strings.Cut(key, "/")
		var port uint16
		if _, err := fmt.Sscanf(key[len(proto)+1:], "%d", &port); err != nil {
			t.Fatalf("host key %q: %v", key, err)
		}
		again := forwardUserData(forwardTag(pod, Forward{Protocol: proto, HostPort: port, PodPort: 1}))
		if string(again) != string(data) {
			t.Fatalf("%q parsed as pod %q, %s, which is %q", data, pod, key, again)
		}
	})
}
