package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The compatibility test runs one script of v2 requests against Debian's
// etcd 3.4 (with --enable-v2) and against a corebox member, step by step,
// and compares the answers: the status, the JSON body field by field and
// the headers a v2 client looks at.
//
// What cannot be equal is normalized on both sides before comparing:
//   - store indexes (modifiedIndex, createdIndex, an error's index,
//     X-Etcd-Index, the 20-digit names of in-order keys, the indexes in the
//     causes of errors 101 and 401) become their distance from the store
//     index just before the step (read with a get of the test's own key),
//     so that they must move the same way on both, while etcd's own writes
//     at startup put its keys at other absolute indexes, and a difference
//     shows at the step that makes it rather than at every later one. An
//     index of 0 stays 0: etcd answers 0 for an error found before the
//     store is reached.
//   - X-Raft-Index, X-Raft-Term and X-Etcd-Cluster-Id: presence only
//     (raft counts other entries on each side: etcd's SYNC and membership
//     entries, corebox's member and cluster-identity entries).
//   - expiration: presence only; ttl: equal within a second.
//   - a directory listing without sorted=true: as a set (both list in Go
//     map order).
//
// The store counters of /v2/stats/store are compared by how they move
// between two points of the script, less the reads etcd makes for itself.
//
// The script is testdata/compat/keys.script; its syntax is described there.

const etcdBinary = "/usr/bin/etcd"

// compatAllowlist is every difference this test accepts, each with its
// reason. step is a pattern (path.Match) of a step's name in the script,
// "*" any step; path is the start of a difference's path. An entry that
// matches nothing fails the test, so the list cannot rot.
var compatAllowlist = []struct{ step, path, why string }{
	// What admin.go serves, which this test may not change; each is
	// reported for a fix there.
	{"redirect-*", "status",
		"a path that is not clean: etcd's mux (Go 1.19) redirects with a 301, Go 1.22's with a 307, before the keys handler"},
	{"redirect-*", "body", "the text of that redirect, with its status"},
	{"admin-method-*", "header Allow",
		`etcd lists its own methods ("GET"; "GET,POST,DELETE,PUT" for /v2/members); Go's mux adds HEAD`},
	{"version", "body.corebox", "corebox reports its own version next to the etcd API versions it speaks"},

	// Deliberate: etcd 3.4's v2 API has no bound of its own below Go's
	// 10 MiB form limit (--max-request-bytes is for v3); corebox refuses a
	// request above MaxRequestBytes (1.5 MiB) with etcd's refusal of a
	// larger one (210 "http: POST too large"), to bound raft entries (a
	// follower forwards at most 2*MaxRequestBytes to the leader).
	{"big-value", "", "a value of 1.6 MiB: etcd stores it, corebox refuses it"},
	{"stats-sizes", "stats.setsSuccess", "the 1.6 MiB set that etcd does"},

	// Deliberate: bugs of etcd's watcher history that invent or lose
	// events, not copied (store/watch.go).
	{"hist-prefix", "body",
		"etcd's history gives a directory's deletion to a watcher of any key that starts with its name as a " +
			"string (/wdir3x for /wdir3); corebox only to keys below it, as etcd's live watchers"},
	{"hist-hidden", "body",
		"etcd's history gives a recursive watcher the events of hidden keys below it, which its live watchers " +
			"never get; corebox hides them from both"},
	{"hist-stream", "body",
		"a stream with a waitIndex in the history: etcd sends the first matching event and then never " +
			"another (the watcher is not registered); corebox sends every match, then the live events"},
	{"del-stream", "body",
		"a stream watcher of a deleted key: etcd sends the deletion twice (once as a removed node, once on " +
			"the path); corebox once"},
}

