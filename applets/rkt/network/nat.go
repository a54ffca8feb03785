package network

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// natTableName is the nftables table (family ip) that holds every corebox
// network's NAT chains.
const natTableName = "corebox"

func natTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyIPv4, Name: natTableName}
}

// masqueradeChainName is bridge's postrouting chain in the corebox table.
func masqueradeChainName(bridge string) string { return "masquerade-" + bridge }

// The port-forwarding chains' names start with these; neither prefix is
// a prefix of the other, so no two bridges' chain names collide.
const (
	portmapInPrefix    = "portmap-in-"
	portmapLocalPrefix = "portmap-local-"
)

// portmapInChainName is bridge's prerouting chain: port forwards for what
// arrives from outside the host (other hosts, pods).
func portmapInChainName(bridge string) string { return portmapInPrefix + bridge }

// portmapLocalChainName is bridge's output chain: port forwards for what
// the host itself sends to its own addresses.
func portmapLocalChainName(bridge string) string { return portmapLocalPrefix + bridge }

// natChains are bridge's chains in the corebox table.
func natChains(bridge string) []*nftables.Chain {
	t := natTable()
	return []*nftables.Chain{
		{Name: masqueradeChainName(bridge), Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource},
		{Name: portmapInChainName(bridge), Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest},
		{Name: portmapLocalChainName(bridge), Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest},
	}
}

// tableChains lists the corebox table's chains by name.
func tableChains(conn *nftables.Conn) (map[string]*nftables.Chain, error) {
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, fmt.Errorf("listing nftables chains: %w", err)
	}
	m := map[string]*nftables.Chain{}
	for _, c := range chains {
		if c.Table.Name == natTableName {
			m[c.Name] = c
		}
	}
	return m, nil
}

// masqueradeChainExists says whether bridge's masquerade chain is in the
// corebox table.
func masqueradeChainExists(conn *nftables.Conn, bridge string) (bool, error) {
	chains, err := tableChains(conn)
	if err != nil {
		return false, err
	}
	_, ok := chains[masqueradeChainName(bridge)]
	return ok, nil
}

// ensureNAT makes bridge's chains exist, in one transaction: the
// masquerade chain (flushed and refilled by masqueradeRules, so repeating
// it is harmless) and the two port-forwarding chains (kept with whatever
// rules they have). It reports whether the masquerade chain was created.
func ensureNAT(bridge string, subnet netip.Prefix) (created bool, err error) {
	conn, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("opening nftables: %w", err)
	}
	existed, err := masqueradeChainExists(conn, bridge)
	if err != nil {
		return false, err
	}
	table := conn.AddTable(natTable())
	chains := natChains(bridge)
	for _, c := range chains {
		conn.AddChain(c)
	}
	masq := chains[0]
	conn.FlushChain(masq)
	for _, exprs := range masqueradeRules(subnet) {
		conn.AddRule(&nftables.Rule{Table: table, Chain: masq, Exprs: exprs})
	}
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("adding nftables chains for %s (table %s): %w", subnet, natTableName, err)
	}
	return !existed, nil
}

