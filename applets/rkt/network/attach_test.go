package network

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// testConfig is a network of its own for one test: its own lease
// directory, a bridge named cbtest<n> and subnet 10.231.<n>.0/24. Whatever
// the test leaves attached is torn down when it ends.
func testConfig(t testing.TB, n int) Config {
	t.Helper()
	return testNetwork(t, n, fmt.Sprintf("10.231.%d.0/24", n))
}

// testNetwork is testConfig with another subnet.
func testNetwork(t testing.TB, n int, subnet string) Config {
	t.Helper()
	cfg := Config{
		StateDir: t.TempDir(),
		Bridge:   "cbtest" + strconv.Itoa(n),
		Subnet:   netip.MustParsePrefix(subnet),
		Logger:   testLogger(t),
	}
	// What an earlier, killed run may have left (the lease directory is new).
	if os.Geteuid() == 0 {
		if err := removeNAT(cfg.Bridge); err != nil {
			t.Fatal(err)
		}
		if l, err := netlink.LinkByName(cfg.Bridge); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if ls, err := Leases(ctx, cfg); err == nil {
			for _, l := range ls {
				if err := Teardown(ctx, cfg, l.PodID); err != nil {
					t.Errorf("cleanup: %v", err)
				}
			}
		}
		if err := Teardown(ctx, cfg, "cleanup"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return cfg
}

func setupPod(t *testing.T, cfg Config, podID string, forwards ...Forward) (nsPath string, a *Attachment) {
	t.Helper()
	nsPath = newNetns(t, podID)
	a, err := Setup(context.Background(), cfg, podID, nsPath, forwards...)
	if err != nil {
		t.Fatalf("Setup(%s): %v", podID, err)
	}
	return nsPath, a
}

func linkExists(t testing.TB, name string) bool {
	t.Helper()
	_, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return false
	}
	if err != nil {
		t.Fatalf("looking up %s: %v", name, err)
	}
	return true
}

func chainExists(t testing.TB, bridge string) bool {
	t.Helper()
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	ok, err := masqueradeChainExists(conn, bridge)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

func ping(nsPath string, ip netip.Addr) error {
	out, err := runInNetns(nsPath, "/bin/busybox", "ping", "-c", "1", "-W", "2", ip.String())
	if err != nil {
		return fmt.Errorf("ping %s: %w\n%s", ip, err, out)
	}
	return nil
}

// listenIn opens a TCP listener on addr inside the namespace at nsPath
// ("" for the host's). It answers each connection with the peer address it
// saw and closes it.
func listenIn(t *testing.T, nsPath string, addr netip.AddrPort) net.Listener {
	t.Helper()
	var ln net.Listener
	listen := func() error {
		var err error
		ln, err = net.Listen("tcp4", addr.String())
		return err
	}
	var err error
	if nsPath == "" {
		err = listen()
	} else {
		err = inNetns(nsPath, listen)
	}
	if err != nil {
		t.Fatalf("listening on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr())
			c.Close()
		}
	}()
	return ln
}

// dialFrom connects to addr from inside the namespace at nsPath ("" for the
// host's) and returns the peer address the listener reported.
func dialFrom(nsPath string, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	dial := func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	}
	var err error
	if nsPath == "" {
		err = dial()
	} else {
		err = inNetns(nsPath, dial)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	if err != nil {
		return "", fmt.Errorf("reading from %s: %w", addr, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func TestSetupConfiguresPod(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 1)
	ns, a := setupPod(t, cfg, "pod-a")
	if want := netip.MustParseAddr("10.231.1.2"); a.IP != want {
		t.Errorf("first pod got %s, want %s", a.IP, want)
	}
	if a.Gateway != netip.MustParseAddr("10.231.1.1") || a.Prefix != cfg.Subnet || a.HostVeth != hostVethName(cfg.Bridge, "pod-a") {
		t.Errorf("attachment = %+v", a)
	}
	out, err := runInNetns(ns, "/bin/busybox", "ip", "-o", "addr")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "eth0    inet 10.231.1.2/24") && !strings.Contains(out, "eth0 inet 10.231.1.2/24") {
		t.Errorf("pod addresses lack eth0 10.231.1.2/24:\n%s", out)
	}
	if !strings.Contains(out, "lo    inet 127.0.0.1/8") && !strings.Contains(out, "lo inet 127.0.0.1/8") {
		t.Errorf("pod's lo is not up:\n%s", out)
	}
	out, err = runInNetns(ns, "/bin/busybox", "ip", "route")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "default via 10.231.1.1 dev eth0") {
		t.Errorf("pod routes lack the default route via the gateway:\n%s", out)
	}
	br, err := netlink.LinkByName(cfg.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if br.Attrs().OperState == netlink.OperDown || br.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("bridge %s is not up: %v", cfg.Bridge, br.Attrs().Flags)
	}
	veth, err := netlink.LinkByName(a.HostVeth)
	if err != nil {
		t.Fatal(err)
	}
	if veth.Attrs().MasterIndex != br.Attrs().Index {
		t.Errorf("veth %s is not a port of %s", a.HostVeth, cfg.Bridge)
	}
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil || strings.TrimSpace(string(fwd)) != "1" {
		t.Errorf("ip_forward = %q, %v; want 1", fwd, err)
	}
	if !chainExists(t, cfg.Bridge) {
		t.Errorf("no masquerade chain for %s", cfg.Bridge)
	}
	if _, err := Setup(context.Background(), cfg, "pod-a", ns); err == nil || !strings.Contains(err.Error(), "already has address") {
		t.Errorf("second Setup of the same pod: err = %v, want 'already has address'", err)
	}
}

func TestTwoPodsReachEachOther(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 2)
	nsA, a := setupPod(t, cfg, "pod-a")
	nsB, b := setupPod(t, cfg, "pod-b")
	if a.IP == b.IP {
		t.Fatalf("both pods got %s", a.IP)
	}
	if err := ping(nsA, b.IP); err != nil {
		t.Error(err)
	}
	if err := ping(nsB, a.IP); err != nil {
		t.Error(err)
	}
	listenIn(t, nsB, netip.AddrPortFrom(b.IP, 8080))
	peer, err := dialFrom(nsA, netip.AddrPortFrom(b.IP, 8080).String(), 5*time.Second)
	if err != nil {
		t.Fatalf("pod a dialling pod b: %v", err)
	}
	if !strings.HasPrefix(peer, a.IP.String()+":") {
		t.Errorf("pod b saw pod a as %s, want %s (no NAT inside the subnet)", peer, a.IP)
	}
}

func TestHostAndPodReachEachOther(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 3)
	ns, a := setupPod(t, cfg, "pod-a")

	listenIn(t, ns, netip.AddrPortFrom(a.IP, 8080))
	peer, err := dialFrom("", netip.AddrPortFrom(a.IP, 8080).String(), 5*time.Second)
	if err != nil {
		t.Fatalf("host dialling the pod: %v", err)
	}
	if !strings.HasPrefix(peer, a.Gateway.String()+":") {
		t.Errorf("pod saw the host as %s, want the gateway %s", peer, a.Gateway)
	}

	ln := listenIn(t, "", netip.AddrPortFrom(a.Gateway, 0))
	peer, err = dialFrom(ns, ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("pod dialling the host's side of the bridge: %v", err)
	}
	if !strings.HasPrefix(peer, a.IP.String()+":") {
		t.Errorf("host saw the pod as %s, want %s", peer, a.IP)
	}
}

