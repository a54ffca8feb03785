package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func (s *Server) clientHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(keysPrefix, s.handleKeys)
	mux.HandleFunc(keysPrefix+"/", s.handleKeys)
	mux.HandleFunc("GET /v2/members", s.listMembers)
	mux.HandleFunc("POST /v2/members", s.addMember)
	mux.HandleFunc("DELETE /v2/members/{id}", s.removeMember)
	mux.HandleFunc("PUT /v2/members/{id}", s.updateMember)
	mux.HandleFunc("GET /v2/members/leader", s.leaderMember)
	mux.HandleFunc("GET /v2/stats/leader", s.leaderStats)
	mux.HandleFunc("GET /v2/stats/self", s.selfStats)
	mux.HandleFunc("GET /v2/stats/store", s.storeStats)
	mux.HandleFunc("GET /version", s.version)
	mux.HandleFunc("GET /health", s.health)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	if s.cfg.EnablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return s.counting(cors(mux))
}

// cors answers as etcd's default --cors=*: every response allows any
// origin, and a preflight OPTIONS gets an empty 200.
func cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE")
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Access-Control-Allow-Headers", "accept, content-type, authorization")
		if r.Method == http.MethodOptions {
			return
		}
		h.ServeHTTP(w, r)
	})
}

// counting counts requests for /v2/stats/self.
func (s *Server) counting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.stats.received(r.ContentLength)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) peerHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /members", s.listMembers)
	return mux
}

// members returns the cluster's members: the raft configuration's servers,
// with the attributes they published.
func (s *Server) memberList() ([]Member, error) {
	f := s.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, err
	}
	var out []Member
	for _, srv := range f.Configuration().Servers {
		m, ok := s.fsm.member(string(srv.ID))
		if !ok {
			m = Member{ID: string(srv.ID), PeerURLs: []string{s.peerScheme + "://" + string(srv.Address)}}
		}
		if m.ClientURLs == nil {
			m.ClientURLs = []string{}
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Etcd-Cluster-Id", s.fsm.clusterID())
	ms, err := s.memberList()
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": ms})
}

func (s *Server) leaderMember(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Etcd-Cluster-Id", s.fsm.clusterID())
	ms, _ := s.memberList()
	for _, m := range ms {
		if m.ID == s.Leader() {
			writeJSON(w, http.StatusOK, m)
			return
		}
	}
	httpError(w, http.StatusServiceUnavailable, "During leader election")
}

type memberRequest struct {
	PeerURLs []string `json:"peerURLs"`
}

func decodeMemberRequest(r *http.Request) ([]string, error) {
	var req memberRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		return nil, fmt.Errorf("bad request body: %v", err)
	}
	if len(req.PeerURLs) == 0 {
		return nil, fmt.Errorf("peerURLs is empty")
	}
	for _, u := range req.PeerURLs {
		if err := checkURL(u); err != nil {
			return nil, err
		}
	}
	return req.PeerURLs, nil
}

