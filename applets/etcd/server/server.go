package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/corebox/corebox/applets/etcd/store"
)

// Server is one member of the registry: raft, the store, the peer port and
// the client API.
type Server struct {
	cfg     Config
	log     *slog.Logger
	id      string
	members []member // the initial cluster
	fsm     *fsm
	raft    *raft.Raft
	logs    *raftboltdb.BoltStore
	// cache keeps the newest log entries decoded, so that the leader's
	// replication and every member's FSM read them without a bolt read and
	// a msgpack decode each.
	cache  *raft.LogCache
	trans  *raft.NetworkTransport
	peerLn *peerListener

	peerHTTP   *http.Server
	clientHTTP []*http.Server
	// forwarder carries proposals and read-index requests to the leader.
	forwarder forwarder
	// proposals queue for the batcher at the leader; inflight holds a
	// token per batch entry on its way through raft (batch.go).
	proposals chan *proposal
	inflight  chan struct{}
	// leaderClient forwards membership changes to the leader's client URL.
	leaderClient *http.Client
	peerScheme   string

	started time.Time
	stats   *serverStats
	metrics *metrics

	// ready is closed once this member, as leader, has applied an entry of
	// its own term (a barrier): only then is its commit index a safe read index.
	leaderMu    sync.Mutex
	leaderReady chan struct{}

	// Read-index requests at the leader wait for the next confirmation
	// round (nextRead); reading is true while a goroutine runs rounds.
	readMu   sync.Mutex
	nextRead *readRound
	reading  bool

	// readFloor is the raft index of the newest write this member
	// acknowledged after forwarding it: local reads wait until it is
	// applied here, so a client reads its own writes on the same member.
	readFloor atomic.Uint64
	// nudge asks the leader to append an empty entry, which carries the
	// commit index of the entry it names to the followers at once
	// (hashicorp/raft otherwise tells them with the next heartbeat or
	// entry, up to CommitTimeout later).
	nudge chan uint64

	stop chan struct{}
	wg   sync.WaitGroup
}

// identity is what the data dir remembers of its cluster.
type identity struct {
	Name      string `json:"name"`
	MemberID  string `json:"member_id"`
	ClusterID string `json:"cluster_id,omitempty"`
	Token     string `json:"token"`
	// InitialCluster is the --initial-cluster the member started with
	// (what --discovery found, for a restart).
	InitialCluster string `json:"initial_cluster,omitempty"`
}

const identityFile = "member.json"

// Start opens the data dir, starts raft and serves the peer and client
// ports. It returns once they listen; the cluster may still be electing.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Discovery != "" && cfg.InitialCluster == "" {
		// A member with data restarts with the cluster it discovered then.
		if b, err := os.ReadFile(filepath.Join(cfg.DataDir, identityFile)); err == nil {
			var id identity
			if json.Unmarshal(b, &id) == nil {
				cfg.InitialCluster = id.InitialCluster
			}
		}
	}
	if cfg.Discovery != "" && cfg.InitialCluster == "" {
		if len(cfg.InitialAdvertisePeerURLs) == 0 {
			return nil, errors.New("--discovery needs --initial-advertise-peer-urls")
		}
		dctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		ic, err := discover(dctx, &http.Client{Timeout: 6 * time.Minute}, cfg.Discovery, memberID(cfg.InitialAdvertisePeerURLs), cfg.Name, cfg.InitialAdvertisePeerURLs)
		cancel()
		if err != nil {
			return nil, err
		}
		cfg.InitialCluster = ic
	}
	members, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, members: members, id: memberID(cfg.InitialAdvertisePeerURLs),
		fsm: newFSM(), started: time.Now(), stop: make(chan struct{}), leaderReady: make(chan struct{}),
		stats: newServerStats(cfg.Name), nudge: make(chan uint64, 1),
		proposals: make(chan *proposal, 4096), inflight: make(chan struct{}, maxInflight)}
	s.metrics = newMetrics(s)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	if err := s.checkIdentity(); err != nil {
		return nil, err
	}
	if err := s.startRaft(); err != nil {
		s.closeRaft()
		return nil, err
	}
	if err := s.serve(); err != nil {
		s.Close()
		return nil, err
	}
	s.wg.Add(5)
	go s.batches()
	go s.nudger()
	go s.publish()
	go s.leaderLoop()
	go s.rememberIdentity()
	return s, nil
}

