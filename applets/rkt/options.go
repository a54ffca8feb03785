package rkt

import (
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// acName is rkt's (appc's) name syntax for apps, volumes and ports.
var acName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`) })

// checkName validates an app or volume name.
func checkName(what, name string) error {
	if !acName().MatchString(name) {
		return fmt.Errorf("invalid %s name %q: want lower-case letters, digits and single dashes between them", what, name)
	}
	return nil
}

// Volume is a pod volume: a host path bind-mounted into apps, or an empty
// directory the pod owns.
type Volume struct {
	Name      string `json:"name"`
	Kind      string `json:"kind"`             // "host" or "empty"
	Source    string `json:"source,omitempty"` // kind=host: an absolute host path
	ReadOnly  bool   `json:"readOnly"`
	Recursive bool   `json:"recursive"`
	Mode      uint32 `json:"mode,omitempty"` // kind=empty
	UID       int    `json:"uid,omitempty"`  // kind=empty
	GID       int    `json:"gid,omitempty"`  // kind=empty
}

// parseVolume parses `NAME,kind=host,source=PATH,readOnly=BOOL,recursive=BOOL`
// or `NAME,kind=empty,mode=0755,uid=0,gid=0`.
func parseVolume(s string) (Volume, error) {
	fields := strings.Split(s, ",")
	v := Volume{Name: fields[0], Recursive: true, Mode: 0o755}
	if err := checkName("volume", v.Name); err != nil {
		return Volume{}, fmt.Errorf("--volume %q: %w", s, err)
	}
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			return Volume{}, fmt.Errorf("--volume %q: %q is not KEY=VALUE", s, f)
		}
		if seen[key] {
			return Volume{}, fmt.Errorf("--volume %q: %s given twice", s, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "kind":
			if val != "host" && val != "empty" {
				err = fmt.Errorf("kind %q: want host or empty", val)
			}
			v.Kind = val
		case "source":
			if !path.IsAbs(val) {
				err = fmt.Errorf("source %q is not an absolute path", val)
			}
			v.Source = path.Clean(val)
		case "readOnly":
			v.ReadOnly, err = strconv.ParseBool(val)
		case "recursive":
			v.Recursive, err = strconv.ParseBool(val)
		case "mode":
			var m uint64
			m, err = strconv.ParseUint(val, 8, 32)
			if err == nil && m > 0o7777 {
				err = fmt.Errorf("mode %s is more than 07777", val)
			}
			v.Mode = uint32(m)
		case "uid", "gid":
			var n int
			n, err = strconv.Atoi(val)
			if err == nil && (n < 0 || n > math.MaxUint32-1) {
				err = fmt.Errorf("%s %d out of range", key, n)
			}
			if key == "uid" {
				v.UID = n
			} else {
				v.GID = n
			}
		default:
			err = fmt.Errorf("unknown key %q", key)
		}
		if err != nil {
			return Volume{}, fmt.Errorf("--volume %q: %w", s, err)
		}
	}
	switch {
	case v.Kind == "":
		return Volume{}, fmt.Errorf("--volume %q: missing kind=host or kind=empty", s)
	case v.Kind == "host" && v.Source == "":
		return Volume{}, fmt.Errorf("--volume %q: kind=host needs source=PATH", s)
	case v.Kind == "host" && (seen["mode"] || seen["uid"] || seen["gid"]):
		return Volume{}, fmt.Errorf("--volume %q: mode, uid and gid are for kind=empty", s)
	case v.Kind == "empty" && v.Source != "":
		return Volume{}, fmt.Errorf("--volume %q: kind=empty takes no source", s)
	}
	return v, nil
}

// Mount binds a pod volume to a path in an app.
type Mount struct {
	Volume string `json:"volume"`
	Target string `json:"target"`
}

// parseMount parses `volume=NAME,target=PATH`.
func parseMount(s string) (Mount, error) {
	var m Mount
	for f := range strings.SplitSeq(s, ",") {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			return Mount{}, fmt.Errorf("--mount %q: %q is not KEY=VALUE", s, f)
		}
		switch key {
		case "volume":
			if m.Volume != "" {
				return Mount{}, fmt.Errorf("--mount %q: volume given twice", s)
			}
			if err := checkName("volume", val); err != nil {
				return Mount{}, fmt.Errorf("--mount %q: %w", s, err)
			}
			m.Volume = val
		case "target":
			if m.Target != "" {
				return Mount{}, fmt.Errorf("--mount %q: target given twice", s)
			}
			if !path.IsAbs(val) {
				return Mount{}, fmt.Errorf("--mount %q: target %q is not an absolute path", s, val)
			}
			m.Target = path.Clean(val)
		default:
			return Mount{}, fmt.Errorf("--mount %q: unknown key %q (want volume= and target=)", s, key)
		}
	}
	if m.Volume == "" || m.Target == "" {
		return Mount{}, fmt.Errorf("--mount %q: needs volume=NAME and target=PATH", s)
	}
	return m, nil
}

// quantitySuffixes are the Kubernetes resource model's multipliers.
var quantitySuffixes = map[string]*big.Rat{
	"":   big.NewRat(1, 1),
	"m":  big.NewRat(1, 1000),
	"k":  big.NewRat(1e3, 1),
	"M":  big.NewRat(1e6, 1),
	"G":  big.NewRat(1e9, 1),
	"T":  big.NewRat(1e12, 1),
	"P":  big.NewRat(1e15, 1),
	"E":  big.NewRat(1e18, 1),
	"Ki": big.NewRat(1<<10, 1),
	"Mi": big.NewRat(1<<20, 1),
	"Gi": big.NewRat(1<<30, 1),
	"Ti": big.NewRat(1<<40, 1),
	"Pi": big.NewRat(1<<50, 1),
	"Ei": big.NewRat(1<<60, 1),
}

var quantityRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)([a-zA-Z]*)$`) })

