package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// freePorts returns n distinct free loopback ports.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var out []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

// testCluster is n in-process members on loopback.
type testCluster struct {
	t       *testing.T
	cfgs    []Config
	members []*Server
}

func newTestCluster(t *testing.T, n int) *testCluster {
	return newTestClusterWith(t, n, "http", "test", TLSInfo{})
}

// newTestClusterWith starts n members whose URLs have scheme, with the
// given cluster token and the same TLS on the client and peer ports.
func newTestClusterWith(t *testing.T, n int, scheme, token string, tlsInfo TLSInfo) *testCluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &testCluster{t: t}
	var initial []string
	for i := 0; i < n; i++ {
		initial = append(initial, fmt.Sprintf("m%d=%s://127.0.0.1:%d", i, scheme, ports[2*i+1]))
	}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		client := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i])
		peer := fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i+1])
		c.cfgs = append(c.cfgs, Config{
			Name: fmt.Sprintf("m%d", i), DataDir: filepath.Join(dir, fmt.Sprintf("m%d", i)),
			ListenClientURLs: []string{client}, AdvertiseClientURLs: []string{client},
			ListenPeerURLs: []string{peer}, InitialAdvertisePeerURLs: []string{peer},
			InitialCluster: strings.Join(initial, ","), InitialClusterToken: token,
			ClientTLS: tlsInfo, PeerTLS: tlsInfo,
			HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		})
		c.members = append(c.members, nil)
	}
	for i := range c.cfgs {
		c.start(i)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			if m != nil {
				m.Close()
			}
		}
	})
	return c
}

func (c *testCluster) start(i int) {
	c.t.Helper()
	s, err := Start(context.Background(), c.cfgs[i])
	if err != nil {
		c.t.Fatalf("starting m%d: %v", i, err)
	}
	c.members[i] = s
}

func (c *testCluster) stop(i int) {
	c.members[i].Close()
	c.members[i] = nil
}