func TestCompatWithEtcd34(t *testing.T) {
	if _, err := os.Stat(etcdBinary); err != nil {
		t.Skipf("skipping the etcd 3.4 comparison: %s is missing (apt-get install etcd-server; .ci/run installs it)", etcdBinary)
	}
	script, err := parseScript(filepath.Join("testdata", "compat", "keys.script"))
	if err != nil {
		t.Fatal(err)
	}
	etcdURL := startEtcd34(t)
	coreURL := startCompatMember(t)
	peers := []*compatPeer{
		{name: "etcd", url: etcdURL, etcd: true, steps: map[string]*compatResponse{}},
		{name: "corebox", url: coreURL, steps: map[string]*compatResponse{}},
	}
	for _, p := range peers {
		p.settle(t)
	}
	used := make([]bool, len(compatAllowlist))
	for _, st := range script {
		diffs := runStep(t, st, peers)
		name := st.name
		if st.directive == "await" {
			name = st.arg
		}
		for _, d := range diffs {
			if i := allowed(name, d); i >= 0 {
				used[i] = true
				t.Logf("%s (allowed): %s", st, d)
				continue
			}
			t.Errorf("%s: %s", st, d)
		}
	}
	for i, ok := range used {
		if !ok {
			a := compatAllowlist[i]
			t.Errorf("allowlist entry {%q, %q} matched no difference: remove it", a.step, a.path)
		}
	}
}

func allowed(step, diff string) int {
	for i, a := range compatAllowlist {
		if ok, _ := path.Match(a.step, step); ok && strings.HasPrefix(diff, a.path) {
			return i
		}
	}
	return -1
}

// startEtcd34 runs Debian's etcd with the v2 API on loopback and returns
// its client URL once it has a leader and has published itself.
func startEtcd34(t *testing.T) string {
	t.Helper()
	ports := freePorts(t, 2)
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(dir, "etcd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(etcdBinary, "--name", "a", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "a="+peer, "--enable-v2")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", etcdBinary, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("etcd's log (end):\n%s", b)
		}
	})
	return client
}

func startCompatMember(t *testing.T) string {
	t.Helper()
	ports := freePorts(t, 2)
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	s, err := Start(context.Background(), Config{
		Name: "a", DataDir: filepath.Join(t.TempDir(), "data"),
		ListenClientURLs: []string{client}, AdvertiseClientURLs: []string{client},
		ListenPeerURLs: []string{peer}, InitialAdvertisePeerURLs: []string{peer},
		InitialCluster:    "a=" + peer,
		HeartbeatInterval: 50 * time.Millisecond, ElectionTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("starting the corebox member: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return client
}

// compatPeer is one of the two servers and what the script learnt of it.
type compatPeer struct {
	name  string
	url   string
	etcd  bool
	stats map[string]int64
	steps map[string]*compatResponse // by step name
	async map[string]*pending

	// etcd's own store reads since the last storestats (see account).
	mu                     sync.Mutex
	ownGetsOK, ownGetsFail int64
}

type compatResponse struct {
	status int
	header http.Header
	body   []byte
	base   uint64 // the store index before the request
}

// pending is an async step's request, its headers in, its body coming.
type pending struct {
	resp   *http.Response
	method string
	base   uint64
	cancel context.CancelFunc
	done   chan struct{} // closed at the end of the body

	mu   sync.Mutex
	body bytes.Buffer
}

func (pd *pending) Write(b []byte) (int, error) {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	return pd.body.Write(b)
}

var compatClient = &http.Client{
	Timeout:       30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (p *compatPeer) request(ctx context.Context, method, target, body string) (*http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.url+"/", rd)
	if err != nil {
		return nil, err
	}
	// The target goes on the request line as written, even when it is not
	// a valid URL path.
	req.URL.Opaque, req.URL.RawQuery, _ = strings.Cut(target, "?")
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return compatClient.Do(req)
}

func (p *compatPeer) do(method, target, body string) (*compatResponse, error) {
	resp, err := p.request(context.Background(), method, target, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &compatResponse{status: resp.StatusCode, header: resp.Header, body: b}
	p.account(method, target, r)
	return r, nil
}

// account counts the store reads etcd makes for itself: every /v2/keys
// request that gets past the parsing of its parameters reads etcd's v2
// auth flag (/2/enabled), a failed get; a GET /health is a successful one.
// compareStats takes them off etcd's counters.
func (p *compatPeer) account(method, target string, r *compatResponse) {
	if !p.etcd {
		return
	}
	urlPath, _, _ := strings.Cut(target, "?")
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case urlPath == "/health" && method == http.MethodGet:
		p.ownGetsOK++
	case urlPath != keysPrefix && !strings.HasPrefix(urlPath, keysPrefix+"/"):
	case r.header.Get("Content-Type") != "application/json":
		// Not the keys handler's answer: a redirect, a wrong method, the
		// CORS answer to OPTIONS, Go's refusal of a bad request line.
	default:
		var e struct {
			ErrorCode int `json:"errorCode"`
		}
		json.Unmarshal(r.body, &e)
		if e.ErrorCode < 200 || e.ErrorCode >= 300 {
			p.ownGetsFail++
		}
	}
}

// index is the store index now, from the X-Etcd-Index of a get.
func (p *compatPeer) index() (uint64, error) {
	r, err := p.do("GET", "/v2/keys/_compat", "")
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(r.header.Get("X-Etcd-Index"), 10, 64)
}

// settle waits until the server has a leader, has published itself and
// has done its own writes, then records the counters the script starts
// from.
func (p *compatPeer) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var why, last string
	// Five looks 100 ms apart that see the same index.
	for stable := 0; stable < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not settle: %s", p.name, why)
		}
		time.Sleep(100 * time.Millisecond)
		index, notYet := p.readiness()
		switch {
		case notYet != "":
			why, stable = notYet, 0
		case index != last:
			why, last, stable = "the index moves", index, 0
		default:
			stable++
		}
	}
	// The test's own key: the index probe reads it, and every index the
	// script sees is above 0 on both sides.
	if r, err := p.do("PUT", "/v2/keys/_compat", "value=start"); err != nil || r.status != 201 {
		t.Fatalf("%s: first write: %v %v", p.name, r, err)
	}
	var err error
	if p.stats, err = p.storeStats(); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	p.ownGetsOK, p.ownGetsFail = 0, 0
}

