package etcd

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsAndEnvironment(t *testing.T) {
	var stderr bytes.Buffer
	cfg, err := parse([]string{"--name", "n1", "--listen-client-urls", "http://127.0.0.1:1,http://127.0.0.1:2", "--heartbeat-interval", "50"},
		[]string{"ETCD_DATA_DIR=/d", "ETCD_ELECTION_TIMEOUT=700", "ETCD_INITIAL_CLUSTER_STATE=existing", "ETCD_BOGUS=1", "PATH=/bin"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "n1" || cfg.DataDir != "/d" || len(cfg.ListenClientURLs) != 2 || cfg.HeartbeatInterval != 50*time.Millisecond ||
		cfg.ElectionTimeout != 700*time.Millisecond || cfg.InitialClusterState != "existing" {
		t.Fatalf("config: %+v", cfg)
	}
	if !strings.Contains(stderr.String(), "unrecognized environment variable ETCD_BOGUS=1") {
		t.Fatalf("no warning for ETCD_BOGUS: %q", stderr.String())
	}
	// A flag and its variable both given: refused, as etcd does.
	if _, err := parse([]string{"--name", "a"}, []string{"ETCD_NAME=b"}, &stderr); err == nil || !strings.Contains(err.Error(), `conflicting environment variable "ETCD_NAME"`) {
		t.Fatalf("conflict: %v", err)
	}
	if _, err := parse(nil, []string{"ETCD_SNAPSHOT_COUNT=lots"}, &stderr); err == nil || !strings.Contains(err.Error(), "ETCD_SNAPSHOT_COUNT") {
		t.Fatalf("bad variable: %v", err)
	}
	if _, err := parse([]string{"stray"}, nil, &stderr); err == nil {
		t.Fatal("a stray argument was accepted")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := Run(t.Context(), []string{"--initial-cluster-state", "maybe", "--data-dir", t.TempDir()}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), `--initial-cluster-state: "maybe" is not new or existing`) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	code = Run(t.Context(), []string{"--listen-client-urls", "ftp://x:1", "--data-dir", t.TempDir()}, nil, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "--listen-client-urls: URL scheme must be http or https") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