// newOutside makes an "outside" namespace linked to the host by a /30,
// 10.232.<n>.0/30 (the host's end is cbtestout<n>), with no route back to
// any pod subnet. It returns the namespace and both ends' addresses.
func newOutside(t *testing.T, n int) (nsPath string, hostAddr, outsideAddr netip.Prefix) {
	t.Helper()
	nsPath = newNetns(t, "outside")
	hostAddr = netip.MustParsePrefix(fmt.Sprintf("10.232.%d.1/30", n))
	outsideAddr = netip.MustParsePrefix(fmt.Sprintf("10.232.%d.2/30", n))
	outNS, err := openNetns(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outNS.Close()
	name := "cbtestout" + strconv.Itoa(n)
	if l, err := netlink.LinkByName(name); err == nil { // left by a killed run
		netlink.LinkDel(l)
	}
	link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(outNS)}
	if err := netlink.LinkAdd(link); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(link) })
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(hostAddr)}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"ip", "addr", "add", outsideAddr.String(), "dev", "eth0"}, {"ip", "link", "set", "eth0", "up"}} {
		if out, err := runInNetns(nsPath, "/bin/busybox", args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	return nsPath, hostAddr, outsideAddr
}

// TestMasquerade connects a pod to an "outside" namespace that is linked to
// the host by a /30 and has no route back to the pod subnet: the
// connection works only if it leaves the host with the host's address.
func TestMasquerade(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 4)
	ns, _ := setupPod(t, cfg, "pod-a")
	outside, hostAddr, outsideAddr := newOutside(t, 4)

	ln := listenIn(t, outside, netip.AddrPortFrom(outsideAddr.Addr(), 9090))
	peer, err := dialFrom(ns, ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("pod dialling the outside listener: %v", err)
	}
	if !strings.HasPrefix(peer, hostAddr.Addr().String()+":") {
		t.Errorf("outside saw the pod as %s, want the host's %s", peer, hostAddr.Addr())
	}

	// Control: without the masquerade rule the same connection must fail,
	// or the check above proves nothing.
	if err := removeNAT(cfg.Bridge); err != nil {
		t.Fatal(err)
	}
	if peer, err := dialFrom(ns, ln.Addr().String(), time.Second); err == nil {
		t.Errorf("without masquerade the pod still reached the outside (seen as %s)", peer)
	}
	if _, err := ensureNAT(cfg.Bridge, cfg.Subnet); err != nil {
		t.Fatal(err)
	}
}