// parseQuantity parses a Kubernetes quantity ("128M", "1.5Gi", "500m") and
// returns it multiplied by scale, rounded up to an integer.
func parseQuantity(s string, scale int64) (int64, error) {
	m := quantityRE().FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a quantity like 512M, 1Gi or 500m", s)
	}
	mult, ok := quantitySuffixes[m[2]]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q (want k, M, G, T, Ki, Mi, Gi, Ti, m or none)", s, m[2])
	}
	num, ok := new(big.Rat).SetString(m[1])
	if !ok {
		return 0, fmt.Errorf("%q is not a number", m[1])
	}
	num.Mul(num, mult)
	num.Mul(num, big.NewRat(scale, 1))
	q, r := new(big.Int).QuoRem(num.Num(), num.Denom(), new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return q.Int64(), nil
}

// parseMemory parses --memory into bytes (at least one page).
func parseMemory(s string) (int64, error) {
	n, err := parseQuantity(s, 1)
	if err != nil {
		return 0, fmt.Errorf("--memory: %w", err)
	}
	if n < 4096 {
		return 0, fmt.Errorf("--memory %q: %d bytes is less than a page", s, n)
	}
	return n, nil
}

// parseCPU parses --cpu into millicores ("500m" = 500, "2" = 2000).
func parseCPU(s string) (int64, error) {
	n, err := parseQuantity(s, 1000)
	if err != nil {
		return 0, fmt.Errorf("--cpu: %w", err)
	}
	if n < 1 {
		return 0, fmt.Errorf("--cpu %q: less than 1m", s)
	}
	if n > 1<<20*1000 {
		return 0, fmt.Errorf("--cpu %q: more than 1048576 CPUs", s)
	}
	return n, nil
}

// EnvVar is one NAME=VALUE.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (e EnvVar) String() string { return e.Name + "=" + e.Value }

