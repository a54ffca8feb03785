package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
)

// Defaults applied by Config for its zero fields.
const (
	DefaultStateDir = "/var/lib/rkt/networks"
	DefaultBridge   = "rkt0"
	DefaultMTU      = 1500
)

// DefaultSubnet is rkt's default network, 172.16.28.0/24.
func DefaultSubnet() netip.Prefix { return netip.MustParsePrefix("172.16.28.0/24") }

// Config describes one pod network. The zero value is the default network.
type Config struct {
	// StateDir holds one directory per network (named after Bridge) with the
	// lease file and its lock. Default DefaultStateDir.
	StateDir string
	// Bridge is the host bridge's interface name and names the network.
	// Default DefaultBridge.
	Bridge string
	// Subnet is the network's IPv4 prefix, in canonical (masked) form, at
	// most a /30. Its first address is the gateway (the bridge's address).
	// Default DefaultSubnet().
	Subnet netip.Prefix
	// MTU of the bridge and of both veth ends. Default DefaultMTU.
	MTU int
	// Logger receives what was created and removed. Default: discarded.
	Logger *slog.Logger
}

// withDefaults returns c with its zero fields filled in, validated.
func (c Config) withDefaults() (Config, error) {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Bridge == "" {
		c.Bridge = DefaultBridge
	}
	if !c.Subnet.IsValid() {
		c.Subnet = DefaultSubnet()
	}
	if c.MTU == 0 {
		c.MTU = DefaultMTU
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, c.validate()
}

func (c Config) validate() error {
	if err := checkInterfaceName(c.Bridge); err != nil {
		return fmt.Errorf("network config: bridge: %w", err)
	}
	if err := checkSubnet(c.Subnet); err != nil {
		return fmt.Errorf("network config: %w", err)
	}
	if c.MTU < 68 || c.MTU > 65535 {
		return fmt.Errorf("network config: MTU %d is outside 68..65535", c.MTU)
	}
	return nil
}

func checkSubnet(p netip.Prefix) error {
	if !p.Addr().Is4() {
		return fmt.Errorf("subnet %s is not IPv4 (the pod network is IPv4 only)", p)
	}
	if p.Masked() != p {
		return fmt.Errorf("subnet %s has host bits set (did you mean %s?)", p, p.Masked())
	}
	if p.Bits() > 30 {
		return fmt.Errorf("subnet %s is smaller than a /30: no room for a gateway and a pod", p)
	}
	if p.Bits() < 8 {
		return fmt.Errorf("subnet %s is larger than a /8", p)
	}
	return nil
}

// gateway is the subnet's first host address, the bridge's address.
func gateway(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// broadcast is the subnet's last address.
func broadcast(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// checkInterfaceName accepts what the kernel's dev_valid_name accepts.
func checkInterfaceName(name string) error {
	switch {
	case name == "":
		return errors.New("interface name is empty")
	case len(name) > 15:
		return fmt.Errorf("interface name %q is longer than 15 bytes", name)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is not allowed", name)
	case strings.ContainsAny(name, "/:"):
		return fmt.Errorf("interface name %q contains '/' or ':'", name)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("interface name %q contains whitespace or a control character", name)
		}
	}
	return nil
}

// checkPodID accepts non-empty printable IDs without whitespace, at most 256
// bytes (rkt's pod UUIDs, and test names).
func checkPodID(id string) error {
	if id == "" {
		return errors.New("pod ID is empty")
	}
	if len(id) > 256 {
		return fmt.Errorf("pod ID %.20q… is longer than 256 bytes", id)
	}
	for _, r := range id {
		if r <= ' ' || r == 0x7f || r == '/' || r == 0xfffd {
			return fmt.Errorf("pod ID %q contains whitespace, '/', a control character or invalid UTF-8", id)
		}
	}
	return nil
}