func TestTeardownRemovesEverythingAndReusesAddress(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 5)
	ctx := context.Background()
	_, a := setupPod(t, cfg, "pod-a")
	_, b := setupPod(t, cfg, "pod-b")

	if err := Teardown(ctx, cfg, "pod-a"); err != nil {
		t.Fatal(err)
	}
	if linkExists(t, a.HostVeth) {
		t.Errorf("veth %s still exists after Teardown", a.HostVeth)
	}
	ls, err := Leases(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].PodID != "pod-b" {
		t.Errorf("leases after tearing down pod-a = %+v, want only pod-b's", ls)
	}
	if !linkExists(t, cfg.Bridge) || !chainExists(t, cfg.Bridge) {
		t.Errorf("bridge or masquerade chain gone while pod-b is attached")
	}
	if err := Teardown(ctx, cfg, "pod-a"); err != nil {
		t.Errorf("second Teardown of pod-a: %v", err)
	}

	nsC, c := setupPod(t, cfg, "pod-c")
	if c.IP != a.IP {
		t.Errorf("pod-c got %s, want pod-a's released %s", c.IP, a.IP)
	}
	if err := ping(nsC, b.IP); err != nil {
		t.Errorf("pod on a reused address: %v", err)
	}

	for _, pod := range []string{"pod-b", "pod-c"} {
		if err := Teardown(ctx, cfg, pod); err != nil {
			t.Fatal(err)
		}
	}
	if linkExists(t, cfg.Bridge) {
		t.Errorf("bridge %s still exists after the last pod's Teardown", cfg.Bridge)
	}
	if chainExists(t, cfg.Bridge) {
		t.Errorf("masquerade chain of %s still exists after the last pod's Teardown", cfg.Bridge)
	}
	if ls, err := Leases(ctx, cfg); err != nil || len(ls) != 0 {
		t.Errorf("leases after the last Teardown = %+v, %v", ls, err)
	}
}

// TestTeardownAfterRestart tears a pod down with nothing but the lease
// file: a new Config value over the same StateDir, as a new rkt process
// after a crash has.
func TestTeardownAfterRestart(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 6)
	_, a := setupPod(t, cfg, "pod-a")
	restarted := Config{StateDir: cfg.StateDir, Bridge: cfg.Bridge, Subnet: cfg.Subnet}
	ls, err := Leases(context.Background(), restarted)
	if err != nil || len(ls) != 1 || ls[0].IP != a.IP || ls[0].HostVeth != a.HostVeth {
		t.Fatalf("leases seen after restart = %+v, %v", ls, err)
	}
	if err := Teardown(context.Background(), restarted, "pod-a"); err != nil {
		t.Fatal(err)
	}
	if linkExists(t, a.HostVeth) || linkExists(t, cfg.Bridge) {
		t.Errorf("veth or bridge left after Teardown from the lease file")
	}
}