// readiness is the store index, or why the server is not ready for the
// script: no leader yet, not published in /v2/members, no cluster ID.
func (p *compatPeer) readiness() (index, notYet string) {
	r, err := p.do("GET", "/v2/members", "")
	if err != nil {
		return "", err.Error()
	}
	var ms struct {
		Members []Member `json:"members"`
	}
	json.Unmarshal(r.body, &ms)
	if len(ms.Members) != 1 || ms.Members[0].Name != "a" || len(ms.Members[0].ClientURLs) != 1 {
		return "", "not published: " + string(r.body)
	}
	r, err = p.do("GET", "/v2/keys/", "")
	if err != nil {
		return "", err.Error()
	}
	if r.status != 200 || r.header.Get("X-Etcd-Cluster-Id") == "" {
		return "", fmt.Sprintf("GET /v2/keys/: %d %v", r.status, r.header)
	}
	return r.header.Get("X-Etcd-Index"), ""
}

func (p *compatPeer) storeStats() (map[string]int64, error) {
	r, err := p.do("GET", "/v2/stats/store", "")
	if err != nil {
		return nil, err
	}
	var m map[string]int64
	if err := json.Unmarshal(r.body, &m); err != nil {
		return nil, fmt.Errorf("/v2/stats/store: %w: %s", err, r.body)
	}
	return m, nil
}

// step is one line of the script.
type step struct {
	line      int
	name      string        // "" for an unnamed step
	directive string        // "", "repeat", "await", "storestats"
	arg       string        // repeat's count, await's name
	timeout   time.Duration // await's
	method    string
	target    string
	body      string
	base      string // @NAME: indexes relative to that step's X-Etcd-Index
	shape     bool   // compare the JSON shape only
	async     bool   // send, wait for the headers, read the body at "await"
	sorted    bool   // the request asks for sorted listings
}

func (s step) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keys.script:%d", s.line)
	if s.name != "" {
		fmt.Fprintf(&b, " [%s]", s.name)
	}
	switch s.directive {
	case "":
		fmt.Fprintf(&b, " %s %s", s.method, s.target)
		if s.body != "" {
			fmt.Fprintf(&b, " %s", s.body)
		}
	default:
		fmt.Fprintf(&b, " %s %s", s.directive, s.arg)
	}
	return b.String()
}

