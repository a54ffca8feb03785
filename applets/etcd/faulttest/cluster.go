package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Cluster.
type Options struct {
	Bin  string // the corebox binary
	Dir  string // data dirs and logs go here
	Size int    // members at the start
	// Token is --initial-cluster-token (default "faulttest").
	Token string
	// Heartbeat and Election are --heartbeat-interval and
	// --election-timeout (default 50ms and 500ms).
	Heartbeat, Election time.Duration
	// SnapshotCount is --snapshot-count (0: the server's default).
	SnapshotCount int
	// Proxy routes the peer traffic of the initial members through a Proxy.
	Proxy bool
}

// Cluster is the layout of a registry cluster on loopback: each member's
// ports, data dir, log and flags, and the Proxy between them. Members is
// changed only by NewMember and Forget, which the caller serialises with
// its other uses of Members.
type Cluster struct {
	Members []*Member
	Proxy   *Proxy // nil without Options.Proxy

	opts   Options
	client *Client
	ports  map[int]bool
}

// NewCluster lays out a cluster; Start starts it.
func NewCluster(opts Options) (*Cluster, error) {
	if opts.Token == "" {
		opts.Token = "faulttest"
	}
	if opts.Heartbeat == 0 {
		opts.Heartbeat = 50 * time.Millisecond
	}
	if opts.Election == 0 {
		opts.Election = 500 * time.Millisecond
	}
	if opts.Size < 1 {
		return nil, fmt.Errorf("cluster of %d members", opts.Size)
	}
	c := &Cluster{opts: opts, client: NewClient(time.Second), ports: map[int]bool{}}
	var realPeers []string
	for i := 0; i < opts.Size; i++ {
		m, err := c.layout(memberName(i))
		if err != nil {
			return nil, err
		}
		c.Members = append(c.Members, m)
		realPeers = append(realPeers, strings.TrimPrefix(m.ListenPeerURL, "http://"))
	}
	if opts.Proxy {
		p, err := NewProxy(realPeers, func(i int) int { return c.Members[i].Pid() })
		if err != nil {
			return nil, err
		}
		c.Proxy = p
		for i, m := range c.Members {
			m.PeerURL = "http://" + p.Addr(i)
		}
	}
	initial := c.initialCluster(c.Members)
	for _, m := range c.Members {
		m.args = c.flags(m, initial, "new")
	}
	return c, nil
}

func memberName(i int) string { return string(rune('a' + i)) }

// layout picks a member's ports, data dir and log file.
func (c *Cluster) layout(name string) (*Member, error) {
	ports, err := c.freePorts(2)
	if err != nil {
		return nil, err
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	if err := os.MkdirAll(filepath.Join(c.opts.Dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	return &Member{
		Name: name, ClientURL: client, PeerURL: peer, ListenPeerURL: peer,
		DataDir: filepath.Join(c.opts.Dir, name), LogFile: filepath.Join(c.opts.Dir, "logs", name+".log"),
		bin: c.opts.Bin,
	}, nil
}

func (c *Cluster) initialCluster(ms []*Member) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Name+"="+m.PeerURL)
	}
	return strings.Join(parts, ",")
}

func (c *Cluster) flags(m *Member, initial, state string) []string {
	args := []string{
		"--name", m.Name, "--data-dir", m.DataDir,
		"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
		"--listen-peer-urls", m.ListenPeerURL, "--initial-advertise-peer-urls", m.PeerURL,
		"--initial-cluster", initial, "--initial-cluster-state", state,
		"--initial-cluster-token", c.opts.Token,
		"--heartbeat-interval", strconv.Itoa(int(c.opts.Heartbeat / time.Millisecond)),
		"--election-timeout", strconv.Itoa(int(c.opts.Election / time.Millisecond)),
	}
	if c.opts.SnapshotCount > 0 {
		args = append(args, "--snapshot-count", strconv.Itoa(c.opts.SnapshotCount))
	}
	return args
}

// freePorts returns n loopback ports that are free now, chosen below the
// kernel's ephemeral range when it leaves room, so that a member restarting
// on its port does not find it taken by some outgoing connection.
func (c *Cluster) freePorts(n int) ([]int, error) {
	lo, hi := 20000, 32000
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if _, err := fmt.Sscan(string(b), &first, &last); err == nil && first <= hi {
			lo, hi = 0, 0 // no room below: let the kernel choose
		}
	}
	var out []int
	for tries := 0; len(out) < n; tries++ {
		if tries > 1000 {
			return nil, errors.New("no free loopback port")
		}
		port := 0
		if hi > lo {
			port = lo + rand.IntN(hi-lo)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if c.ports[port] {
			continue
		}
		c.ports[port] = true
		out = append(out, port)
	}
	return out, nil
}

