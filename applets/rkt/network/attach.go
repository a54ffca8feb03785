package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Attachment is how a pod is attached to a network.
type Attachment struct {
	IP       netip.Addr   // the pod's address (on eth0 inside the pod)
	Gateway  netip.Addr   // the bridge's address, the pod's default route
	Prefix   netip.Prefix // the network's subnet
	HostVeth string       // the host end of the pod's veth pair
	Forwards []Forward    // the host ports forwarded to the pod
}

// PodInterface is the name of the pod's end of its veth pair, inside the
// pod's network namespace.
const PodInterface = "eth0"

// nsGetNSType is NS_GET_NSTYPE, _IO(0xb7, 0x3), from linux/nsfs.h.
const nsGetNSType = 0xb703

// openNetns opens the network namespace file at path and checks that it is
// one, and not the caller's own (that one is --net=host).
func openNetns(path string) (netns.NsHandle, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return netns.None(), fmt.Errorf("opening network namespace %s: %w", path, err)
	}
	ns := netns.NsHandle(fd)
	fail := func(err error) (netns.NsHandle, error) {
		ns.Close()
		return netns.None(), err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return fail(fmt.Errorf("network namespace %s: %w", path, err))
	}
	if sfs.Type != unix.NSFS_MAGIC {
		return fail(fmt.Errorf("%s is not a namespace file (not on nsfs)", path))
	}
	kind, err := unix.IoctlRetInt(fd, nsGetNSType)
	if err != nil {
		return fail(fmt.Errorf("network namespace %s: asking its type: %w", path, err))
	}
	if kind != unix.CLONE_NEWNET {
		return fail(fmt.Errorf("%s is a namespace but not a network namespace", path))
	}
	self, err := netns.Get()
	if err != nil {
		return fail(fmt.Errorf("opening the caller's network namespace: %w", err))
	}
	defer self.Close()
	if self.Equal(ns) {
		return fail(fmt.Errorf("%s is the host's own network namespace (that is --net=host, not a pod network)", path))
	}
	return ns, nil
}

// undoStack runs the undo steps of a failed Setup, newest first.
type undoStack []func() error

