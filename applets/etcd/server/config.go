package server

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is one member's configuration; the etcd applet fills it from
// etcd's flags and ETCD_* variables.
type Config struct {
	Name                     string
	DataDir                  string
	ListenClientURLs         []string
	AdvertiseClientURLs      []string
	ListenPeerURLs           []string
	InitialAdvertisePeerURLs []string
	// InitialCluster is "name=peerURL,name=peerURL,…" as etcd's flag.
	InitialCluster      string
	InitialClusterState string // "new" or "existing"
	InitialClusterToken string
	// Discovery is an etcd v2 discovery URL; it replaces InitialCluster for
	// a new member without data.
	Discovery string

	ClientTLS TLSInfo
	PeerTLS   TLSInfo

	// SnapshotCount is how many applied entries trigger a raft snapshot
	// (etcd's --snapshot-count).
	SnapshotCount uint64
	// HeartbeatInterval and ElectionTimeout as etcd's flags.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// MaxRequestBytes bounds a client request (etcd: 1.5 MiB).
	MaxRequestBytes int64
	// EnablePprof serves net/http/pprof at /debug/pprof/ on the client URLs
	// (etcd's --enable-pprof).
	EnablePprof bool

	Version string // reported by /version next to the API version
	Logger  *slog.Logger
}

// TLSInfo is a certificate, key and CA for one side (client or peer).
type TLSInfo struct {
	CertFile, KeyFile, TrustedCAFile string
	ClientCertAuth                   bool
}

func (t TLSInfo) empty() bool { return t.CertFile == "" && t.KeyFile == "" && t.TrustedCAFile == "" }

// Defaults as etcd 3.4's.
const (
	DefaultSnapshotCount     = 100000
	DefaultHeartbeatInterval = 100 * time.Millisecond
	DefaultElectionTimeout   = 1000 * time.Millisecond
	DefaultMaxRequestBytes   = 1536 * 1024
)

// member is a configured member: a name and its peer URLs.
type member struct {
	name     string
	peerURLs []string
}

// setDefaults fills in what etcd defaults when a flag is not given.
func (cfg *Config) setDefaults() {
	if cfg.Name == "" {
		cfg.Name = "default"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = cfg.Name + ".etcd"
	}
	if cfg.SnapshotCount == 0 {
		cfg.SnapshotCount = DefaultSnapshotCount
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if cfg.ElectionTimeout == 0 {
		cfg.ElectionTimeout = DefaultElectionTimeout
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if cfg.InitialClusterToken == "" {
		cfg.InitialClusterToken = "etcd-cluster"
	}
}

// validate applies the defaults and checks cfg; the errors name the flag.
func (cfg *Config) validate() ([]member, error) {
	var errs []error
	cfg.setDefaults()
	if cfg.ElectionTimeout < 5*cfg.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("--election-timeout[%v] should be at least 5 times as --heartbeat-interval[%v]", cfg.ElectionTimeout, cfg.HeartbeatInterval))
	}
	switch cfg.InitialClusterState {
	case "":
		cfg.InitialClusterState = "new"
	case "new", "existing":
	default:
		errs = append(errs, fmt.Errorf("--initial-cluster-state: %q is not new or existing", cfg.InitialClusterState))
	}
	check := func(flag string, urls []string, tlsInfo TLSInfo) {
		if len(urls) == 0 {
			errs = append(errs, fmt.Errorf("%s: no URL", flag))
		}
		for _, u := range urls {
			if err := checkURL(u); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", flag, err))
			} else if strings.HasPrefix(u, "https://") && tlsInfo.CertFile == "" && strings.HasPrefix(flag, "--listen") {
				errs = append(errs, fmt.Errorf("%s: %s is https but no certificate is given", flag, u))
			}
		}
	}
	check("--listen-client-urls", cfg.ListenClientURLs, cfg.ClientTLS)
	check("--advertise-client-urls", cfg.AdvertiseClientURLs, cfg.ClientTLS)
	check("--listen-peer-urls", cfg.ListenPeerURLs, cfg.PeerTLS)
	check("--initial-advertise-peer-urls", cfg.InitialAdvertisePeerURLs, cfg.PeerTLS)
	if cfg.InitialCluster == "" {
		cfg.InitialCluster = cfg.Name + "=" + strings.Join(cfg.InitialAdvertisePeerURLs, ","+cfg.Name+"=")
	}
	members, err := parseInitialCluster(cfg.InitialCluster)
	if err != nil {
		errs = append(errs, err)
	} else {
		i := slices.IndexFunc(members, func(m member) bool { return m.name == cfg.Name })
		switch {
		case i < 0:
			errs = append(errs, fmt.Errorf("--initial-cluster: %q has no member named %q (--name)", cfg.InitialCluster, cfg.Name))
		case !sameURLs(members[i].peerURLs, cfg.InitialAdvertisePeerURLs):
			errs = append(errs, fmt.Errorf("--initial-cluster must include %s=%s given --initial-advertise-peer-urls=%s",
				cfg.Name, strings.Join(cfg.InitialAdvertisePeerURLs, ","), strings.Join(cfg.InitialAdvertisePeerURLs, ",")))
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return members, errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL scheme must be http or https: %s", s)
	}
	if u.Port() == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return fmt.Errorf("URL must be scheme://host:port with nothing after the port: %s", s)
	}
	return nil
}

// parseInitialCluster reads "a=http://1:2380,b=http://2:2380,a=http://3:2380".
func parseInitialCluster(s string) ([]member, error) {
	var out []member
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("--initial-cluster: %q is not name=peerURL", part)
		}
		if err := checkURL(u); err != nil {
			return nil, fmt.Errorf("--initial-cluster: %w", err)
		}
		i := slices.IndexFunc(out, func(m member) bool { return m.name == name })
		if i < 0 {
			out = append(out, member{name: name})
			i = len(out) - 1
		}
		out[i].peerURLs = append(out[i].peerURLs, u)
	}
	for _, m := range out {
		for _, o := range out {
			if m.name != o.name && len(intersect(m.peerURLs, o.peerURLs)) > 0 {
				return nil, fmt.Errorf("--initial-cluster: members %s and %s share a peer URL", m.name, o.name)
			}
		}
	}
	return out, nil
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

func sameURLs(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// memberID derives a member's ID from its peer URLs, so that `member add`
// and the new member agree on it without talking.
func memberID(peerURLs []string) string {
	urls := slices.Clone(peerURLs)
	slices.Sort(urls)
	sum := sha1.Sum([]byte(strings.Join(urls, ",")))
	return fmt.Sprintf("%x", binary.BigEndian.Uint64(sum[:8]))
}

// clusterID derives the cluster's ID from the initial members and token.
func clusterID(members []member, token string) string {
	var parts []string
	for _, m := range members {
		parts = append(parts, memberID(m.peerURLs))
	}
	slices.Sort(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, ",") + "/" + token))
	return fmt.Sprintf("%x", binary.BigEndian.Uint64(sum[:8]))
}

// hostPort is the host:port of a URL (validated already).
func hostPort(s string) string {
	u, _ := url.Parse(s)
	return u.Host
}

// tlsConfigs builds the server and client TLS configurations of one side.
func (t TLSInfo) configs() (server, client *tls.Config, err error) {
	if t.empty() {
		return nil, nil, nil
	}
	return loadTLS(t)
}
