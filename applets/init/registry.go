package init

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/corebox/corebox/applets/init/machine"
)

// etcdEnvPath is the environment file of the shipped etcd.service.
const etcdEnvPath = "/run/corebox/etcd.env"

// etcdEnv renders the registry member's ETCD_* settings from the machine
// config: a single-node cluster by default, the configured peers (this
// member is the one named like the host, or the one at this address), or a
// discovery URL.
func etcdEnv(name, ip string, reg machine.Registry) (string, error) {
	if ip == "" {
		ip = "127.0.0.1"
	}
	self := "http://" + net.JoinHostPort(ip, "2380")
	cluster := name + "=" + self
	if len(reg.Peers) > 0 {
		found := ""
		for _, p := range reg.Peers {
			n, u, _ := strings.Cut(p, "=")
			pu, err := url.Parse(u)
			if err != nil {
				continue
			}
			if n == name || pu.Hostname() == ip {
				name, self, found = n, u, p
				break
			}
		}
		if found == "" {
			return "", fmt.Errorf("registry.peers: no peer is named %q or has this machine's address %s", name, ip)
		}
		cluster = strings.Join(reg.Peers, ",")
	}
	vars := map[string]string{
		"ETCD_NAME":                        name,
		"ETCD_DATA_DIR":                    "/var/lib/etcd",
		"ETCD_LISTEN_CLIENT_URLS":          "http://0.0.0.0:2379",
		"ETCD_ADVERTISE_CLIENT_URLS":       "http://" + net.JoinHostPort(ip, "2379"),
		"ETCD_LISTEN_PEER_URLS":            "http://0.0.0.0:2380",
		"ETCD_INITIAL_ADVERTISE_PEER_URLS": self,
		"ETCD_INITIAL_CLUSTER":             cluster,
	}
	if reg.Discovery != "" {
		vars["ETCD_DISCOVERY"] = reg.Discovery
		delete(vars, "ETCD_INITIAL_CLUSTER")
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, vars[k])
	}
	return b.String(), nil
}

func writeEtcdEnv(name string, reg machine.Registry) error {
	env, err := etcdEnv(name, primaryIPv4(), reg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(etcdEnvPath), 0o755); err != nil {
		return err
	}
	return os.WriteFile(etcdEnvPath, []byte(env), 0o644)
}

// primaryIPv4 is the first IPv4 address of the first ethernet interface.
func primaryIPv4() string {
	link, err := firstEthernet("")
	if err != nil {
		return ""
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 {
		return ""
	}
	return addrs[0].IP.String()
}