// checkIdentity refuses a data dir that belongs to another member or cluster.
func (s *Server) checkIdentity() error {
	b, err := os.ReadFile(filepath.Join(s.cfg.DataDir, identityFile))
	if errors.Is(err, os.ErrNotExist) {
		return s.writeIdentity(identity{Name: s.cfg.Name, MemberID: s.id, Token: s.cfg.InitialClusterToken, InitialCluster: s.cfg.InitialCluster})
	}
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return fmt.Errorf("--data-dir %s: %s is corrupt: %w", s.cfg.DataDir, identityFile, err)
	}
	switch {
	case id.MemberID != s.id:
		return fmt.Errorf("--data-dir %s belongs to member %s (%s), not to %s with peer URLs %s", s.cfg.DataDir, id.Name, id.MemberID, s.cfg.Name, strings.Join(s.cfg.InitialAdvertisePeerURLs, ","))
	case id.Token != s.cfg.InitialClusterToken:
		return fmt.Errorf("--data-dir %s belongs to a cluster with token %q, not %q (--initial-cluster-token)", s.cfg.DataDir, id.Token, s.cfg.InitialClusterToken)
	case id.ClusterID != "" && s.cfg.InitialClusterState == "new" && id.ClusterID != clusterID(s.members, s.cfg.InitialClusterToken):
		return fmt.Errorf("--data-dir %s belongs to cluster %s, not to the cluster of --initial-cluster and --initial-cluster-token (%s)", s.cfg.DataDir, id.ClusterID, clusterID(s.members, s.cfg.InitialClusterToken))
	}
	return nil
}

func (s *Server) writeIdentity(id identity) error {
	b, _ := json.MarshalIndent(id, "", "  ")
	p := filepath.Join(s.cfg.DataDir, identityFile)
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	return os.Rename(p+".tmp", p)
}

// rememberIdentity records the cluster ID in the data dir once it is known.
func (s *Server) rememberIdentity() {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if cid := s.fsm.clusterID(); cid != "" {
			if err := s.writeIdentity(identity{Name: s.cfg.Name, MemberID: s.id, ClusterID: cid, Token: s.cfg.InitialClusterToken, InitialCluster: s.cfg.InitialCluster}); err != nil {
				s.log.Error("recording cluster identity", "err", err)
			}
			return
		}
	}
}

func (s *Server) startRaft() error {
	cfg := s.cfg
	var err error
	s.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.DataDir, "raft.db")})
	if err != nil {
		return fmt.Errorf("opening the raft log in %s: %w", cfg.DataDir, err)
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{s.log}})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hlog)
	if err != nil {
		return fmt.Errorf("opening snapshots in %s: %w", cfg.DataDir, err)
	}
	peerServerTLS, peerClientTLS, err := cfg.PeerTLS.configs()
	if err != nil {
		return fmt.Errorf("peer TLS: %w", err)
	}
	if len(cfg.ListenPeerURLs) != 1 {
		return fmt.Errorf("--listen-peer-urls: exactly one URL is supported, got %d", len(cfg.ListenPeerURLs))
	}
	ln, err := listen(cfg.ListenPeerURLs[0], peerServerTLS)
	if err != nil {
		return fmt.Errorf("--listen-peer-urls: %w", err)
	}
	advertise, err := net.ResolveTCPAddr("tcp", hostPort(cfg.InitialAdvertisePeerURLs[0]))
	if err != nil {
		ln.Close()
		return fmt.Errorf("--initial-advertise-peer-urls: %w", err)
	}
	s.peerLn = newPeerListener(ln, peerClientTLS, advertise)
	s.peerScheme = "http"
	if peerClientTLS != nil {
		s.peerScheme = "https"
	}
	s.forwarder.dial = func(addr raft.ServerAddress) (net.Conn, error) { return s.peerLn.Dial(addr, 5*time.Second) }
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: s.peerLn, MaxPool: 4, Timeout: 10 * time.Second, Logger: hlog,
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(s.id)
	rc.Logger = hlog
	rc.HeartbeatTimeout = cfg.ElectionTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.ElectionTimeout / 2
	rc.CommitTimeout = cfg.HeartbeatInterval / 2
	rc.SnapshotThreshold = cfg.SnapshotCount
	rc.SnapshotInterval = 10 * time.Second
	rc.TrailingLogs = min(cfg.SnapshotCount, 10240)
	// Group commit: proposals queue in applyCh and go to disk and to the
	// followers together, so that many clients share each fsync.
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 512
	rc.ShutdownOnRemove = true
	hasState, err := raft.HasExistingState(s.logs, s.logs, snaps)
	if err != nil {
		return fmt.Errorf("reading raft state: %w", err)
	}
	s.cache, err = raft.NewLogCache(4096, s.logs)
	if err != nil {
		return fmt.Errorf("raft log cache: %w", err)
	}
	s.raft, err = raft.NewRaft(rc, s.fsm, s.cache, s.logs, snaps, s.trans)
	if err != nil {
		return fmt.Errorf("starting raft: %w", err)
	}
	if !hasState && cfg.InitialClusterState == "new" {
		var servers []raft.Server
		for _, m := range s.members {
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(memberID(m.peerURLs)), Address: raft.ServerAddress(hostPort(m.peerURLs[0]))})
		}
		if err := s.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
			return fmt.Errorf("bootstrapping the cluster: %w", err)
		}
	}
	s.log.Info("raft started", "member", s.id, "name", cfg.Name, "existing_state", hasState, "cluster_state", cfg.InitialClusterState)
	return nil
}