// checkNothingLeft fails t if the network cfg has a lease, a bridge, a
// masquerade chain or podID's veth.
func checkNothingLeft(t *testing.T, cfg Config, podID string) {
	t.Helper()
	ls, err := Leases(context.Background(), cfg)
	if err != nil || len(ls) != 0 {
		t.Errorf("leases = %+v, %v; want none", ls, err)
	}
	if linkExists(t, hostVethName(cfg.Bridge, podID)) {
		t.Errorf("veth of %s left behind", podID)
	}
	if linkExists(t, cfg.Bridge) {
		t.Errorf("bridge %s left behind", cfg.Bridge)
	}
	if chainExists(t, cfg.Bridge) {
		t.Errorf("masquerade chain of %s left behind", cfg.Bridge)
	}
}

func TestSetupFailureLeavesNothing(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 7)
	ctx := context.Background()
	notNS := t.TempDir() + "/plain-file"
	if err := os.WriteFile(notNS, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"missing", t.TempDir() + "/no-such-netns", "no such file"},
		{"plain file", notNS, "not a namespace file"},
		{"other namespace kind", "/proc/self/ns/uts", "not a network namespace"},
		{"host namespace", "/proc/self/ns/net", "host's own network namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Setup(ctx, cfg, "pod-x", tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Setup with %s: err = %v, want %q", tc.path, err, tc.want)
			}
			checkNothingLeft(t, cfg, "pod-x")
		})
	}

	// A failure after the lease, the bridge and the NAT chain were made:
	// the pod's namespace already has an eth0, so the veth cannot be
	// created there.
	t.Run("eth0 taken in the pod", func(t *testing.T) {
		ns := newNetns(t, "taken")
		nsh, err := openNetns(ns)
		if err != nil {
			t.Fatal(err)
		}
		defer nsh.Close()
		h, err := netlink.NewHandleAt(nsh)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0peer"}); err != nil {
			t.Fatalf("making an eth0 in the pod: %v", err)
		}
		_, err = Setup(ctx, cfg, "pod-x", ns)
		if err == nil || !strings.Contains(err.Error(), "creating veth pair") {
			t.Fatalf("Setup into a namespace with an eth0: err = %v, want a veth creation error", err)
		}
		checkNothingLeft(t, cfg, "pod-x")
	})

	// With another pod attached, a failed Setup must leave the shared
	// bridge and chain alone.
	t.Run("shared parts kept", func(t *testing.T) {
		_, a := setupPod(t, cfg, "pod-a")
		if _, err := Setup(ctx, cfg, "pod-x", "/proc/self/ns/net"); err == nil {
			t.Fatal("Setup into the host namespace succeeded")
		}
		ls, err := Leases(ctx, cfg)
		if err != nil || len(ls) != 1 || ls[0].IP != a.IP {
			t.Errorf("leases = %+v, %v; want only pod-a's", ls, err)
		}
		if !linkExists(t, cfg.Bridge) || !chainExists(t, cfg.Bridge) || !linkExists(t, a.HostVeth) {
			t.Error("a failed Setup removed parts pod-a uses")
		}
	})
}

func TestSetupOverExistingBridgeAndChain(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 8)
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: cfg.Bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureNAT(cfg.Bridge, cfg.Subnet); err != nil {
		t.Fatal(err)
	}
	nsA, _ := setupPod(t, cfg, "pod-a")
	_, b := setupPod(t, cfg, "pod-b")
	if err := ping(nsA, b.IP); err != nil {
		t.Error(err)
	}
	conn, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := conn.GetRules(natTable(), &nftables.Chain{Name: masqueradeChainName(cfg.Bridge), Table: natTable()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != len(masqueradeRules(cfg.Subnet)) {
		t.Errorf("masquerade chain has %d rules after repeated setup, want %d", len(rules), len(masqueradeRules(cfg.Subnet)))
	}
}

// A bridge name taken by another kind of interface is an error that
// leaves the interface and the lease file as they were.
func TestSetupRefusesNonBridge(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 9)
	other := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: cfg.Bridge}, PeerName: cfg.Bridge + "p"}
	if err := netlink.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(other) })
	_, err := Setup(context.Background(), cfg, "pod-a", newNetns(t, "pod-a"))
	if err == nil || !strings.Contains(err.Error(), "not a bridge") {
		t.Fatalf("err = %v, want 'not a bridge'", err)
	}
	if !linkExists(t, cfg.Bridge) {
		t.Error("the veth named like the bridge was deleted")
	}
	if ls, err := Leases(context.Background(), cfg); err != nil || len(ls) != 0 {
		t.Errorf("leases = %+v, %v; want none", ls, err)
	}
}