// parseEnv parses NAME=VALUE (--set-env, --environment).
func parseEnv(flag, s string) (EnvVar, error) {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return EnvVar{}, fmt.Errorf("%s %q: want NAME=VALUE", flag, s)
	}
	if name == "" {
		return EnvVar{}, fmt.Errorf("%s %q: empty variable name", flag, s)
	}
	if strings.ContainsAny(name, "\x00 \t\n") || strings.ContainsRune(value, 0) {
		return EnvVar{}, fmt.Errorf("%s %q: variable names take no blanks or NUL bytes, values no NUL bytes", flag, s)
	}
	return EnvVar{Name: name, Value: value}, nil
}

// capabilityNames are Linux's capabilities by number.
var capabilityNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// defaultCapabilities is rkt's default set for apps (stage1's
// appDefaultCapabilities, the same as Docker's).
var defaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID",
	"CAP_FOWNER", "CAP_KILL", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETFCAP", "CAP_SYS_CHROOT",
}

// parseCapabilities parses a comma-separated capability list; names are
// case-insensitive and the CAP_ prefix is optional.
func parseCapabilities(flag, s string) ([]string, error) {
	var caps []string
	for c := range strings.SplitSeq(s, ",") {
		name := strings.ToUpper(strings.TrimSpace(c))
		if !strings.HasPrefix(name, "CAP_") {
			name = "CAP_" + name
		}
		if !slices.Contains(capabilityNames, name) {
			return nil, fmt.Errorf("%s: unknown capability %q", flag, c)
		}
		if !slices.Contains(caps, name) {
			caps = append(caps, name)
		}
	}
	return caps, nil
}

// SeccompOverride is a --seccomp flag: keep only the listed syscalls
// (retain) or forbid them (remove); a forbidden call fails with Errno, or
// kills the app when Errno is empty.
type SeccompOverride struct {
	Mode     string   `json:"mode"` // "retain" or "remove"
	Errno    string   `json:"errno,omitempty"`
	Syscalls []string `json:"syscalls"` // names, or sets like @rkt/default-whitelist
}