func (u undoStack) run(log *slog.Logger) error {
	var errs []error
	for i := len(u) - 1; i >= 0; i-- {
		if err := u[i](); err != nil {
			log.Error("undoing pod network setup", "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Setup attaches the pod podID, whose network namespace is the file at
// netnsPath (/proc/PID/ns/net or a bind mount of it), to the network cfg:
// it leases an address, ensures the bridge (gateway = the subnet's first
// address, up), ip_forward and the NAT chains, creates a veth pair
// whose pod end is eth0 inside the namespace (up, with the leased address
// and a default route via the gateway) and brings the namespace's lo up.
// Then it forwards the host ports of forwards to the pod: what arrives for
// them at any of the host's addresses (127.0.0.1 and the other loopback
// addresses included, which turns the bridge's route_localnet on) goes to
// the pod's address; the pod sees the client's address, except for
// clients on the host's loopback or in the network itself, which it sees
// as the gateway. A host port that a pod of any network already has
// forwarded is an error.
//
// The bridge and the NAT chains already existing is fine. A pod that
// already has a lease is an error (Teardown it first). On any failure
// everything this call created is removed again and the lease released;
// turning ip_forward on is not undone.
func Setup(ctx context.Context, cfg Config, podID string, netnsPath string, forwards ...Forward) (_ *Attachment, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkPodID(podID); err != nil {
		return nil, fmt.Errorf("setting up pod network: %w", err)
	}
	if err := checkForwards(forwards); err != nil {
		return nil, fmt.Errorf("setting up network %s for pod %s: %w", cfg.Bridge, podID, err)
	}
	for _, f := range forwards {
		if len(forwardTag(podID, f)) > maxForwardTag {
			return nil, fmt.Errorf("setting up network %s for pod %s: the pod ID is too long to name its port forwarding rules (at most %d bytes with ports)",
				cfg.Bridge, podID, maxForwardTag-len(forwardTag("", f)))
		}
	}
	ns, err := openNetns(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("setting up network %s for pod %s: %w", cfg.Bridge, podID, err)
	}
	defer ns.Close()
	// Only the route family: the handle's default also opens xfrm and
	// netfilter sockets, which a kernel without them (corebox's) refuses.
	host, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("setting up network %s for pod %s: opening netlink: %w", cfg.Bridge, podID, err)
	}
	defer host.Close()

	store, err := lockLeases(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("setting up network %s for pod %s: %w", cfg.Bridge, podID, err)
	}
	defer store.unlock()
	log := cfg.Logger.With("network", cfg.Bridge, "pod", podID)

	var undo undoStack
	defer func() {
		if err != nil {
			if uerr := undo.run(log); uerr != nil {
				err = fmt.Errorf("%w (and undoing it: %w)", err, uerr)
			}
			err = fmt.Errorf("setting up network %s for pod %s: %w", cfg.Bridge, podID, err)
		}
	}()

	vethName := hostVethName(cfg.Bridge, podID)
	leases, lease, err := store.lease(podID, vethName, forwards)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() error {
		leases.remove(podID)
		return store.save(leases)
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	bridge, created, err := ensureBridge(host, cfg, store.dir)
	if created {
		log.Info("created bridge", "gateway", gateway(cfg.Subnet))
		undo = append(undo, func() error { return deleteLink(host, cfg.Bridge, "bridge") })
	}
	if err != nil {
		return nil, err
	}
	if err := enableIPForward(); err != nil {
		return nil, err
	}
	natCreated, err := ensureNAT(cfg.Bridge, cfg.Subnet)
	if err != nil {
		return nil, err
	}
	if natCreated {
		log.Info("created NAT chains", "table", natTableName, "chain", masqueradeChainName(cfg.Bridge), "subnet", cfg.Subnet)
		undo = append(undo, func() error { return removeNAT(cfg.Bridge) })
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// A host end left behind by a crash between creating it and recording
	// the lease's release would make the name collide.
	if err := deleteLink(host, vethName, "veth"); err != nil {
		return nil, err
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: vethName, MTU: cfg.MTU},
		PeerName:         PodInterface,
		PeerMTU:          uint32(cfg.MTU),
		PeerHardwareAddr: macFromIP(lease.IP),
		PeerNamespace:    netlink.NsFd(ns),
	}
	if err := host.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("creating veth pair %s/%s: %w", vethName, PodInterface, err)
	}
	undo = append(undo, func() error { return deleteLink(host, vethName, "veth") })
	hostEnd, err := host.LinkByName(vethName)
	if err != nil {
		return nil, fmt.Errorf("looking up veth %s: %w", vethName, err)
	}
	if err := host.LinkSetMaster(hostEnd, bridge); err != nil {
		return nil, fmt.Errorf("enslaving veth %s to bridge %s: %w", vethName, cfg.Bridge, err)
	}
	if err := host.LinkSetUp(hostEnd); err != nil {
		return nil, fmt.Errorf("bringing veth %s up: %w", vethName, err)
	}
	if err := configurePod(ns, cfg, lease.IP); err != nil {
		return nil, err
	}
	if len(forwards) > 0 {
		if err := enableRouteLocalnet(cfg.Bridge); err != nil {
			return nil, err
		}
		if err := addForwards(cfg.Bridge, podID, lease.IP, forwards); err != nil {
			return nil, err
		}
		log.Info("forwarded host ports", "forwards", forwards)
	}
	log.Info("attached pod", "ip", lease.IP, "veth", vethName)
	return &Attachment{IP: lease.IP, Gateway: gateway(cfg.Subnet), Prefix: cfg.Subnet, HostVeth: vethName, Forwards: lease.Forwards}, nil
}

// configurePod sets up the pod's side: lo up, eth0 with ip up, a default
// route via the gateway.
func configurePod(ns netns.NsHandle, cfg Config, ip netip.Addr) error {
	pod, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening netlink in the pod's namespace: %w", err)
	}
	defer pod.Close()
	if err := linkUp(pod, "lo"); err != nil {
		return err
	}
	eth, err := pod.LinkByName(PodInterface)
	if err != nil {
		return fmt.Errorf("looking up %s in the pod: %w", PodInterface, err)
	}
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(ip, cfg.Subnet.Bits()))}
	if err := pod.AddrAdd(eth, addr); err != nil {
		return fmt.Errorf("adding %s to %s in the pod: %w", addr.IPNet, PodInterface, err)
	}
	if err := pod.LinkSetUp(eth); err != nil {
		return fmt.Errorf("bringing %s up in the pod: %w", PodInterface, err)
	}
	gw := gateway(cfg.Subnet)
	route := &netlink.Route{
		LinkIndex: eth.Attrs().Index,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:        gw.AsSlice(),
	}
	if err := pod.RouteAdd(route); err != nil {
		return fmt.Errorf("adding the default route via %s in the pod: %w", gw, err)
	}
	return nil
}

// LoopbackUp brings lo up in the network namespace at netnsPath: all the
// network a --net=none pod gets.
func LoopbackUp(netnsPath string) error {
	ns, err := openNetns(netnsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening netlink in network namespace %s: %w", netnsPath, err)
	}
	defer h.Close()
	if err := linkUp(h, "lo"); err != nil {
		return fmt.Errorf("network namespace %s: %w", netnsPath, err)
	}
	return nil
}

func linkUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	return nil
}

// bridgeAliasPrefix starts the alias (ip link's "alias") of a bridge this
// package created; the rest is the lease directory of its network. Two
// lease directories that name the same bridge would hand out the same
// addresses: Setup refuses the second while the first has pods.
const bridgeAliasPrefix = "corebox-rkt leases="

// ensureBridge returns the network's bridge, up, with the gateway address,
// creating it when missing (created reports that, also when a later step
// failed, so that the caller can undo it). leaseDir is the network's lease
// directory, recorded in the bridge's alias.
func ensureBridge(h *netlink.Handle, cfg Config, leaseDir string) (_ netlink.Link, created bool, err error) {
	gw := gateway(cfg.Subnet)
	link, err := h.LinkByName(cfg.Bridge)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		if err := checkSubnetFree(h, cfg.Subnet); err != nil {
			return nil, false, err
		}
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: cfg.Bridge, MTU: cfg.MTU, HardwareAddr: macFromIP(gw)}}
		if err := h.LinkAdd(br); err != nil {
			return nil, false, fmt.Errorf("creating bridge %s: %w", cfg.Bridge, err)
		}
		created = true
		if link, err = h.LinkByName(cfg.Bridge); err != nil {
			return nil, created, fmt.Errorf("looking up bridge %s: %w", cfg.Bridge, err)
		}
		if err := claimBridge(h, link, leaseDir); err != nil {
			return nil, created, err
		}
	case err != nil:
		return nil, false, fmt.Errorf("looking up bridge %s: %w", cfg.Bridge, err)
	case link.Type() != "bridge":
		return nil, false, fmt.Errorf("interface %s exists but is a %s, not a bridge", cfg.Bridge, link.Type())
	default:
		owner, ours := strings.CutPrefix(link.Attrs().Alias, bridgeAliasPrefix)
		if ours && owner != leaseDir {
			if err := checkBridgeIdle(h, link, owner); err != nil {
				return nil, false, err
			}
			if err := claimBridge(h, link, leaseDir); err != nil {
				return nil, false, err
			}
		}
	}
	addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(gw, cfg.Subnet.Bits()))}
	if err := h.AddrReplace(link, addr); err != nil {
		return nil, created, fmt.Errorf("adding gateway address %s to bridge %s: %w", addr.IPNet, cfg.Bridge, err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, created, fmt.Errorf("bringing bridge %s up: %w", cfg.Bridge, err)
	}
	return link, created, nil
}

// claimBridge records leaseDir in the bridge's alias (when it fits the
// kernel's 255 bytes; a longer path leaves the bridge unmarked).
func claimBridge(h *netlink.Handle, br netlink.Link, leaseDir string) error {
	alias := bridgeAliasPrefix + leaseDir
	if len(alias) > 255 {
		return nil
	}
	if err := h.LinkSetAlias(br, alias); err != nil {
		return fmt.Errorf("setting the alias of bridge %s: %w", br.Attrs().Name, err)
	}
	return nil
}

// checkBridgeIdle fails when br, made for the network whose lease
// directory is otherDir, still has ports or leases there.
func checkBridgeIdle(h *netlink.Handle, br netlink.Link, otherDir string) error {
	inUse := func(why string) error {
		return fmt.Errorf("bridge %s belongs to the pod network with leases in %s, which %s: give this network another bridge name or use the same state directory",
			br.Attrs().Name, otherDir, why)
	}
	if data, err := os.ReadFile(filepath.Join(otherDir, leaseFileName)); err == nil {
		if lf, err := parseLeaseFile(data); err == nil && len(lf.Leases) > 0 {
			return inUse(fmt.Sprintf("has %d leases", len(lf.Leases)))
		}
	}
	ports, err := bridgePorts(h, br)
	if err != nil {
		return err
	}
	if len(ports) > 0 {
		return inUse("still has ports (" + strings.Join(ports, ", ") + ")")
	}
	return nil
}

// bridgePorts names the interfaces enslaved to br.
func bridgePorts(h *netlink.Handle, br netlink.Link) ([]string, error) {
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	var ports []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			ports = append(ports, l.Attrs().Name)
		}
	}
	return ports, nil
}

// checkSubnetFree fails when a route of the host other than the default
// route overlaps subnet: the host's own network would become unreachable
// through the new bridge.
func checkSubnetFree(h *netlink.Handle, subnet netip.Prefix) error {
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("listing the host's routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		if !ok || ones == 0 {
			continue
		}
		p := netip.PrefixFrom(dst.Unmap(), ones)
		if p.Overlaps(subnet) {
			dev := strconv.Itoa(r.LinkIndex)
			if l, err := h.LinkByIndex(r.LinkIndex); err == nil {
				dev = l.Attrs().Name
			}
			return fmt.Errorf("subnet %s overlaps the host's route to %s on %s: choose another subnet", subnet, p, dev)
		}
	}
	return nil
}

