package etcdtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TLS is a TLS setup for the members' client URLs (see NewTLS).
type TLS struct {
	CertFile, KeyFile string // the server's certificate and key
	TrustedCAFile     string // the CA of the clients' certificates
	ClientCertAuth    bool   // require a client certificate
	// CAFile, ClientCertFile and ClientKeyFile are a client's side: the
	// CA of the server's certificate and the client's certificate.
	CAFile, ClientCertFile, ClientKeyFile string
	// Client is the client's side as a tls.Config.
	Client *tls.Config
}

// Options are a member's options; nil means the defaults.
type Options struct {
	TLS *TLS // serve clients over https
}

// Member is one running etcd process.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	DataDir   string
	Log       string // the file etcd logs to

	t    testing.TB
	tls  *tls.Config // to ask an https member whether it is ready
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the path of etcd, or skips the test.
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed (apt-get install etcd-server): skipping the tests against a real etcd 3.4")
	}
	return p
}

// Start starts a one-member cluster and waits until it serves; it is
// stopped when the test ends.
func Start(t testing.TB, o *Options) *Member {
	t.Helper()
	return StartCluster(t, 1, o)[0]
}

// StartCluster starts an n-member cluster and waits until every member
// serves; it is stopped when the test ends.
func StartCluster(t testing.TB, n int, o *Options) []*Member {
	t.Helper()
	bin := Binary(t)
	if o == nil {
		o = &Options{}
	}
	var lastErr error
	for try := 0; try < 3; try++ {
		ms, err := startCluster(t, bin, n, o)
		if err == nil {
			return ms
		}
		lastErr = err
	}
	t.Fatalf("etcdtest: starting %d etcd members: %v", n, lastErr)
	return nil
}

func startCluster(t testing.TB, bin string, n int, o *Options) ([]*Member, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if o.TLS != nil {
		scheme = "https"
	}
	token := fmt.Sprintf("etcdtest-%d-%d", os.Getpid(), ports[0])
	ms := make([]*Member, n)
	var initial []string
	for i := range ms {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			t:         t,
		}
		if o.TLS != nil {
			m.tls = o.TLS.Client
		}
		dir := t.TempDir()
		m.DataDir = filepath.Join(dir, "data")
		m.Log = filepath.Join(dir, "etcd.log")
		initial = append(initial, m.Name+"="+m.PeerURL)
		ms[i] = m
	}
	for _, m := range ms {
		m.args = []string{bin,
			"--name", m.Name,
			"--data-dir", m.DataDir,
			"--enable-v2",
			"--listen-client-urls", m.ClientURL,
			"--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL,
			"--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", token,
			"--initial-cluster-state", "new",
		}
		if o.TLS != nil {
			m.args = append(m.args, "--cert-file", o.TLS.CertFile, "--key-file", o.TLS.KeyFile)
			if o.TLS.TrustedCAFile != "" {
				m.args = append(m.args, "--trusted-ca-file", o.TLS.TrustedCAFile)
			}
			if o.TLS.ClientCertAuth {
				m.args = append(m.args, "--client-cert-auth")
			}
		}
		if err := m.start(); err != nil {
			stopAll(ms)
			return nil, err
		}
	}
	t.Cleanup(func() { stopAll(ms) })
	for _, m := range ms {
		if err := m.waitReady(30 * time.Second); err != nil {
			stopAll(ms)
			return nil, err
		}
	}
	return ms, nil
}

func stopAll(ms []*Member) {
	for _, m := range ms {
		if m != nil {
			m.Stop()
		}
	}
}

// start runs the member's process, logging to m.Log (appended on restarts).
func (m *Member) start() error {
	log, err := os.OpenFile(m.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.args[0], m.args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	// etcd reads its flags from ETCD_* variables too; keep the caller's out.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "ETCDCTL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", m.args[0], err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(done)
	}()
	m.cmd, m.done = cmd, done
	return nil
}

// waitReady waits until the member says it is healthy and the cluster has
// settled its version (the last of etcd's own writes to the v2 store).
func (m *Member) waitReady(timeout time.Duration) error {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: m.tls}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return fmt.Errorf("etcd %s exited while starting:\n%s", m.Name, m.LogTail())
		default:
		}
		if healthy(hc, m.ClientURL) && versionDecided(hc, m.ClientURL) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd %s not ready after %v:\n%s", m.Name, timeout, m.LogTail())
}

func healthy(hc *http.Client, base string) bool {
	var v struct{ Health string }
	return getJSON(hc, base+"/health", &v) == nil && v.Health == "true"
}

func versionDecided(hc *http.Client, base string) bool {
	var v struct {
		Cluster string `json:"etcdcluster"`
	}
	return getJSON(hc, base+"/version", &v) == nil && v.Cluster != "" && v.Cluster != "not_decided"
}

func getJSON(hc *http.Client, u string, v any) error {
	resp, err := hc.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// Stop ends the member with SIGTERM (SIGKILL after 10s) and waits for it.
func (m *Member) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		m.cmd.Process.Kill()
		<-m.done
	}
	m.cmd = nil
}

// Kill ends the member with SIGKILL and waits for it.
func (m *Member) Kill() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// Restart starts a stopped member again with its data and waits until it
// serves.
func (m *Member) Restart() error {
	if m.cmd != nil {
		return fmt.Errorf("etcd %s is running", m.Name)
	}
	if err := m.start(); err != nil {
		return err
	}
	return m.waitReady(30 * time.Second)
}

// LogTail returns the end of the member's log, for failure messages.
func (m *Member) LogTail() string {
	b, _ := os.ReadFile(m.Log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// Index returns the v2 store's current index (X-Etcd-Index of a read of /).
func (m *Member) Index(ctx context.Context, hc *http.Client) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", m.ClientURL+"/v2/keys/", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	var n uint64
	_, err = fmt.Sscan(resp.Header.Get("X-Etcd-Index"), &n)
	return n, err
}

// freePorts finds n free loopback TCP ports. Another process may take one
// before etcd binds it; StartCluster then tries again with others.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