var syscallName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(@[a-z0-9-]+/[a-z0-9-]+|[a-z_][a-z0-9_]*)$`) })

// parseSeccomp parses `mode=retain|remove[,errno=ENAME],SYSCALL[,SYSCALL…]`.
func parseSeccomp(s string) (SeccompOverride, error) {
	var o SeccompOverride
	for f := range strings.SplitSeq(s, ",") {
		key, val, ok := strings.Cut(f, "=")
		switch {
		case ok && key == "mode":
			if o.Mode != "" {
				return SeccompOverride{}, fmt.Errorf("--seccomp %q: mode given twice", s)
			}
			if val != "retain" && val != "remove" {
				return SeccompOverride{}, fmt.Errorf("--seccomp %q: mode %q: want retain or remove", s, val)
			}
			o.Mode = val
		case ok && key == "errno":
			if _, ok := errnoNumbers[val]; !ok {
				return SeccompOverride{}, fmt.Errorf("--seccomp %q: unknown errno %q", s, val)
			}
			o.Errno = val
		case ok:
			return SeccompOverride{}, fmt.Errorf("--seccomp %q: unknown key %q", s, key)
		default:
			if !syscallName().MatchString(f) {
				return SeccompOverride{}, fmt.Errorf("--seccomp %q: %q is not a syscall name or set", s, f)
			}
			if f[0] == '@' && !slices.Contains(syscallSets, f) {
				return SeccompOverride{}, fmt.Errorf("--seccomp %q: unknown syscall set %q (known: %s)", s, f, strings.Join(syscallSets, ", "))
			}
			o.Syscalls = append(o.Syscalls, f)
		}
	}
	if o.Mode == "" {
		return SeccompOverride{}, fmt.Errorf("--seccomp %q: missing mode=retain or mode=remove", s)
	}
	if len(o.Syscalls) == 0 {
		return SeccompOverride{}, fmt.Errorf("--seccomp %q: no syscalls listed", s)
	}
	return o, nil
}

// PortMapping forwards a host port to an app port.
type PortMapping struct {
	Name     string `json:"name"` // "80-tcp": container port and protocol
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
	HostPort uint16 `json:"hostPort"`
}

// parsePort parses `NAME:HOSTPORT` where NAME is PORT-PROTOCOL, as rkt
// names a Docker image's exposed ports.
func parsePort(s string) (PortMapping, error) {
	name, host, ok := strings.Cut(s, ":")
	if !ok {
		return PortMapping{}, fmt.Errorf("--port %q: want NAME:HOSTPORT (e.g. 80-tcp:8080)", s)
	}
	num, proto, ok := strings.Cut(name, "-")
	if !ok || (proto != "tcp" && proto != "udp") {
		return PortMapping{}, fmt.Errorf("--port %q: name %q: want PORT-tcp or PORT-udp", s, name)
	}
	p, err := strconv.ParseUint(num, 10, 16)
	if err != nil || p == 0 {
		return PortMapping{}, fmt.Errorf("--port %q: %q is not a port number", s, num)
	}
	hp, err := strconv.ParseUint(host, 10, 16)
	if err != nil || hp == 0 {
		return PortMapping{}, fmt.Errorf("--port %q: %q is not a host port number", s, host)
	}
	return PortMapping{Name: name, Port: uint16(p), Protocol: proto, HostPort: uint16(hp)}, nil
}

// checkPorts checks a pod's port forwards against its network mode: they
// need the default network (the host's ports are the forwards' source,
// the pod's address on the bridge their destination), and a host port
// (with its protocol) is forwarded once.
func checkPorts(net string, ports []PortMapping) error {
	if len(ports) == 0 {
		return nil
	}
	switch net {
	case netHost:
		return fmt.Errorf("--port needs --net=default: with --net=host the apps listen on the host's ports themselves, there is nothing to forward")
	case netNone:
		return fmt.Errorf("--port needs --net=default: a --net=none pod has only lo, nothing on the host can reach it")
	}
	seen := map[string]bool{}
	for _, p := range ports {
		if (p.Protocol != "tcp" && p.Protocol != "udp") || p.Port == 0 || p.HostPort == 0 {
			return fmt.Errorf("port %s: want a tcp or udp port forwarded from a host port, both non-zero, not %+v", p.Name, p)
		}
		key := fmt.Sprintf("%s/%d", p.Protocol, p.HostPort)
		if seen[key] {
			return fmt.Errorf("--port: host port %s is forwarded twice", key)
		}
		seen[key] = true
	}
	return nil
}

// parseDNS checks a --dns value: an IP address, or "host" (the host's
// resolv.conf) or "none" (leave the image's).
func parseDNS(s string) (string, error) {
	if s == "host" || s == "none" {
		return s, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", fmt.Errorf("--dns %q: not an IP address, host or none", s)
	}
	return a.String(), nil
}

var hostnameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$`)
})

// checkHostname validates --hostname (RFC 1123, at most 64 bytes as the
// kernel allows).
func checkHostname(s string) error {
	if len(s) > 64 || !hostnameRE().MatchString(s) {
		return fmt.Errorf("--hostname %q: not a valid host name", s)
	}
	return nil
}

// Net modes of --net.
const (
	netDefault = "default"
	netHost    = "host"
	netNone    = "none"
)

// parseNet checks --net.
func parseNet(s string) (string, error) {
	switch s {
	case netDefault, netHost, netNone:
		return s, nil
	case "":
		return netDefault, nil
	}
	return "", fmt.Errorf("--net %q: want default, host or none", s)
}

// checkUserGroup validates --user/--group: a number or a name (resolved in
// the app's /etc/passwd or /etc/group when it starts).
func checkUserGroup(flag, s string) error {
	if s == "" {
		return fmt.Errorf("%s: empty", flag)
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		if n == math.MaxUint32 {
			return fmt.Errorf("%s %q: out of range", flag, s)
		}
		return nil
	}
	if strings.ContainsAny(s, ":\n\x00/ ") {
		return fmt.Errorf("%s %q: neither a number nor a name", flag, s)
	}
	return nil
}
