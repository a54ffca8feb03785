package init

import (
	"strings"
	"testing"

	"github.com/corebox/corebox/applets/init/machine"
)

func TestEtcdEnv(t *testing.T) {
	tests := []struct {
		name, ip string
		reg      machine.Registry
		want     []string
		err      string
	}{
		{name: "solo", ip: "10.0.2.15", want: []string{
			"ETCD_NAME=solo\n", "ETCD_INITIAL_CLUSTER=solo=http://10.0.2.15:2380\n",
			"ETCD_ADVERTISE_CLIENT_URLS=http://10.0.2.15:2379\n", "ETCD_DATA_DIR=/var/lib/etcd\n"}},
		{name: "nonet", ip: "", want: []string{"ETCD_INITIAL_CLUSTER=nonet=http://127.0.0.1:2380\n"}},
		{name: "node2", ip: "10.0.0.2", reg: machine.Registry{Peers: []string{"node1=http://10.0.0.1:2380", "node2=http://10.0.0.2:2380"}},
			want: []string{"ETCD_NAME=node2\n", "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://10.0.0.2:2380\n",
				"ETCD_INITIAL_CLUSTER=node1=http://10.0.0.1:2380,node2=http://10.0.0.2:2380\n"}},
		{name: "renamed", ip: "10.0.0.1", reg: machine.Registry{Peers: []string{"node1=http://10.0.0.1:2380"}},
			want: []string{"ETCD_NAME=node1\n"}},
		{name: "stranger", ip: "10.0.0.9", reg: machine.Registry{Peers: []string{"node1=http://10.0.0.1:2380"}},
			err: `no peer is named "stranger" or has this machine's address 10.0.0.9`},
		{name: "disc", ip: "10.0.0.3", reg: machine.Registry{Discovery: "http://disco/abc"},
			want: []string{"ETCD_DISCOVERY=http://disco/abc\n"}},
	}
	for _, tt := range tests {
		got, err := etcdEnv(tt.name, tt.ip, tt.reg)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: env lacks %q:\n%s", tt.name, w, got)
			}
		}
	}
}