// removeNAT deletes bridge's chains and their rules; missing chains are no
// error.
func removeNAT(bridge string) error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}
	have, err := tableChains(conn)
	if err != nil {
		return err
	}
	var names []string
	for _, c := range natChains(bridge) {
		if have[c.Name] != nil {
			conn.DelChain(c)
			names = append(names, c.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("deleting nftables chains %s from table %s: %w", strings.Join(names, ", "), natTableName, err)
	}
	return nil
}

// forwardedPorts maps every host port forwarded by a rule in the corebox
// table (any network's) to its pod and chain. Every forward has a rule in
// both of its network's chains; the prerouting chains are enough.
func forwardedPorts(conn *nftables.Conn) (map[string]string, error) {
	chains, err := tableChains(conn)
	if err != nil {
		return nil, err
	}
	taken := map[string]string{}
	for name, c := range chains {
		if !strings.HasPrefix(name, portmapInPrefix) {
			continue
		}
		rules, err := conn.GetRules(c.Table, c)
		if err != nil {
			return nil, fmt.Errorf("listing the rules of nftables chain %s: %w", name, err)
		}
		for _, r := range rules {
			if pod, key, ok := parseForwardTag(r.UserData); ok {
				taken[key] = fmt.Sprintf("pod %s (nftables chain %s)", pod, name)
			}
		}
	}
	return taken, nil
}

// addForwards adds podID's forwards to podIP into bridge's port-forwarding
// chains, in one transaction: all of them or, on error, none. A host port
// that a rule of any network already forwards is refused.
func addForwards(bridge, podID string, podIP netip.Addr, fwds []Forward) error {
	if len(fwds) == 0 {
		return nil
	}
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}
	taken, err := forwardedPorts(conn)
	if err != nil {
		return err
	}
	for _, f := range fwds {
		if owner, ok := taken[f.hostKey()]; ok {
			return fmt.Errorf("host port %s is already forwarded to %s", f.hostKey(), owner)
		}
	}
	table := natTable()
	for _, c := range natChains(bridge)[1:] {
		for _, f := range fwds {
			conn.AddRule(&nftables.Rule{Table: table, Chain: c, Exprs: dnatExprs(podIP, f), UserData: forwardUserData(forwardTag(podID, f))})
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("adding nftables port forwards to %s: %w", podIP, err)
	}
	return nil
}

// removeForwards deletes podID's rules from bridge's port-forwarding
// chains, in one transaction; missing chains or rules are no error.
func removeForwards(bridge, podID string) (removed int, err error) {
	conn, err := nftables.New()
	if err != nil {
		return 0, fmt.Errorf("opening nftables: %w", err)
	}
	have, err := tableChains(conn)
	if err != nil {
		return 0, err
	}
	for _, c := range natChains(bridge)[1:] {
		if have[c.Name] == nil {
			continue
		}
		rules, err := conn.GetRules(c.Table, c)
		if err != nil {
			return 0, fmt.Errorf("listing the rules of nftables chain %s: %w", c.Name, err)
		}
		for _, r := range rules {
			if pod, _, ok := parseForwardTag(r.UserData); ok && pod == podID {
				if err := conn.DelRule(r); err != nil {
					return 0, fmt.Errorf("deleting a rule of nftables chain %s: %w", c.Name, err)
				}
				removed++
			}
		}
	}
	if removed == 0 {
		return 0, nil
	}
	if err := conn.Flush(); err != nil {
		return 0, fmt.Errorf("deleting the nftables port forwards of pod %s: %w", podID, err)
	}
	return removed, nil
}

// enableRouteLocalnet turns net.ipv4.conf.<bridge>.route_localnet on, as
// CNI's portmap does: without it the kernel refuses to route a packet from
// 127.0.0.1 out of the bridge, so a forward reached at 127.0.0.1 would not
// work. It is the bridge's own setting and goes with the bridge.
func enableRouteLocalnet(bridge string) error {
	path := "/proc/sys/net/ipv4/conf/" + bridge + "/route_localnet"
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enabling route_localnet on %s: %w", bridge, err)
	}
	return nil
}

const (
	saddrOffset = 12 // of the IPv4 header
	daddrOffset = 16
	// ipsDstNAT is IPS_DST_NAT, the conntrack status bit of a DNATed
	// connection (linux/netfilter/nf_conntrack_common.h).
	ipsDstNAT = 1 << 5
)

// masqueradeRules are the rules of a network's postrouting chain:
//
//	ip saddr SUBNET ip daddr != SUBNET masquerade
//	ip saddr 127.0.0.0/8 ip daddr SUBNET ct status dnat masquerade
//	ip saddr SUBNET ip daddr SUBNET ct status dnat masquerade
//
// The first is the pods' way out; the second lets a forward reached at
// 127.0.0.1 get its answers (the pod would answer 127.0.0.1, itself); the
// third does the same for a pod that reaches a forward to a pod of its
// own network (hairpin), which would otherwise be answered directly, not
// through the host's NAT.
func masqueradeRules(subnet netip.Prefix) [][]expr.Any {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	out := slices.Concat(matchPrefix(saddrOffset, subnet, expr.CmpOpEq), matchPrefix(daddrOffset, subnet, expr.CmpOpNeq))
	local := slices.Concat(matchPrefix(saddrOffset, loopback, expr.CmpOpEq), matchPrefix(daddrOffset, subnet, expr.CmpOpEq), matchDNAT())
	hairpin := slices.Concat(matchPrefix(saddrOffset, subnet, expr.CmpOpEq), matchPrefix(daddrOffset, subnet, expr.CmpOpEq), matchDNAT())
	var rules [][]expr.Any
	for _, r := range [][]expr.Any{out, local, hairpin} {
		rules = append(rules, append(r, &expr.Counter{}, &expr.Masq{}))
	}
	return rules
}

// matchPrefix is "ip saddr PREFIX" (offset saddrOffset) or "ip daddr
// PREFIX", with op CmpOpEq, or its negation with CmpOpNeq.
func matchPrefix(offset uint32, p netip.Prefix, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: prefixMask(p.Bits()), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// matchDNAT is "ct status dnat".
func matchDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// dnatExprs is "meta l4proto PROTO th dport HOSTPORT fib daddr type local
// dnat to POD:PODPORT": only what is addressed to one of the host's own
// addresses is forwarded, not what the host routes elsewhere (a pod's
// connection to some server's port 8080).
func dnatExprs(podIP netip.Addr, f Forward) []expr.Any {
	proto := byte(unix.IPPROTO_TCP)
	if f.Protocol == "udp" {
		proto = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(f.HostPort)},
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
		&expr.Counter{},
		&expr.Immediate{Register: 1, Data: podIP.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(f.PodPort)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
	}
}

func prefixMask(bits int) []byte {
	m := ^uint32(0) << (32 - bits)
	return []byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}