// parseScript reads the script: one step a line, "#" starts a comment.
//
//	[NAME:] [shape] [async] [@BASE] METHOD TARGET [BODY]
//	repeat COUNT METHOD TARGET [BODY]
//	await NAME [TIMEOUT]
//	storestats
func parseScript(file string) ([]step, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps []step
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.Index(line, " #"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		st := step{line: n}
		bad := func(why string) error { return fmt.Errorf("%s:%d: %s: %q", file, n, why, sc.Text()) }
		if name, ok := strings.CutSuffix(fields[0], ":"); ok {
			if names[name] {
				return nil, bad("duplicate name")
			}
			st.name, names[name] = name, true
			fields = fields[1:]
		}
		if len(fields) == 0 {
			return nil, bad("nothing after the name")
		}
		switch fields[0] {
		case "await":
			if len(fields) < 2 || len(fields) > 3 {
				return nil, bad("await takes a name and a timeout")
			}
			st.directive, st.arg, st.timeout = fields[0], fields[1], 10*time.Second
			if len(fields) == 3 {
				if st.timeout, err = time.ParseDuration(fields[2]); err != nil {
					return nil, bad(err.Error())
				}
			}
			steps = append(steps, st)
			continue
		case "storestats":
			st.directive = "storestats"
			steps = append(steps, st)
			continue
		case "repeat":
			if len(fields) < 2 {
				return nil, bad("repeat takes a count")
			}
			st.directive, st.arg = "repeat", fields[1]
			if _, err := strconv.Atoi(st.arg); err != nil {
				return nil, bad(err.Error())
			}
			fields = fields[2:]
		}
	mods:
		for len(fields) > 0 {
			switch f := fields[0]; {
			case f == "shape":
				st.shape = true
			case f == "async":
				st.async = true
			case strings.HasPrefix(f, "@"):
				st.base = f[1:]
			default:
				break mods
			}
			fields = fields[1:]
		}
		if len(fields) < 2 || len(fields) > 3 {
			return nil, bad("want METHOD TARGET [BODY]")
		}
		st.method, st.target = fields[0], fields[1]
		if len(fields) == 3 {
			st.body = fields[2]
		}
		if st.async && st.name == "" {
			return nil, bad("an async step needs a name")
		}
		st.sorted = strings.Contains(st.target, "sorted=true") || strings.Contains(st.body, "sorted=true")
		steps = append(steps, st)
	}
	return steps, sc.Err()
}

var placeholderRE = regexp.MustCompile(`\{([A-Za-z0-9_-]+)(?:\.([A-Za-z]+))?(?:\+(\d+))?\}`)

// expand fills the placeholders of a target or body with what this peer
// answered earlier: {NAME.modifiedIndex}, {NAME.createdIndex} (of the
// response's node), {NAME.etcdIndex} (its X-Etcd-Index), {NAME.key} (its
// node's key), an index with +N added ({NAME.modifiedIndex+1}); {big} is
// a value of 1.6 MiB, {huge} one above Go's 10 MiB form limit.
func (p *compatPeer) expand(s string) (string, error) {
	var err error
	out := placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := placeholderRE.FindStringSubmatch(m)
		switch {
		case sub[1] == "big" && sub[2] == "":
			return strings.Repeat("x", 1600*1024)
		case sub[1] == "huge" && sub[2] == "":
			return strings.Repeat("x", 10<<20+1)
		}
		r, ok := p.steps[sub[1]]
		if !ok {
			err = fmt.Errorf("%s: no step named %q yet", m, sub[1])
			return m
		}
		var v string
		if sub[2] == "etcdIndex" {
			v = r.header.Get("X-Etcd-Index")
		} else {
			var ev struct {
				Node map[string]any `json:"node"`
			}
			json.Unmarshal(r.body, &ev)
			x, ok := ev.Node[sub[2]]
			if !ok {
				err = fmt.Errorf("%s: step %q answered no node.%s: %s", m, sub[1], sub[2], r.body)
				return m
			}
			if f, ok := x.(float64); ok {
				v = strconv.FormatFloat(f, 'f', -1, 64)
			} else {
				v = fmt.Sprint(x)
			}
		}
		if sub[3] != "" {
			a, _ := strconv.ParseUint(v, 10, 64)
			b, _ := strconv.ParseUint(sub[3], 10, 64)
			v = strconv.FormatUint(a+b, 10)
		}
		return v
	})
	return out, err
}