// addMember adds a voter: its ID is derived from its peer URLs, so the new
// member started with --initial-cluster-state existing has the same one.
func (s *Server) addMember(w http.ResponseWriter, r *http.Request) {
	urls, err := decodeMemberRequest(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ms, _ := s.memberList()
	for _, m := range ms {
		if len(intersect(m.PeerURLs, urls)) > 0 {
			httpError(w, http.StatusConflict, "membership: peerURL exists")
			return
		}
	}
	m := Member{ID: memberID(urls), PeerURLs: urls, ClientURLs: []string{}}
	if err := s.changeMembership(r.Context(), "add", m); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, m)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ms, _ := s.memberList()
	for _, m := range ms {
		if m.ID == id {
			if err := s.changeMembership(r.Context(), "remove", m); err != nil {
				httpError(w, http.StatusInternalServerError, err.Error())
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	httpError(w, http.StatusNotFound, fmt.Sprintf("No such member: %s", id))
}

func (s *Server) updateMember(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	urls, err := decodeMemberRequest(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ms, _ := s.memberList()
	for _, m := range ms {
		if m.ID == id {
			m.PeerURLs = urls
			if err := s.changeMembership(r.Context(), "update", m); err != nil {
				httpError(w, http.StatusInternalServerError, err.Error())
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	httpError(w, http.StatusNotFound, fmt.Sprintf("No such member: %s", id))
}

// changeMembership changes the raft configuration (on the leader: a
// follower forwards the client's request there) and the members' attributes.
func (s *Server) changeMembership(ctx context.Context, op string, m Member) error {
	if s.raft.State() != raft.Leader {
		return s.forwardMembership(ctx, op, m)
	}
	if op == "remove" {
		// Forget the attributes first: a leader that removes itself steps
		// down at once and could not propose anything afterwards.
		if _, err := s.propose(ctx, append([]byte{entryRemove}, m.ID...)); err != nil {
			return err
		}
		if err := s.raft.RemoveServer(raft.ServerID(m.ID), 0, 10*time.Second).Error(); err != nil {
			return fmt.Errorf("changing the raft configuration: %w", err)
		}
		return nil
	}
	if err := s.raft.AddVoter(raft.ServerID(m.ID), raft.ServerAddress(hostPort(m.PeerURLs[0])), 0, 10*time.Second).Error(); err != nil {
		return fmt.Errorf("changing the raft configuration: %w", err)
	}
	b, _ := json.Marshal(Member{ID: m.ID, PeerURLs: m.PeerURLs})
	_, err := s.propose(ctx, append([]byte{entryMember}, b...))
	return err
}

// leaderClientURL waits (up to 5 s) for a leader whose client URL is known.
func (s *Server) leaderClientURL(ctx context.Context) (string, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if m, ok := s.fsm.member(s.Leader()); ok && len(m.ClientURLs) > 0 {
			return m.ClientURLs[0], nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no leader to change the membership")
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) forwardMembership(ctx context.Context, op string, m Member) error {
	leader, err := s.leaderClientURL(ctx)
	if err != nil {
		return err
	}
	var req *http.Request
	body := strings.NewReader(fmt.Sprintf(`{"peerURLs":%s}`, mustJSON(m.PeerURLs)))
	switch op {
	case "add":
		req, _ = http.NewRequestWithContext(ctx, "POST", leader+"/v2/members", body)
	case "update":
		req, _ = http.NewRequestWithContext(ctx, "PUT", leader+"/v2/members/"+m.ID, body)
	case "remove":
		req, _ = http.NewRequestWithContext(ctx, "DELETE", leader+"/v2/members/"+m.ID, nil)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.leaderClient.Do(req)
	if err != nil {
		return fmt.Errorf("forwarding to the leader: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("the leader answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return nil
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"etcdserver": "3.4.0", "etcdcluster": "3.4.0", "corebox": s.cfg.Version})
}

// health is healthy when a leader is known and a quorum read succeeds.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	// As etcd 3.4: the JSON body without a Content-Type of its own.
	if s.Leader() == "" || s.readIndex(ctx) != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"health":"false"}`))
		return
	}
	w.Write([]byte(`{"health":"true"}`))
}

func (s *Server) storeStats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.fsm.store.Stats())
}

func (s *Server) selfStats(w http.ResponseWriter, r *http.Request) {
	st := s.stats.self(s.id, s.raft.State() == raft.Leader, s.Leader())
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) leaderStats(w http.ResponseWriter, r *http.Request) {
	if s.raft.State() != raft.Leader {
		httpError(w, http.StatusForbidden, "not current leader")
		return
	}
	followers := map[string]any{}
	ms, _ := s.memberList()
	for _, m := range ms {
		if m.ID != s.id {
			followers[m.ID] = map[string]any{"counts": map[string]int{"fail": 0, "success": 0}}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"leader": s.id, "followers": followers})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// serverStats is /v2/stats/self.
type serverStats struct {
	mu         sync.Mutex
	name       string
	start      time.Time
	leaderFrom time.Time
	recvCount  uint64
	recvBytes  int64
}

func newServerStats(name string) *serverStats {
	return &serverStats{name: name, start: time.Now()}
}

func (st *serverStats) received(n int64) {
	st.mu.Lock()
	st.recvCount++
	if n > 0 {
		st.recvBytes += n
	}
	st.mu.Unlock()
}

func (st *serverStats) becameLeader() {
	st.mu.Lock()
	st.leaderFrom = time.Now()
	st.mu.Unlock()
}

func (st *serverStats) self(id string, leader bool, leaderID string) map[string]any {
	st.mu.Lock()
	defer st.mu.Unlock()
	state := "StateFollower"
	if leader {
		state = "StateLeader"
	}
	return map[string]any{
		"name": st.name, "id": id, "state": state, "startTime": st.start,
		"leaderInfo": map[string]any{"leader": leaderID, "startTime": st.leaderFrom, "uptime": time.Since(st.leaderFrom).String()},
		// etcd omits the rates while they are zero.
		"recvAppendRequestCnt": st.recvCount, "sendAppendRequestCnt": 0,
	}
}

// metrics are the Prometheus metrics at /metrics.
type metrics struct {
	registry         *prometheus.Registry
	proposalDuration prometheus.Histogram
}

func newMetrics(s *Server) *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.proposalDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "etcd", Subsystem: "server", Name: "proposal_duration_seconds",
		Help: "Time from a proposal on the leader to its apply.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	m.registry.MustRegister(m.proposalDuration,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "has_leader", Help: "1 if a leader is known."},
			func() float64 {
				if s.raft != nil && s.Leader() != "" {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "is_leader", Help: "1 if this member leads."},
			func() float64 {
				if s.raft != nil && s.raft.State() == raft.Leader {
					return 1
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "server", Name: "applied_index", Help: "The raft index applied here."},
			func() float64 {
				if s.raft == nil {
					return 0
				}
				return float64(s.raft.AppliedIndex())
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "etcd", Subsystem: "store", Name: "index", Help: "The v2 store's index."},
			func() float64 { return float64(s.fsm.store.Index()) }),
	)
	return m
}