func TestLoopbackUp(t *testing.T) {
	needRoot(t)
	ns := newNetns(t, "none")
	if err := LoopbackUp(ns); err != nil {
		t.Fatal(err)
	}
	if err := ping(ns, netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Error(err)
	}
	if err := LoopbackUp("/proc/self/ns/net"); err == nil {
		t.Error("LoopbackUp accepted the host's namespace")
	}
}

// A subnet that overlaps a route of the host is refused before anything is
// created.
func TestSetupRefusesOverlappingSubnet(t *testing.T) {
	needRoot(t)
	cfg := testConfig(t, 10)
	other := testNetwork(t, 11, "10.231.10.128/25")
	setupPod(t, other, "pod-other")
	_, err := Setup(context.Background(), cfg, "pod-a", newNetns(t, "pod-a"))
	if err == nil || !strings.Contains(err.Error(), "overlaps the host's route to 10.231.10.128/25 on cbtest11") {
		t.Fatalf("err = %v, want an overlap error naming cbtest11's route", err)
	}
	checkNothingLeft(t, cfg, "pod-a")
}

// BenchmarkSetupTeardown attaches and detaches one pod while another keeps
// the bridge and the NAT chain in place (the usual case on a busy host).
func BenchmarkSetupTeardown(b *testing.B) {
	needRoot(b)
	cfg := testConfig(b, 12)
	cfg.Logger = nil
	keep := newNetns(b, "keep")
	if _, err := Setup(context.Background(), cfg, "keep", keep); err != nil {
		b.Fatal(err)
	}
	ns := newNetns(b, "pod")
	ctx := context.Background()
	for b.Loop() {
		if _, err := Setup(ctx, cfg, "pod", ns); err != nil {
			b.Fatal(err)
		}
		if err := Teardown(ctx, cfg, "pod"); err != nil {
			b.Fatal(err)
		}
	}
}

// Two lease directories naming one bridge would hand out the same
// addresses: the second is refused while the first has pods, and takes
// the bridge over once it is idle.
func TestBridgeSharedByTwoStateDirs(t *testing.T) {
	needRoot(t)
	first := testConfig(t, 14)
	second := testConfig(t, 14)
	ctx := context.Background()
	_, a := setupPod(t, first, "pod-a")
	_, err := Setup(ctx, second, "pod-b", newNetns(t, "pod-b"))
	if err == nil || !strings.Contains(err.Error(), "belongs to the pod network with leases in "+filepath.Join(first.StateDir, first.Bridge)) {
		t.Fatalf("Setup over another state directory's bridge: err = %v", err)
	}
	if ls, err := Leases(ctx, second); err != nil || len(ls) != 0 {
		t.Errorf("refused Setup left leases %+v, %v", ls, err)
	}
	if !linkExists(t, a.HostVeth) || !chainExists(t, first.Bridge) {
		t.Error("refused Setup removed the first network's parts")
	}
	if err := Teardown(ctx, second, "pod-b"); err != nil {
		t.Fatal(err)
	}
	if !linkExists(t, first.Bridge) || !chainExists(t, first.Bridge) {
		t.Error("Teardown in the second, empty network removed the first network's bridge or chain")
	}

	// The first network's pods are gone but its bridge stayed (a crash):
	// the second network takes it over.
	if err := Teardown(ctx, first, "pod-a"); err != nil {
		t.Fatal(err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: first.Bridge}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetAlias(br, bridgeAliasPrefix+filepath.Join(first.StateDir, first.Bridge)); err != nil {
		t.Fatal(err)
	}
	setupPod(t, second, "pod-b")
	l, err := netlink.LinkByName(second.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	if want := bridgeAliasPrefix + filepath.Join(second.StateDir, second.Bridge); l.Attrs().Alias != want {
		t.Errorf("bridge alias = %q, want %q", l.Attrs().Alias, want)
	}
}
