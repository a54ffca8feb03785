package init

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"

	"github.com/corebox/corebox/applets/init/machine"
)

func upLoopback() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	return netlink.LinkSetUp(lo)
}

// upEthernet sets every ethernet interface up, best effort.
func upEthernet() {
	links, _ := netlink.LinkList()
	for _, l := range links {
		if isEthernet(l) {
			netlink.LinkSetUp(l)
		}
	}
}

func isEthernet(l netlink.Link) bool {
	n := l.Attrs().Name
	return l.Type() == "device" && len(l.Attrs().HardwareAddr) == 6 && (strings.HasPrefix(n, "eth") || strings.HasPrefix(n, "en"))
}

// firstEthernet returns the named interface, or the first ethernet one by
// name (eth0 before eth1, en… by the same order).
func firstEthernet(name string) (netlink.Link, error) {
	if name != "" {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return nil, fmt.Errorf("interface %q: %w", name, err)
		}
		return l, nil
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Name < links[j].Attrs().Name })
	for _, l := range links {
		if isEthernet(l) {
			return l, nil
		}
	}
	return nil, errors.New("no ethernet interface")
}

// configureNetwork brings up the first ethernet interface (or the named
// one) with DHCP or a static address and writes /etc/resolv.conf.
func configureNetwork(ctx context.Context, log *slog.Logger, n machine.Network) error {
	if n.Mode == "none" {
		return nil
	}
	link, err := firstEthernet(n.Interface)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", name, err)
	}
	switch n.Mode {
	case "static":
		addr, err := netlink.ParseAddr(n.Address)
		if err != nil {
			return fmt.Errorf("network.address %q: %w", n.Address, err)
		}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("%s: adding %s: %w", name, n.Address, err)
		}
		if n.Gateway != "" {
			gw := net.ParseIP(n.Gateway)
			if err := netlink.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
				return fmt.Errorf("%s: default route via %s: %w", name, n.Gateway, err)
			}
		}
		log.Info("network", "interface", name, "address", n.Address, "gateway", n.Gateway)
		return writeResolvConf(n.DNS)
	default: // dhcp
		start := time.Now()
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		results := dhclient.SendRequests(dctx, []netlink.Link{link}, true, false, dhclient.Config{Timeout: 3 * time.Second, Retries: 5}, 30*time.Second)
		for r := range results {
			if r.Err != nil {
				return fmt.Errorf("DHCP on %s: %w", name, r.Err)
			}
			if err := r.Lease.Configure(); err != nil {
				return fmt.Errorf("DHCP on %s: configuring lease: %w", name, err)
			}
			msg, _ := r.Lease.Message()
			attrs := []any{"interface", name, "took", time.Since(start).Round(time.Millisecond)}
			if msg != nil {
				attrs = append(attrs, "address", msg.YourIPAddr.String(), "router", fmt.Sprint(msg.Router()))
			}
			log.Info("network dhcp", attrs...)
			if len(n.DNS) > 0 {
				return writeResolvConf(n.DNS)
			}
			return nil
		}
		return fmt.Errorf("DHCP on %s: no answer", name)
	}
}

func writeResolvConf(servers []string) error {
	if len(servers) == 0 {
		return nil
	}
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	os.MkdirAll("/etc", 0o755)
	return os.WriteFile("/etc/resolv.conf", []byte(b.String()), 0o644)
}