// deleteLink deletes the interface name if it exists and is of kind
// ("veth", "bridge"); one of another kind is left alone with an error.
func deleteLink(h *netlink.Handle, name, kind string) error {
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s %s: %w", kind, name, err)
	}
	if link.Type() != kind {
		return fmt.Errorf("interface %s is a %s, not a %s: not deleting it", name, link.Type(), kind)
	}
	if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting %s %s: %w", kind, name, err)
	}
	return nil
}

// enableIPForward turns net.ipv4.ip_forward on in the caller's namespace.
func enableIPForward() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	cur, err := os.ReadFile(path)
	if err == nil && len(cur) > 0 && cur[0] == '1' {
		return nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enabling IPv4 forwarding: %w", err)
	}
	return nil
}

// macFromIP is a locally administered MAC address derived from ip
// (0a:58:a.b.c.d, as CNI's bridge plugin does): a pod that gets an address
// again gets the same MAC, so neighbours' ARP caches stay right, and the
// bridge keeps a fixed MAC instead of taking its lowest port's.
func macFromIP(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x0a, 0x58, a[0], a[1], a[2], a[3]}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// Teardown detaches the pod podID from the network cfg: it deletes the
// pod's port forwarding rules and its veth pair (its host end; the pod end
// goes with it) and releases the lease. When that was the network's last
// lease, the NAT chains are removed and so is the bridge, unless some
// other interface is still enslaved to it. Tearing down a pod that is not attached is no error, and
// Teardown needs nothing but the lease file: it works after a crash or a
// reboot.
func Teardown(ctx context.Context, cfg Config, podID string) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	if err := checkPodID(podID); err != nil {
		return fmt.Errorf("tearing down pod network: %w", err)
	}
	if err := teardown(ctx, cfg, podID); err != nil {
		return fmt.Errorf("tearing down network %s for pod %s: %w", cfg.Bridge, podID, err)
	}
	return nil
}

func teardown(ctx context.Context, cfg Config, podID string) error {
	host, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("opening netlink: %w", err)
	}
	defer host.Close()
	store, err := lockLeases(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.unlock()
	leases, err := store.load()
	if err != nil {
		return err
	}
	vethName := hostVethName(cfg.Bridge, podID)
	lease, leased := leases.find(podID)
	if leased {
		vethName = lease.HostVeth
	}
	log := cfg.Logger.With("network", cfg.Bridge, "pod", podID)
	// The forwards and the veth go before the lease: a crash in between
	// leaves a lease that the next Teardown releases, never rules nor a
	// veth nobody knows of (nor rules that would forward to the next pod
	// given the address).
	n, err := removeForwards(cfg.Bridge, podID)
	if err != nil {
		return err
	}
	if n > 0 {
		log.Info("removed port forwards", "rules", n)
	}
	if err := deleteLink(host, vethName, "veth"); err != nil {
		return err
	}
	if leased {
		leases.remove(podID)
		if err := store.save(leases); err != nil {
			return err
		}
		log.Info("detached pod", "ip", lease.IP, "veth", vethName)
	}
	if len(leases.Leases) > 0 {
		return nil
	}
	// The bridge and chain of another lease directory's network (see
	// bridgeAliasPrefix) are that network's to remove.
	if br, err := host.LinkByName(cfg.Bridge); err == nil {
		if owner, ok := strings.CutPrefix(br.Attrs().Alias, bridgeAliasPrefix); ok && owner != store.dir {
			log.Info("keeping bridge and NAT chains: they belong to another lease directory", "owner", owner)
			return nil
		}
	}
	if err := removeNAT(cfg.Bridge); err != nil {
		return err
	}
	return removeIdleBridge(host, cfg.Bridge, log)
}

// removeIdleBridge deletes the bridge if it exists and has no ports.
func removeIdleBridge(h *netlink.Handle, name string, log *slog.Logger) error {
	br, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up bridge %s: %w", name, err)
	}
	if br.Type() != "bridge" {
		return nil
	}
	ports, err := bridgePorts(h, br)
	if err != nil {
		return err
	}
	if len(ports) > 0 {
		log.Info("keeping bridge: it still has ports", "ports", ports)
		return nil
	}
	if err := deleteLink(h, name, "bridge"); err != nil {
		return err
	}
	log.Info("removed bridge and NAT chains")
	return nil
}
