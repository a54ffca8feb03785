package machine

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// IPConfig is what an ip= parameter says.
type IPConfig struct {
	Network Network
	// Hostname is the <hostname> field, "" when empty. The kernel sets the
	// host name from it; corebox.hostname= wins over it.
	Hostname string
}

// The fields of ip=, in order (Documentation/admin-guide/nfs/nfsroot.rst).
var ipFields = [...]string{"client-ip", "server-ip", "gw-ip", "netmask", "hostname", "device", "autoconf", "dns0-ip", "dns1-ip", "ntp0-ip"}

// ParseIP parses the value of the kernel's ip= parameter:
//
//	ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0-ip>:<dns1-ip>:<ntp0-ip>
//
// or one of its short forms: "dhcp" (also "on", "any", "both"), and "none",
// "off" or "" for no network. Empty fields are absent, and trailing ones may
// be left out. Addresses are IPv4, as in the kernel.
//
// Autoconf "dhcp" (or "on", "any", "both") gives Mode "dhcp" and takes only
// <device>, <hostname> and the DNS servers from the other fields;
// <client-ip>, <gw-ip> or <netmask> with it is an error, since the kernel
// would then skip DHCP on a single interface and corebox will not guess
// which was meant. Autoconf "off", "none" or empty gives Mode "static" when
// <client-ip> is set, with the netmask defaulting to the address's class as
// the kernel does, and Mode "none" when it is not. "bootp" and "rarp" are not
// supported. <server-ip> and <ntp0-ip> are checked but not used: corebox has
// no NFS root and no NTP client.
//
// A Network that ParseIP returns passes Config.Validate. Errors name the
// field and its value, as in `bad netmask "255.0.x"`; all of them are
// reported, separated by "; ".
func ParseIP(v string) (IPConfig, error) {
	switch v {
	case "", "off", "none":
		return IPConfig{Network: Network{Mode: ModeNone}}, nil
	}
	if isDHCP(v) {
		return IPConfig{Network: Network{Mode: ModeDHCP}}, nil
	}
	if v == "bootp" || v == "rarp" {
		return IPConfig{}, fmt.Errorf("autoconf %q is not supported; use dhcp", v)
	}
	f := strings.Split(v, ":")
	if len(f) > len(ipFields) {
		return IPConfig{}, fmt.Errorf("%q has %d fields, want at most %d", v, len(f), len(ipFields))
	}
	var field [len(ipFields)]string
	copy(field[:], f)

	var errs []error
	// addr parses field i, an IPv4 address that must be a host's unless it
	// is the server's or the NTP server's, which corebox does not use.
	addr := func(i int) netip.Addr {
		if field[i] == "" {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(field[i])
		switch {
		case err != nil || !a.Is4():
			errs = append(errs, fmt.Errorf("bad %s %q", ipFields[i], field[i]))
		case i != 1 && i != 9 && !isHostAddr(a):
			errs = append(errs, fmt.Errorf("bad %s %q: not a unicast host address", ipFields[i], field[i]))
		default:
			return a
		}
		return netip.Addr{}
	}
	client, _, gw := addr(0), addr(1), addr(2)
	dns0, dns1, _ := addr(7), addr(8), addr(9)

	bits := -1
	if field[3] != "" {
		var err error
		if bits, err = maskBits(field[3]); err != nil {
			errs = append(errs, fmt.Errorf("bad netmask %q", field[3]))
		}
	}
	var ipc IPConfig
	if h := field[4]; h != "" {
		if err := checkHostname(h); err != nil {
			errs = append(errs, fmt.Errorf("bad hostname: %w", err))
		}
		ipc.Hostname = h
	}
	n := &ipc.Network
	if d := field[5]; d != "" {
		if err := checkInterface(d); err != nil {
			errs = append(errs, fmt.Errorf("bad device: %w", err))
		}
		n.Interface = d
	}
	for _, a := range []netip.Addr{dns0, dns1} {
		if a.IsValid() {
			n.DNS = append(n.DNS, a.String())
		}
	}

	switch auto := field[6]; {
	case isDHCP(auto):
		n.Mode = ModeDHCP
		if field[0] != "" || field[2] != "" || field[3] != "" {
			errs = append(errs, fmt.Errorf("client-ip, gw-ip and netmask are for autoconf off or none, not %q", auto))
		}
	case auto == "" || auto == "off" || auto == "none":
		if field[0] == "" {
			n.Mode = ModeNone
			if field[2] != "" || field[3] != "" || field[7] != "" || field[8] != "" {
				errs = append(errs, errors.New("gw-ip, netmask and dns-ips need a client-ip or autoconf dhcp"))
			}
			break
		}
		n.Mode = ModeStatic
		if !client.IsValid() {
			break // already reported
		}
		if bits < 0 {
			bits = classfulBits(client)
		}
		p := netip.PrefixFrom(client, bits)
		n.Address = p.String()
		if gw.IsValid() {
			if !p.Contains(gw) {
				errs = append(errs, fmt.Errorf("gw-ip %s is outside %s", gw, p))
			}
			n.Gateway = gw.String()
		}
	default:
		errs = append(errs, fmt.Errorf("bad autoconf %q: want dhcp, on, any, both, off or none", auto))
	}
	if err := joinInline(errs); err != nil {
		return IPConfig{}, err
	}
	return ipc, nil
}

// isDHCP reports whether an autoconf value asks for DHCP.
func isDHCP(s string) bool {
	switch s {
	case "dhcp", "on", "any", "both":
		return true
	}
	return false
}

// maskBits returns the prefix length of a dotted IPv4 netmask, which must be
// a run of ones followed by zeros.
func maskBits(s string) (int, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, errors.New("not an IPv4 netmask")
	}
	b := a.As4()
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for m&(1<<31) != 0 {
		m <<= 1
		ones++
	}
	if m != 0 {
		return 0, errors.New("ones not contiguous")
	}
	return ones, nil
}

// classfulBits is the kernel's netmask for an address given without one.
func classfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	default:
		return 24
	}
}