// runStep runs one step on both peers at once (so that both see the same
// clock: TTLs, a watch waiting for an expiry) and returns the differences.
func runStep(t *testing.T, st step, peers []*compatPeer) []string {
	t.Helper()
	switch st.directive {
	case "storestats":
		return compareStats(t, peers)
	}
	got := make([]*compatResponse, len(peers))
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = p.run(st)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("%s on %s: %w", st, p.name, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got[0] == nil {
		return nil // repeat, async
	}
	return compareResponses(st, got)
}

// run runs a step on this peer; the response is nil for a repeat and the
// start of an async step.
func (p *compatPeer) run(st step) (*compatResponse, error) {
	switch st.directive {
	case "repeat":
		return nil, p.repeat(st)
	case "await":
		return p.await(st)
	}
	target, err := p.expand(st.target)
	if err != nil {
		return nil, err
	}
	body, err := p.expand(st.body)
	if err != nil {
		return nil, err
	}
	var base uint64
	if st.base != "" {
		r, ok := p.steps[st.base]
		if !ok {
			return nil, fmt.Errorf("@%s: no such step yet", st.base)
		}
		base, err = strconv.ParseUint(r.header.Get("X-Etcd-Index"), 10, 64)
	} else {
		base, err = p.index()
	}
	if err != nil {
		return nil, fmt.Errorf("the index before: %w", err)
	}
	if st.async {
		return nil, p.startAsync(st, target, body, base)
	}
	r, err := p.do(st.method, target, body)
	if err != nil {
		return nil, err
	}
	r.base = base
	if st.name != "" {
		p.steps[st.name] = r
	}
	return r, nil
}

// startAsync sends the request and returns once the response's headers
// are in (a watch is registered by then); await collects the body.
func (p *compatPeer) startAsync(st step, target, body string, base uint64) error {
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := p.request(ctx, st.method, target, body)
	if err != nil {
		cancel()
		return err
	}
	pd := &pending{resp: resp, method: st.method, base: base, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(pd.done)
		defer resp.Body.Close()
		io.Copy(pd, resp.Body)
	}()
	if p.async == nil {
		p.async = map[string]*pending{}
	}
	p.async[st.name] = pd
	return nil
}

// await reads an async step's body until it ends or the step's timeout
// (a stream never ends); nothing by then is "<no answer>" (a watch that
// no event ended).
func (p *compatPeer) await(st step) (*compatResponse, error) {
	pd, ok := p.async[st.arg]
	if !ok {
		return nil, fmt.Errorf("no async step %q", st.arg)
	}
	delete(p.async, st.arg)
	select {
	case <-pd.done:
	case <-time.After(st.timeout):
	}
	pd.cancel()
	<-pd.done
	r := &compatResponse{status: pd.resp.StatusCode, header: pd.resp.Header, base: pd.base}
	pd.mu.Lock()
	r.body = bytes.Clone(pd.body.Bytes())
	pd.mu.Unlock()
	if len(r.body) == 0 {
		r.body = []byte("<no answer>")
	}
	p.account(pd.method, pd.resp.Request.URL.RequestURI(), r)
	p.steps[st.arg] = r
	return r, nil
}

// repeat sends the request COUNT times from a few clients at once; every
// answer must be a success.
func (p *compatPeer) repeat(st step) error {
	n, _ := strconv.Atoi(st.arg)
	target, err := p.expand(st.target)
	if err != nil {
		return err
	}
	body, err := p.expand(st.body)
	if err != nil {
		return err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan struct{})
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				r, err := p.do(st.method, target, body)
				if err == nil && r.status >= 300 {
					err = fmt.Errorf("status %d: %s", r.status, r.body)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	return first
}

// compareStats compares how the store counters moved since the last
// storestats (or the start of the script) on each side, less etcd's
// reads for itself; watchers is compared as it is.
func compareStats(t *testing.T, peers []*compatPeer) []string {
	t.Helper()
	var deltas []map[string]int64
	for _, p := range peers {
		now, err := p.storeStats()
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		d := map[string]int64{}
		for k, v := range now {
			d[k] = v - p.stats[k]
		}
		d["watchers"] = now["watchers"]
		p.mu.Lock()
		d["getsSuccess"] -= p.ownGetsOK
		d["getsFail"] -= p.ownGetsFail
		p.ownGetsOK, p.ownGetsFail = 0, 0
		p.mu.Unlock()
		p.stats = now
		deltas = append(deltas, d)
	}
	var diffs []string
	for _, k := range sortedKeys(deltas[0], deltas[1]) {
		a, aok := deltas[0][k]
		b, bok := deltas[1][k]
		switch {
		case !aok || !bok:
			diffs = append(diffs, fmt.Sprintf("stats.%s: etcd %v, corebox %v (a missing counter)", k, a, b))
		case a != b:
			diffs = append(diffs, fmt.Sprintf("stats.%s: moved by %d on etcd, %d on corebox", k, a, b))
		}
	}
	return diffs
}

func sortedKeys[V any](ms ...map[string]V) []string {
	set := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// normalized is a response as compared.
type normalized struct {
	status int
	header map[string]string
	body   any
}

// compared headers: by value, or by presence.
var (
	headersByValue    = []string{"Content-Type", "Allow", "Location"}
	headersByPresence = []string{"X-Raft-Index", "X-Raft-Term", "X-Etcd-Cluster-Id", "Access-Control-Allow-Origin"}
)

func compareResponses(st step, got []*compatResponse) []string {
	a := normalize(st, got[0])
	b := normalize(st, got[1])
	var diffs []string
	if a.status != b.status {
		diffs = append(diffs, fmt.Sprintf("status: etcd %d, corebox %d", a.status, b.status))
	}
	for _, h := range sortedKeys(a.header, b.header) {
		if a.header[h] != b.header[h] {
			diffs = append(diffs, fmt.Sprintf("header %s: etcd %q, corebox %q", h, a.header[h], b.header[h]))
		}
	}
	diffs = append(diffs, diffValues("body", a.body, b.body)...)
	return diffs
}

func normalize(st step, r *compatResponse) normalized {
	n := normalized{status: r.status, header: map[string]string{}}
	idx := func(v uint64) string {
		if v == 0 {
			return "0"
		}
		return fmt.Sprintf("i%+d", int64(v)-int64(r.base))
	}
	for _, h := range headersByValue {
		n.header[h] = strings.Join(r.header.Values(h), ", ")
	}
	for _, h := range headersByPresence {
		if len(r.header.Values(h)) > 0 {
			n.header[h] = "present"
		}
	}
	if v := r.header.Get("X-Etcd-Index"); v != "" {
		u, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			n.header["X-Etcd-Index"] = "bad: " + v
		} else {
			n.header["X-Etcd-Index"] = idx(u)
		}
	} else {
		n.header["X-Etcd-Index"] = ""
	}
	// The body: one JSON value, several (a stream), or text.
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	var docs []any
	for {
		var doc any
		err := dec.Decode(&doc)
		if err == io.EOF && len(docs) > 0 {
			break
		}
		if err != nil {
			n.body = strings.TrimSpace(string(r.body))
			return n
		}
		if st.shape {
			doc = shapeOf(doc)
		} else {
			doc = normalizeJSON(doc, idx, !st.sorted)
		}
		docs = append(docs, doc)
	}
	n.body = docs[0]
	if len(docs) > 1 {
		n.body = docs
	}
	return n
}

var (
	inOrderRE = regexp.MustCompile(`\b\d{20}\b`)
	casRE     = regexp.MustCompile(`\[(\d+) != (\d+)\]$`)
	clearedRE = regexp.MustCompile(`\[(\d+)/(\d+)\]`)
)

// normalizeJSON rewrites indexes as idx does, times as presence, and
// sorts unsorted listings by key.
func normalizeJSON(v any, idx func(uint64) string, sortNodes bool) any {
	indexOf := func(x any) any {
		num, ok := x.(json.Number)
		if !ok {
			return x
		}
		u, err := strconv.ParseUint(num.String(), 10, 64)
		if err != nil {
			return x
		}
		return idx(u)
	}
	inOrder := func(s string) string {
		return inOrderRE.ReplaceAllStringFunc(s, func(d string) string {
			u, _ := strconv.ParseUint(d, 10, 64)
			return "<" + idx(u) + ">"
		})
	}
	var walk func(v any, top bool) any
	walk = func(v any, top bool) any {
		switch v := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, x := range v {
				switch k {
				case "modifiedIndex", "createdIndex":
					out[k] = indexOf(x)
				case "index":
					if top {
						out[k] = indexOf(x)
					} else {
						out[k] = walk(x, false)
					}
				case "expiration":
					s, _ := x.(string)
					if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
						out[k] = fmt.Sprintf("<bad time %v>", x)
					} else {
						out[k] = "<time>"
					}
				case "cause":
					s, _ := x.(string)
					code, _ := v["errorCode"].(json.Number)
					switch code.String() {
					case "101":
						s = casRE.ReplaceAllStringFunc(s, func(m string) string {
							sub := casRE.FindStringSubmatch(m)
							a, _ := strconv.ParseUint(sub[1], 10, 64)
							b, _ := strconv.ParseUint(sub[2], 10, 64)
							return "[" + idx(a) + " != " + idx(b) + "]"
						})
					case "401":
						s = clearedRE.ReplaceAllStringFunc(s, func(m string) string {
							sub := clearedRE.FindStringSubmatch(m)
							a, _ := strconv.ParseUint(sub[1], 10, 64)
							b, _ := strconv.ParseUint(sub[2], 10, 64)
							return "[" + idx(a) + "/" + idx(b) + "]"
						})
					}
					out[k] = inOrder(s)
				default:
					out[k] = walk(x, false)
				}
			}
			if nodes, ok := out["nodes"].([]any); ok && sortNodes {
				sort.SliceStable(nodes, func(i, j int) bool {
					a, _ := nodes[i].(map[string]any)
					b, _ := nodes[j].(map[string]any)
					return fmt.Sprint(a["key"]) < fmt.Sprint(b["key"])
				})
			}
			return out
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				out[i] = walk(x, false)
			}
			return out
		case string:
			return inOrder(v)
		}
		return v
	}
	return walk(v, true)
}