// listen opens a TCP listener for a URL, with srv's TLS for https.
func listen(rawURL string, srv *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", hostPort(rawURL))
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(rawURL, "https://") {
		if srv == nil {
			ln.Close()
			return nil, fmt.Errorf("%s is https but no certificate is given", rawURL)
		}
		return tls.NewListener(ln, srv), nil
	}
	return ln, nil
}

// serve starts the peer HTTP side and the client listeners.
func (s *Server) serve() error {
	s.peerHTTP = &http.Server{Handler: s.peerHandler(), ReadHeaderTimeout: 10 * time.Second}
	go s.peerHTTP.Serve(s.peerLn.httpListener())
	go func() {
		for c := range s.peerLn.streams() {
			go s.serveStream(c)
		}
	}()
	clientServerTLS, clientClientTLS, err := s.cfg.ClientTLS.configs()
	if err != nil {
		return fmt.Errorf("client TLS: %w", err)
	}
	s.leaderClient = &http.Client{Transport: &http.Transport{TLSClientConfig: clientClientTLS}, Timeout: 15 * time.Second}
	h := s.clientHandler()
	for _, u := range s.cfg.ListenClientURLs {
		ln, err := listen(u, clientServerTLS)
		if err != nil {
			return fmt.Errorf("--listen-client-urls %s: %w", u, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		s.clientHTTP = append(s.clientHTTP, srv)
		go srv.Serve(ln)
	}
	return nil
}

// Close stops serving and shuts raft down. The data stays.
func (s *Server) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	for _, srv := range s.clientHTTP {
		srv.Close()
	}
	if s.peerHTTP != nil {
		s.peerHTTP.Close()
	}
	s.forwarder.close()
	err := s.closeRaft()
	s.wg.Wait()
	return err
}

func (s *Server) closeRaft() error {
	var errs []error
	if s.raft != nil {
		errs = append(errs, s.raft.Shutdown().Error())
	}
	if s.trans != nil {
		errs = append(errs, s.trans.Close())
	}
	if s.peerLn != nil {
		s.peerLn.Close()
	}
	if s.logs != nil {
		errs = append(errs, s.logs.Close())
	}
	return errors.Join(errs...)
}

// ID is this member's ID.
func (s *Server) ID() string { return s.id }

// Leader returns the leader's member ID ("" while there is none).
func (s *Server) Leader() string {
	_, id := s.raft.LeaderWithID()
	return string(id)
}

// publish records this member's name and client URLs in the cluster, as
// etcd members do when they start.
func (s *Server) publish() {
	defer s.wg.Done()
	m := Member{ID: s.id, Name: s.cfg.Name, PeerURLs: s.cfg.InitialAdvertisePeerURLs, ClientURLs: s.cfg.AdvertiseClientURLs}
	b, _ := json.Marshal(m)
	entry := append([]byte{entryMember}, b...)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := s.propose(ctx, entry)
		cancel()
		if err == nil {
			s.log.Info("published member attributes", "name", m.Name, "client_urls", m.ClientURLs)
			return
		}
		select {
		case <-s.stop:
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// leaderLoop does what only the leader does: the first leader of a new
// cluster records its identity; every leader marks when its reads are safe
// and expires keys whose TTL ran out.
func (s *Server) leaderLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	leading := false
	for {
		select {
		case <-s.stop:
			return
		case isLeader := <-s.raft.LeaderCh():
			s.leaderMu.Lock()
			if !isLeader || leading {
				s.leaderReady = make(chan struct{})
			}
			ready := s.leaderReady
			s.leaderMu.Unlock()
			leading = isLeader
			if isLeader {
				s.stats.becameLeader()
				go s.settleLeadership(ready)
			}
		case <-tick.C:
			if leading {
				s.expire()
			}
		}
	}
}

// settleLeadership waits until the new leader has applied everything
// before its term, then records a new cluster's identity.
func (s *Server) settleLeadership(ready chan struct{}) {
	// An empty command: once applied, everything of earlier terms is too.
	if err := s.raft.Apply(nil, s.cfg.ElectionTimeout*5).Error(); err != nil {
		s.log.Warn("leader barrier", "err", err)
		return
	}
	close(ready)
	if s.fsm.clusterID() == "" && s.cfg.InitialClusterState == "new" {
		b, _ := json.Marshal(clusterIdentity{ClusterID: clusterID(s.members, s.cfg.InitialClusterToken), Token: s.cfg.InitialClusterToken})
		s.raft.Apply(append([]byte{entryCluster}, b...), 5*time.Second)
	}
}

// expire proposes the expiry of every key whose TTL has run out.
func (s *Server) expire() {
	for _, c := range s.fsm.store.Expired(time.Now()) {
		b, err := c.Marshal()
		if err != nil {
			continue
		}
		s.raft.Apply(append([]byte{entryCommand}, b...), 5*time.Second)
	}
}

// errLeaderElection and errRaft are the v2 errors for raft trouble.
func errLeaderElection() error {
	return store.NewError(store.EcodeLeaderElect, "", 0)
}

func errRaft(cause string) error {
	return store.NewError(store.EcodeRaftInternal, cause, 0)
}

// propose commits an entry through the leader and returns its result. A
// follower does not wait for its own apply: it raises its read floor, so
// that its next local read waits for the write instead.
func (s *Server) propose(ctx context.Context, entry []byte) (result, error) {
	if s.raft.State() == raft.Leader {
		select {
		case p := <-s.submit(entry):
			return p.res, p.err
		case <-ctx.Done():
			return result{}, errRaft("etcdserver: request timed out")
		}
	}
	r, index, err := s.forward(ctx, entry)
	if err != nil {
		return result{}, err
	}
	for {
		floor := s.readFloor.Load()
		if index <= floor || s.readFloor.CompareAndSwap(floor, index) {
			break
		}
	}
	return r, nil
}

// localRead waits until this member has applied every write it
// acknowledged (its read floor).
func (s *Server) localRead(ctx context.Context) error {
	return s.waitApplied(ctx, s.readFloor.Load())
}

// nudger appends an empty entry when asked, one at a time, unless a newer
// entry was appended meanwhile (under load one always is): that entry
// carries the commit index too.
func (s *Server) nudger() {
	defer s.wg.Done()
	for {
		var idx uint64
		select {
		case <-s.stop:
			return
		case idx = <-s.nudge:
		}
		select {
		case <-s.stop:
			return
		case <-time.After(time.Millisecond):
		}
		if s.raft.State() == raft.Leader && s.raft.LastIndex() <= idx {
			s.raft.Apply(nil, time.Second).Error()
		}
	}
}

func raftError(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return errLeaderElection()
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return errRaft("etcdserver: request timed out")
	}
	return errRaft(err.Error())
}

func (s *Server) waitApplied(ctx context.Context, idx uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for !s.caughtUp(idx) {
		select {
		case <-s.fsm.advancedCh():
		case <-time.After(2 * time.Millisecond):
		case <-ctx.Done():
			return errRaft("etcdserver: request timed out waiting for the local apply")
		}
	}
	return nil
}

// caughtUp reports whether the store reflects every entry up to raft
// index idx. The FSM sees only commands: the no-op of a new term, barriers
// and configuration changes pass it by, so past the FSM's last apply it is
// enough that raft has dispatched everything up to idx and none of the
// entries in between is a command (an entry compacted away is covered by
// a snapshot this member took or installed).
func (s *Server) caughtUp(idx uint64) bool {
	applied := s.fsm.appliedIndex()
	if applied >= idx {
		return true
	}
	if s.raft.AppliedIndex() < idx || idx-applied > 64 {
		return false
	}
	for i := applied + 1; i <= idx; i++ {
		var l raft.Log
		if err := s.cache.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				continue
			}
			return false
		}
		if l.Type == raft.LogCommand {
			return false
		}
	}
	return true
}

// slogWriter turns raft's log lines into slog records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}
