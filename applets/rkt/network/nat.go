package network

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// natTableName is the nftables table (family ip) that holds every corebox
// network's masquerade chain.
const natTableName = "corebox"

func natTable() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyIPv4, Name: natTableName}
}

// masqueradeChainName is bridge's chain in the corebox table.
func masqueradeChainName(bridge string) string { return "masquerade-" + bridge }

// masqueradeChainExists says whether bridge's chain is in the corebox table.
func masqueradeChainExists(conn *nftables.Conn, bridge string) (bool, error) {
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("listing nftables chains: %w", err)
	}
	for _, c := range chains {
		if c.Table.Name == natTableName && c.Name == masqueradeChainName(bridge) {
			return true, nil
		}
	}
	return false, nil
}

// ensureMasquerade makes bridge's chain hold exactly one rule,
// "ip saddr SUBNET ip daddr != SUBNET masquerade", in one transaction
// (table and chain are created when missing, the chain is flushed and the
// rule added, so repeating it is harmless). It reports whether the chain
// was created.
func ensureMasquerade(bridge string, subnet netip.Prefix) (created bool, err error) {
	conn, err := nftables.New()
	if err != nil {
		return false, fmt.Errorf("opening nftables: %w", err)
	}
	existed, err := masqueradeChainExists(conn, bridge)
	if err != nil {
		return false, err
	}
	table := conn.AddTable(natTable())
	chain := conn.AddChain(&nftables.Chain{
		Name:     masqueradeChainName(bridge),
		Table:    table,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPostrouting,
		Priority: nftables.ChainPriorityNATSource,
	})
	conn.FlushChain(chain)
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: masqueradeExprs(subnet)})
	if err := conn.Flush(); err != nil {
		return false, fmt.Errorf("adding nftables masquerade for %s (table %s, chain %s): %w",
			subnet, natTableName, chain.Name, err)
	}
	return !existed, nil
}

// removeMasquerade deletes bridge's chain; a missing chain is no error.
func removeMasquerade(bridge string) error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("opening nftables: %w", err)
	}
	exists, err := masqueradeChainExists(conn, bridge)
	if err != nil || !exists {
		return err
	}
	conn.DelChain(&nftables.Chain{Name: masqueradeChainName(bridge), Table: natTable()})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("deleting nftables chain %s from table %s: %w", masqueradeChainName(bridge), natTableName, err)
	}
	return nil
}

// masqueradeExprs is "ip saddr SUBNET ip daddr != SUBNET masquerade".
func masqueradeExprs(subnet netip.Prefix) []expr.Any {
	network := subnet.Addr().AsSlice()
	mask := prefixMask(subnet.Bits())
	const saddrOffset, daddrOffset = 12, 16
	match := func(offset uint32, op expr.CmpOp) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
			&expr.Cmp{Op: op, Register: 1, Data: network},
		}
	}
	exprs := match(saddrOffset, expr.CmpOpEq)
	exprs = append(exprs, match(daddrOffset, expr.CmpOpNeq)...)
	return append(exprs, &expr.Counter{}, &expr.Masq{})
}

func prefixMask(bits int) []byte {
	m := ^uint32(0) << (32 - bits)
	return []byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}