// shapeOf is a JSON value with every leaf replaced by its type.
func shapeOf(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = shapeOf(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = shapeOf(x)
		}
		return out
	case string:
		return "<string>"
	case json.Number:
		return "<number>"
	case bool:
		return "<bool>"
	case nil:
		return "<null>"
	}
	return fmt.Sprintf("<%T>", v)
}

// diffValues lists where a (etcd's) and b (corebox's) differ, below the
// path at.
func diffValues(at string, a, b any) []string {
	if strings.HasSuffix(at, ".ttl") {
		if ttlClose(a, b) {
			return nil
		}
		return []string{fmt.Sprintf("%s: etcd %s, corebox %s", at, show(a), show(b))}
	}
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok {
			break
		}
		var diffs []string
		for _, k := range sortedKeys(a, bm) {
			av, aok := a[k]
			bv, bok := bm[k]
			p := at + "." + k
			switch {
			case k == "ttl" && (!aok || !bok):
				diffs = append(diffs, diffValues(p, av, bv)...)
			case !aok:
				diffs = append(diffs, fmt.Sprintf("%s: only corebox has it: %s", p, show(bv)))
			case !bok:
				diffs = append(diffs, fmt.Sprintf("%s: only etcd has it: %s", p, show(av)))
			default:
				diffs = append(diffs, diffValues(p, av, bv)...)
			}
		}
		return diffs
	case []any:
		bs, ok := b.([]any)
		if !ok {
			break
		}
		var diffs []string
		if len(a) != len(bs) {
			diffs = append(diffs, fmt.Sprintf("%s: etcd has %d elements, corebox %d: etcd %s, corebox %s", at, len(a), len(bs), show(a), show(bs)))
		}
		for i := 0; i < len(a) && i < len(bs); i++ {
			diffs = append(diffs, diffValues(fmt.Sprintf("%s[%d]", at, i), a[i], bs[i])...)
		}
		return diffs
	}
	if fmt.Sprint(a) == fmt.Sprint(b) && fmt.Sprintf("%T", a) == fmt.Sprintf("%T", b) {
		return nil
	}
	return []string{fmt.Sprintf("%s: etcd %s, corebox %s", at, show(a), show(b))}
}

// ttlClose: TTLs are seconds rounded up at two slightly different moments;
// an absent ttl is 0 (etcd omits it when it has run out).
func ttlClose(a, b any) bool {
	num := func(v any) (float64, bool) {
		if v == nil {
			return 0, true
		}
		n, ok := v.(json.Number)
		if !ok {
			return 0, false
		}
		f, err := n.Float64()
		return f, err == nil
	}
	x, okx := num(a)
	y, oky := num(b)
	return okx && oky && math.Abs(x-y) <= 1
}

func show(v any) string {
	if v == nil {
		return "nothing"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}