// Start starts every member.
func (c *Cluster) Start() error {
	for _, m := range c.Members {
		if err := m.Start(); err != nil {
			return err
		}
	}
	return nil
}

// Close kills every member and closes the proxy. The data dirs stay.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, m := range c.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Kill()
		}()
	}
	wg.Wait()
	if c.Proxy != nil {
		c.Proxy.Close()
	}
	c.client.CloseIdle()
}

// NewMember lays out a member to be added at runtime: it starts with
// --initial-cluster-state existing and an --initial-cluster of the current
// members and itself. It is appended to Members; add it to the cluster
// (POST /v2/members with its PeerURL) before starting it. Its peer traffic
// does not go through the proxy.
func (c *Cluster) NewMember(name string) (*Member, error) {
	m, err := c.layout(name)
	if err != nil {
		return nil, err
	}
	all := append(append([]*Member(nil), c.Members...), m)
	m.args = c.flags(m, c.initialCluster(all), "existing")
	c.Members = all
	return m, nil
}

// Forget drops m from Members (after it was removed from the cluster).
func (c *Cluster) Forget(m *Member) {
	for i, x := range c.Members {
		if x == m {
			c.Members = append(c.Members[:i:i], c.Members[i+1:]...)
			return
		}
	}
}

// ID asks m for its member ID.
func (c *Cluster) ID(ctx context.Context, m *Member) (string, error) {
	st, err := c.client.Self(ctx, m.ClientURL)
	return st.ID, err
}

// Leader returns the member of among that leads, once a majority of among
// answers and every member that answers agrees on it. It waits until ctx
// is done.
func (c *Cluster) Leader(ctx context.Context, among []*Member) (*Member, error) {
	var last string
	for {
		leader, why := c.leader(ctx, among)
		if leader != nil {
			return leader, nil
		}
		last = why
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no leader among %s: %s", names(among), last)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func (c *Cluster) leader(ctx context.Context, among []*Member) (*Member, string) {
	type answer struct {
		m  *Member
		st SelfStats
	}
	answers := make([]*answer, len(among))
	var wg sync.WaitGroup
	for i, m := range among {
		wg.Add(1)
		go func() {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			if st, err := c.client.Self(qctx, m.ClientURL); err == nil {
				answers[i] = &answer{m, st}
			}
		}()
	}
	wg.Wait()
	var leader *Member
	var leaderID string
	n := 0
	for _, a := range answers {
		if a == nil {
			continue
		}
		n++
		if a.st.State == "StateLeader" {
			if leader != nil {
				return nil, fmt.Sprintf("%s and %s both lead", leader.Name, a.m.Name)
			}
			leader, leaderID = a.m, a.st.ID
		}
	}
	if n <= len(among)/2 {
		return nil, fmt.Sprintf("%d of %d answered", n, len(among))
	}
	if leader == nil {
		return nil, "none leads"
	}
	for _, a := range answers {
		if a != nil && a.st.LeaderInfo.Leader != leaderID {
			return nil, fmt.Sprintf("%s thinks %q leads, %s leads", a.m.Name, a.st.LeaderInfo.Leader, leader.Name)
		}
	}
	return leader, ""
}

func names(ms []*Member) string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return "[" + strings.Join(out, " ") + "]"
}

// Snapshot is a raft snapshot in a data dir.
type Snapshot struct {
	ID    string
	Index uint64
	Term  uint64
}

// Snapshots lists the raft snapshots in a member's data dir (hashicorp
// raft's file snapshot store: snapshots/<id>/meta.json).
func Snapshots(dataDir string) ([]Snapshot, error) {
	dirs, err := os.ReadDir(filepath.Join(dataDir, "snapshots"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Snapshot
	for _, d := range dirs {
		if !d.IsDir() || strings.HasSuffix(d.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dataDir, "snapshots", d.Name(), "meta.json"))
		if err != nil {
			continue
		}
		var meta struct {
			ID          string
			Index, Term uint64
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			return nil, fmt.Errorf("snapshot %s in %s: %w", d.Name(), dataDir, err)
		}
		out = append(out, Snapshot{ID: meta.ID, Index: meta.Index, Term: meta.Term})
	}
	return out, nil
}

// Build builds the corebox binary of the module that holds the current
// directory into dir, as `CGO_ENABLED=0 go build -trimpath`, and returns
// its path.
func Build(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("finding the module: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("finding the module: not inside one")
	}
	bin := filepath.Join(dir, "corebox")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = filepath.Dir(gomod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building corebox in %s: %w\n%s", cmd.Dir, err, b)
	}
	return bin, nil
}
