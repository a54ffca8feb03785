package machine

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/corebox/corebox/applets/init/unit"
)

// Config is the machine config. The zero value of a field stands for its
// default (see ApplyDefaults); Validate accepts those zero values.
type Config struct {
	// Hostname is RFC 1123 labels, at most 64 characters; default
	// DefaultHostname.
	Hostname string  `json:"hostname"`
	Network  Network `json:"network"`
	// Units are extra unit files, written to /etc/corebox/units.
	Units    []UnitFile `json:"units"`
	Registry Registry   `json:"registry"`
	Update   Update     `json:"update"`
	// SSHAuthorizedKeys are OpenSSH authorized_keys lines, one key each.
	// They are checked and stored; corebox runs no SSH server of its own.
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys"`
}

// The network modes.
const (
	ModeDHCP   = "dhcp"
	ModeStatic = "static"
	ModeNone   = "none"
)

// Network says how the machine's one configured interface gets its address.
type Network struct {
	// Mode is ModeDHCP (the default), ModeStatic or ModeNone (loopback only).
	Mode string `json:"mode"`
	// Interface is a Linux interface name; "" means the first ethernet
	// interface, found at boot.
	Interface string `json:"interface"`
	// Address is the interface's address in CIDR form ("10.0.0.5/24"):
	// required for static, not allowed otherwise.
	Address string `json:"address"`
	// Gateway is the default route's IP address, in Address's subnet; static
	// only, optional.
	Gateway string `json:"gateway"`
	// DNS are name server IP addresses: the only ones for static, added to
	// the DHCP server's for dhcp.
	DNS []string `json:"dns"`
}

// UnitFile is a unit file the config adds.
type UnitFile struct {
	// Name is a unit name that package unit accepts (unit.CheckName):
	// systemd's rules, of a type init runs, e.g. "foo.service",
	// "bar.target" or the template "baz@.service"; never a path.
	Name     string `json:"name"`
	Contents string `json:"contents"` // the unit file itself; not empty
	Enable   bool   `json:"enable"`   // start it at boot; not for templates
}

// Registry says how this machine finds its etcd cluster. Peers and Discovery
// are mutually exclusive; with neither, the machine is a cluster of one.
type Registry struct {
	// Peers are etcd --initial-cluster entries, "name=http://10.0.0.1:2380":
	// a member name and its peer URL (scheme, host and port only).
	Peers []string `json:"peers"`
	// Discovery is an etcd discovery URL.
	Discovery string `json:"discovery"`
}

// Update says where update_engine asks for updates.
type Update struct {
	// Server is the Omaha server's http(s) URL; "" turns update checks off.
	Server string `json:"server"`
	// Group is the update channel, like "stable"; default DefaultGroup.
	Group string `json:"group"`
}

// Defaults.
const (
	DefaultHostname = "corebox"
	DefaultGroup    = "stable"
)

// MaxConfigSize is the largest config, in bytes, that Decode and Load accept.
const MaxConfigSize = 1 << 20