// leader waits for a leader all running members agree on, each of them
// having published its attributes; it returns the leader's index.
func (c *testCluster) leader() int {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		lead, agreed := "", true
		for _, m := range c.members {
			if m == nil {
				continue
			}
			l := m.Leader()
			if l == "" || lead != "" && l != lead {
				agreed = false
				break
			}
			lead = l
		}
		for _, m := range c.members { // and every running member has published itself
			if m != nil {
				if pm, ok := m.fsm.member(m.ID()); !ok || len(pm.ClientURLs) == 0 {
					agreed = false
				}
			}
		}
		if agreed && lead != "" {
			for i, m := range c.members {
				if m != nil && m.ID() == lead {
					return i
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader")
	return -1
}

func (c *testCluster) url(i int) string { return c.cfgs[i].AdvertiseClientURLs[0] }

type apiResponse struct {
	status int
	header http.Header
	body   map[string]any
}

func do(t *testing.T, method, u string, form url.Values) apiResponse {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return apiResponse{status: resp.StatusCode, header: resp.Header, body: m}
}

func nodeValue(r apiResponse) string {
	n, _ := r.body["node"].(map[string]any)
	v, _ := n["value"].(string)
	return v
}

func TestClusterReplicatesAndFailsOver(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.leader()
	follower := (lead + 1) % 3
	// A write on a follower is forwarded to the leader and readable on the
	// follower at once (read-your-writes).
	r := do(t, "PUT", c.url(follower)+"/v2/keys/a", url.Values{"value": {"1"}})
	if r.status != 201 || r.body["action"] != "set" {
		t.Fatalf("PUT on follower: %d %v", r.status, r.body)
	}
	if v := nodeValue(do(t, "GET", c.url(follower)+"/v2/keys/a", nil)); v != "1" {
		t.Fatalf("GET on the follower after its write: %q", v)
	}
	for i := range c.members {
		r := do(t, "GET", c.url(i)+"/v2/keys/a?quorum=true", nil)
		if nodeValue(r) != "1" || r.header.Get("X-Etcd-Cluster-Id") == "" || r.header.Get("X-Raft-Term") == "" {
			t.Fatalf("quorum GET on m%d: %d %v %v", i, r.status, r.body, r.header)
		}
	}
	// The leader goes away: the others elect a new one and keep the data.
	c.stop(lead)
	newLead := c.leader()
	if newLead == lead {
		t.Fatal("stopped member still leads")
	}
	r = do(t, "PUT", c.url(newLead)+"/v2/keys/b", url.Values{"value": {"2"}})
	if r.status != 201 {
		t.Fatalf("PUT after failover: %d %v", r.status, r.body)
	}
	// The old leader restarts from its data dir and catches up.
	c.start(lead)
	deadline := time.Now().Add(10 * time.Second)
	for nodeValue(do(t, "GET", c.url(lead)+"/v2/keys/b", nil)) != "2" {
		if time.Now().After(deadline) {
			t.Fatal("restarted member did not catch up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v := nodeValue(do(t, "GET", c.url(lead)+"/v2/keys/a", nil)); v != "1" {
		t.Fatalf("restarted member lost a: %q", v)
	}
}

func TestQuorumReadWithoutQuorumFails(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.leader()
	do(t, "PUT", c.url(lead)+"/v2/keys/k", url.Values{"value": {"v"}})
	a, b := (lead+1)%3, (lead+2)%3
	do(t, "GET", c.url(b)+"/v2/keys/k?quorum=true", nil) // b has applied k
	c.stop(lead)
	c.stop(a)
	r := do(t, "GET", c.url(b)+"/v2/keys/k?quorum=true", nil)
	code, _ := r.body["errorCode"].(float64)
	if code != 300 && code != 301 {
		t.Fatalf("quorum read without a quorum: %d %v", r.status, r.body)
	}
	// A plain read still answers from the local store.
	if v := nodeValue(do(t, "GET", c.url(b)+"/v2/keys/k", nil)); v != "v" {
		t.Fatalf("local read: %q", v)
	}
}

func TestMembersAndDataDirIdentity(t *testing.T) {
	c := newTestCluster(t, 1)
	c.leader()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := do(t, "GET", c.url(0)+"/v2/members", nil)
		ms, _ := r.body["members"].([]any)
		if len(ms) != 1 {
			t.Fatalf("members: %v", r.body)
		}
		m := ms[0].(map[string]any)
		if m["name"] == "m0" && len(m["clientURLs"].([]any)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member never published its attributes: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Another cluster's token is refused on the same data dir.
	c.stop(0)
	cfg := c.cfgs[0]
	cfg.InitialClusterToken = "other"
	if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "belongs to a cluster with token") {
		t.Fatalf("a data dir of another cluster was accepted: %v", err)
	}
}

// TestDiscovery bootstraps a 3-member cluster through the etcd v2
// discovery protocol, served by a single-member corebox registry.
func TestDiscovery(t *testing.T) {
	disco := newTestCluster(t, 1)
	disco.leader()
	token := disco.url(0) + "/v2/keys/_etcd/registry/tok1"
	if r := do(t, "PUT", token+"/_config/size", url.Values{"value": {"3"}}); r.status != 201 {
		t.Fatalf("creating the token: %d %v", r.status, r.body)
	}
	ports := freePorts(t, 6)
	dir := t.TempDir()
	c := &testCluster{t: t}
	for i := 0; i < 3; i++ {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		c.cfgs = append(c.cfgs, Config{
			Name: fmt.Sprintf("d%d", i), DataDir: filepath.Join(dir, fmt.Sprintf("d%d", i)),
			ListenClientURLs: []string{client}, AdvertiseClientURLs: []string{client},
			ListenPeerURLs: []string{peer}, InitialAdvertisePeerURLs: []string{peer},
			Discovery: token, HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
		})
		c.members = append(c.members, nil)
	}
	errs := make(chan error, 3)
	for i := range c.cfgs {
		go func(i int) {
			s, err := Start(context.Background(), c.cfgs[i])
			c.members[i] = s
			errs <- err
		}(i)
	}
	for range c.cfgs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			m.Close()
		}
	})
	lead := c.leader()
	if r := do(t, "PUT", c.url(lead)+"/v2/keys/x", url.Values{"value": {"1"}}); r.status != 201 {
		t.Fatalf("PUT: %d %v", r.status, r.body)
	}
	for i := range c.members {
		if v := nodeValue(do(t, "GET", c.url(i)+"/v2/keys/x?quorum=true", nil)); v != "1" {
			t.Fatalf("d%d: %q", i, v)
		}
	}
	// A fourth member finds the cluster full.
	extra := c.cfgs[0]
	p := freePorts(t, 2)
	extra.Name, extra.DataDir = "d3", filepath.Join(dir, "d3")
	extra.ListenClientURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", p[0])}
	extra.AdvertiseClientURLs = extra.ListenClientURLs
	extra.ListenPeerURLs = []string{fmt.Sprintf("http://127.0.0.1:%d", p[1])}
	extra.InitialAdvertisePeerURLs = extra.ListenPeerURLs
	if _, err := Start(context.Background(), extra); err == nil || !strings.Contains(err.Error(), "cluster is full") {
		t.Fatalf("a fourth member: %v", err)
	}
}

// TestForwardedWritesAnswerAsLocal sends the same writes to the leader and
// to a follower (which forwards them and passes on the leader's rendering)
// and compares the answers, indexes and key names aside.
func TestForwardedWritesAnswerAsLocal(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.leader()
	follower := (lead + 1) % 3
	type step struct {
		method, path string
		form         url.Values
	}
	steps := []step{
		{"PUT", "/k", url.Values{"value": {"1"}}},
		{"PUT", "/k", url.Values{"value": {"2"}}},
		{"PUT", "/k?prevExist=false", url.Values{"value": {"3"}}},
		{"PUT", "/k?prevValue=2", url.Values{"value": {"4"}}},
		{"PUT", "/k?prevValue=nope", url.Values{"value": {"5"}}},
		{"PUT", "/k?noValueOnSuccess=true", url.Values{"value": {"6"}}},
		{"PUT", "/t", url.Values{"value": {"x"}, "ttl": {"100"}}},
		{"PUT", "/t?refresh=true&prevExist=true", url.Values{"ttl": {"200"}}},
		{"POST", "/q", url.Values{"value": {"in order"}}},
		{"PUT", "/d?dir=true", nil},
		{"DELETE", "/d?dir=true", nil},
		{"DELETE", "/k?prevValue=6", nil},
		{"DELETE", "/missing", nil},
	}
	normalize := func(r apiResponse, prefix string) string {
		b, _ := json.Marshal(r.body)
		s := strings.ReplaceAll(string(b), prefix, "/P")
		s = regexp.MustCompile(`"(modifiedIndex|createdIndex|index)":\d+`).ReplaceAllString(s, `"$1":N`)
		s = regexp.MustCompile(`/P/q/\d+`).ReplaceAllString(s, "/P/q/N")
		s = regexp.MustCompile(`"expiration":"[^"]*"`).ReplaceAllString(s, `"expiration":"T"`)
		return fmt.Sprintf("%d %s index-header=%v", r.status, s, r.header.Get("X-Etcd-Index") != "")
	}
	for i, st := range steps {
		var got [2]string
		for j, m := range []int{lead, follower} {
			prefix := fmt.Sprintf("/fw%d", j)
			path, query, _ := strings.Cut(st.path, "?")
			u := c.url(m) + "/v2/keys" + prefix + path
			if query != "" {
				u += "?" + query
			}
			got[j] = normalize(do(t, st.method, u, st.form), prefix)
		}
		if got[0] != got[1] {
			t.Errorf("step %d %s %s:\n leader:   %s\n follower: %s", i, st.method, st.path, got[0], got[1])
		}
	}
}