// Decode reads one JSON config from r, strictly: an unknown field (names
// match exactly, not ignoring case), a repeated field, a value of the wrong
// type or anything after the object is an error. It then applies the
// defaults and validates the result. All problems come back at once,
// joined, one per line; the config is returned only when there are none.
// r is read to its end, at most MaxConfigSize bytes.
func Decode(r io.Reader) (*Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("config is larger than the %d MiB limit", MaxConfigSize>>20)
	}
	shapeErrs, badPaths, err := checkShape(data, configType)
	if err != nil {
		return nil, err
	}
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	// encoding/json finds a subset of what checkShape finds, without the
	// paths; it can only fail here after checkShape has said why.
	if err := dec.Decode(&c); err != nil && len(shapeErrs) == 0 {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.ApplyDefaults()
	errs := shapeErrs
	for _, err := range c.validate() {
		// A field that had the wrong type holds its zero value; saying
		// that value is wrong too would only confuse.
		var fe *fieldError
		if errors.As(err, &fe) && slices.ContainsFunc(badPaths, func(p string) bool { return under(fe.path, p) }) {
			continue
		}
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &c, nil
}

// under reports whether path is p or inside it.
func under(path, p string) bool {
	return path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[")
}

// ApplyDefaults fills the fields left empty with their defaults. It is the
// only place defaults are set.
func (c *Config) ApplyDefaults() {
	if c.Hostname == "" {
		c.Hostname = DefaultHostname
	}
	if c.Network.Mode == "" {
		c.Network.Mode = ModeDHCP
	}
	if c.Update.Group == "" {
		c.Update.Group = DefaultGroup
	}
}

// Validate checks every field and returns every problem, joined, each
// naming its field path as in "network.address: …" or "units[2].name: …";
// nil when there are none.
func (c Config) Validate() error {
	return errors.Join(c.validate()...)
}

func (c Config) validate() []error {
	var errs []error
	if c.Hostname != "" {
		if err := checkHostname(c.Hostname); err != nil {
			errs = append(errs, fieldErr("hostname", "%v", err))
		}
	}
	errs = append(errs, validateNetwork(c.Network, "network")...)
	errs = append(errs, validateUnits(c.Units)...)
	errs = append(errs, validateRegistry(c.Registry)...)
	if c.Update.Server != "" {
		if _, err := checkHTTPURL(c.Update.Server); err != nil {
			errs = append(errs, fieldErr("update.server", "%v", err))
		}
	}
	if g := c.Update.Group; g != "" && !validGroup(g) {
		errs = append(errs, fieldErr("update.group", "%q is not a group name: want 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit", g))
	}
	for i, k := range c.SSHAuthorizedKeys {
		if err := checkAuthorizedKey(k); err != nil {
			errs = append(errs, fieldErr(fmt.Sprintf("ssh_authorized_keys[%d]", i), "%v", err))
		}
	}
	return errs
}

func validateNetwork(n Network, path string) []error {
	var errs []error
	add := func(field, format string, a ...any) {
		errs = append(errs, fieldErr(path+"."+field, format, a...))
	}
	mode := n.Mode
	if mode == "" {
		mode = ModeDHCP
	}
	switch mode {
	case ModeDHCP, ModeStatic, ModeNone:
	default:
		add("mode", "%q is not one of %q, %q, %q", n.Mode, ModeDHCP, ModeStatic, ModeNone)
	}
	if n.Interface != "" {
		if err := checkInterface(n.Interface); err != nil {
			add("interface", "%v", err)
		}
	}
	var prefix netip.Prefix
	switch {
	case n.Address == "" && mode == ModeStatic:
		add("address", "required when %s.mode is %q", path, ModeStatic)
	case n.Address == "":
	case mode != ModeStatic:
		add("address", "set, but %s.mode is %q, not %q", path, mode, ModeStatic)
	default:
		p, err := netip.ParsePrefix(n.Address)
		switch {
		case err != nil:
			add("address", "%q is not a CIDR address", n.Address)
		case !isHostAddr(p.Addr()):
			add("address", "%q is not a unicast host address", n.Address)
		default:
			prefix = p
		}
	}
	if n.Gateway != "" {
		gw, err := netip.ParseAddr(n.Gateway)
		switch {
		case mode != ModeStatic:
			add("gateway", "set, but %s.mode is %q, not %q", path, mode, ModeStatic)
		case err != nil || gw.Zone() != "":
			add("gateway", "%q is not an IP address", n.Gateway)
		case !isHostAddr(gw):
			add("gateway", "%q is not a unicast host address", n.Gateway)
		case prefix.IsValid() && !prefix.Masked().Contains(gw):
			add("gateway", "%s is outside %s.address %s", gw, path, prefix)
		}
	}
	if len(n.DNS) > 0 && mode == ModeNone {
		add("dns", "set, but %s.mode is %q", path, ModeNone)
	}
	for i, s := range n.DNS {
		if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" || !isHostAddr(a) {
			add(fmt.Sprintf("dns[%d]", i), "%q is not an IP address", s)
		}
	}
	return errs
}

// isHostAddr accepts an address an interface, a gateway or a name server
// can have.
func isHostAddr(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

func validateUnits(units []UnitFile) []error {
	var errs []error
	first := map[string]int{}
	for i, u := range units {
		p := fmt.Sprintf("units[%d]", i)
		err := unit.CheckName(u.Name)
		switch j, dup := first[u.Name]; {
		case err != nil:
			why := strings.TrimPrefix(err.Error(), fmt.Sprintf("invalid unit name %q: ", u.Name))
			errs = append(errs, fieldErr(p+".name", "%q is not a unit name: %s", u.Name, why))
		case dup:
			errs = append(errs, fieldErr(p+".name", "%q is already units[%d]", u.Name, j))
		default:
			first[u.Name] = i
		}
		if u.Contents == "" {
			errs = append(errs, fieldErr(p+".contents", "empty"))
		}
		if u.Enable && err == nil && isTemplate(u.Name) {
			errs = append(errs, fieldErr(p+".enable", "%q is a template; enable an instance of it instead", u.Name))
		}
	}
	return errs
}

// isTemplate reports whether a valid unit name is a template, "NAME@.TYPE".
func isTemplate(name string) bool {
	return strings.HasSuffix(name[:strings.LastIndexByte(name, '.')], "@")
}

func validateRegistry(r Registry) []error {
	var errs []error
	if len(r.Peers) > 0 && r.Discovery != "" {
		errs = append(errs, fieldErr("registry", "peers and discovery are mutually exclusive; set one"))
	}
	seen := map[string]int{}
	for i, peer := range r.Peers {
		p := fmt.Sprintf("registry.peers[%d]", i)
		u, err := checkPeer(peer)
		if err != nil {
			errs = append(errs, fieldErr(p, "%v", err))
			continue
		}
		if j, dup := seen[u]; dup {
			errs = append(errs, fieldErr(p, "peer URL %s is already registry.peers[%d]", u, j))
			continue
		}
		seen[u] = i
	}
	if r.Discovery != "" {
		if _, err := checkHTTPURL(r.Discovery); err != nil {
			errs = append(errs, fieldErr("registry.discovery", "%v", err))
		}
	}
	return errs
}

// checkPeer checks an --initial-cluster entry, name=URL, where the URL is a
// peer URL as etcd wants it: http(s), a host, a port and nothing else.
func checkPeer(s string) (peerURL string, err error) {
	name, peerURL, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return "", fmt.Errorf("%q is not name=URL", s)
	}
	if strings.ContainsAny(name, ", \t\n") {
		return "", fmt.Errorf("member name %q has a comma or whitespace", name)
	}
	u, err := checkHTTPURL(peerURL)
	switch {
	case err != nil:
		return "", err
	case u.Port() == "":
		return "", fmt.Errorf("%q has no port", peerURL)
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("%q must be scheme://host:port and nothing more", peerURL)
	}
	return peerURL, nil
}

func validGroup(g string) bool {
	if len(g) > 64 || !isAlnum(g[0]) {
		return false
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// sshKeyTypes are the public key types OpenSSH accepts in authorized_keys.
var sshKeyTypes = []string{
	"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
	"sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com", "ssh-dss",
}

// checkAuthorizedKey checks one authorized_keys line: optional options, a
// key type, the base64 key whose own type matches, an optional comment.
func checkAuthorizedKey(line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return errors.New("has a line break; give one key per entry")
	}
	words := splitQuoted(line)
	i := slices.IndexFunc(words, func(w string) bool { return slices.Contains(sshKeyTypes, w) })
	if i < 0 {
		return fmt.Errorf("not an OpenSSH public key: no key type (%s)", strings.Join(sshKeyTypes, ", "))
	}
	if i+1 == len(words) {
		return fmt.Errorf("not an OpenSSH public key: no key data after %q", words[i])
	}
	blob, err := base64.StdEncoding.DecodeString(words[i+1])
	if err != nil {
		return fmt.Errorf("not an OpenSSH public key: key data is not base64")
	}
	if len(blob) < 4 || uint64(binary.BigEndian.Uint32(blob)) > uint64(len(blob)-4) {
		return fmt.Errorf("not an OpenSSH public key: key data is truncated")
	}
	n := binary.BigEndian.Uint32(blob)
	if inner := string(blob[4 : 4+n]); inner != words[i] {
		return fmt.Errorf("not an OpenSSH public key: key data is a %q key, not %q", inner, words[i])
	}
	return nil
}

// splitQuoted splits s at spaces and tabs outside double quotes; a backslash
// escapes a quote, as in authorized_keys options.
func splitQuoted(s string) []string {
	var words []string
	var w strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case (c == ' ' || c == '\t') && !inQuote:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case c == '\\' && inQuote && i+1 < len(s) && s[i+1] == '"':
			w.WriteByte(c)
			i++
			c = s[i]
		case c == '"':
			inQuote = !inQuote
		}
		w.WriteByte(c)
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// Merge returns c with the command line's overrides: ip= replaces the whole
// network (and its <hostname> field, if set, the host name), and
// corebox.hostname= replaces the host name. A key whose value is invalid is
// ignored; Cmdline.Validate reports it. The result shares no slices with c.
func (c Config) Merge(cmd Cmdline) Config {
	out := c
	out.Network.DNS = slices.Clone(c.Network.DNS)
	out.Units = slices.Clone(c.Units)
	out.Registry.Peers = slices.Clone(c.Registry.Peers)
	out.SSHAuthorizedKeys = slices.Clone(c.SSHAuthorizedKeys)
	if ip, ok, err := cmd.IP(); ok && err == nil {
		out.Network = ip.Network
		if ip.Hostname != "" {
			out.Hostname = ip.Hostname
		}
	}
	if h, err := cmd.Hostname(); err == nil && h != "" {
		out.Hostname = h
	}
	return out
}
