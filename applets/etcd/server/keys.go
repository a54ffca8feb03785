package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/corebox/corebox/applets/etcd/store"
)

// keysPrefix is the v2 keys API's path prefix.
const keysPrefix = "/v2/keys"

// keysRequest is a parsed /v2/keys request.
type keysRequest struct {
	method string
	key    string
	// GET
	recursive, sorted, quorum, wait, stream bool
	waitIndex                               uint64
	// PUT, POST, DELETE
	value            string
	hasValue         bool
	ttl              *int64 // nil: no ttl parameter
	ttlEmpty         bool   // ttl= given empty: the key becomes permanent
	refresh, dir     bool
	prevValue        string
	hasPrevValue     bool
	prevIndex        uint64
	prevExist        *bool
	noValueOnSuccess bool
}

// parseKeysRequest reads a /v2/keys request's path, query and form as
// etcd 3.4 does; errors are etcd's.
func parseKeysRequest(r *http.Request, maxBytes int64) (*keysRequest, error) {
	kr := &keysRequest{method: r.Method}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(nil, r.Body, maxBytes)
	}
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, store.NewError(store.EcodeInvalidForm, fmt.Sprintf("request is too large (more than %d bytes)", maxBytes), 0)
		}
		return nil, store.NewError(store.EcodeInvalidForm, err.Error(), 0)
	}
	key, err := store.CleanKey(strings.TrimPrefix(r.URL.Path, keysPrefix))
	if err != nil {
		return nil, err
	}
	kr.key = key
	f := r.Form
	boolean := func(name string) (bool, error) {
		v := f.Get(name)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, store.NewError(store.EcodeInvalidField, fmt.Sprintf("invalid value for %q", name), 0)
		}
		return b, nil
	}
	index := func(name string) (uint64, error) {
		v := f.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, store.NewError(store.EcodeIndexNaN, fmt.Sprintf("invalid value for %q", name), 0)
		}
		return n, nil
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"recursive", &kr.recursive}, {"sorted", &kr.sorted}, {"quorum", &kr.quorum}, {"wait", &kr.wait}, {"stream", &kr.stream}, {"refresh", &kr.refresh}, {"dir", &kr.dir}, {"noValueOnSuccess", &kr.noValueOnSuccess}} {
		if *b.dst, err = boolean(b.name); err != nil {
			return nil, err
		}
	}
	if kr.waitIndex, err = index("waitIndex"); err != nil {
		return nil, err
	}
	if kr.prevIndex, err = index("prevIndex"); err != nil {
		return nil, err
	}
	if vs, ok := f["value"]; ok {
		kr.value, kr.hasValue = vs[0], true
	}
	if vs, ok := f["prevValue"]; ok {
		kr.prevValue, kr.hasPrevValue = vs[0], true
		if kr.prevValue == "" {
			return nil, store.NewError(store.EcodePrevValueRequired, `"prevValue" cannot be empty`, 0)
		}
	}
	if vs, ok := f["prevExist"]; ok {
		b, err := strconv.ParseBool(vs[0])
		if err != nil {
			return nil, store.NewError(store.EcodeInvalidField, `invalid value for "prevExist"`, 0)
		}
		kr.prevExist = &b
	}
	if vs, ok := f["ttl"]; ok {
		var n int64
		kr.ttlEmpty = vs[0] == ""
		if vs[0] != "" {
			n, err = strconv.ParseInt(vs[0], 10, 64)
			if err != nil {
				return nil, store.NewError(store.EcodeTTLNaN, `invalid value for "ttl"`, 0)
			}
			if n < 0 {
				return nil, store.NewError(store.EcodeTTLNaN, `invalid value for "ttl"`, 0)
			}
		}
		kr.ttl = &n
	}
	if kr.refresh {
		if kr.value != "" {
			return nil, store.NewError(store.EcodeRefreshValue, "", 0)
		}
		if kr.ttl == nil {
			return nil, store.NewError(store.EcodeRefreshTTLRequired, "", 0)
		}
	}
	if kr.stream && !kr.wait {
		return nil, store.NewError(store.EcodeInvalidField, `"stream" should be used together with "wait"`, 0)
	}
	return kr, nil
}

// command turns a write request into a store command, with the TTL as an
// absolute expiration from the proposer's clock. PUT is a "set" and DELETE
// a "delete": the store refines them by prevExist, prevValue and prevIndex
// into create, update, compareAndSwap and compareAndDelete, as etcd does.
func (kr *keysRequest) command(now time.Time) store.Command {
	c := store.Command{Op: "set", Key: kr.key, Value: kr.value, Dir: kr.dir, Refresh: kr.refresh,
		PrevValue: kr.prevValue, PrevIndex: kr.prevIndex, PrevExist: kr.prevExist, Time: now}
	if kr.ttl != nil && !kr.ttlEmpty {
		// etcd: ttl=0 expires the key at once; an empty ttl= makes it permanent.
		c.Expiration = now.Add(time.Duration(*kr.ttl) * time.Second)
	}
	switch kr.method {
	case http.MethodPost:
		c.Op, c.Unique = "create", true
	case http.MethodDelete:
		c.Op, c.Recursive = "delete", kr.recursive
	}
	return c
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, POST, DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	kr, err := parseKeysRequest(r, s.cfg.MaxRequestBytes)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		s.get(w, r, kr)
		return
	}
	b, err := kr.command(time.Now()).Marshal()
	if err != nil {
		s.writeError(w, store.NewError(store.EcodeInvalidForm, err.Error(), 0))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	res, err := s.propose(ctx, append([]byte{entryCommand}, b...))
	if err == nil {
		err = res.Err
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	ev := res.Event
	status := http.StatusOK
	if ev.Action == "create" || ev.Action == "set" && ev.PrevNode == nil {
		status = http.StatusCreated
	}
	if kr.noValueOnSuccess && (ev.Action == "set" || ev.Action == "create" || ev.Action == "update" || ev.Action == "compareAndSwap") {
		ev = &store.Event{Action: ev.Action, EtcdIndex: ev.EtcdIndex}
	}
	s.writeEvent(w, ev, status)
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, kr *keysRequest) {
	if kr.wait {
		s.watch(w, r, kr)
		return
	}
	if kr.quorum {
		if err := s.readIndex(r.Context()); err != nil {
			s.writeError(w, err)
			return
		}
	}
	ev, err := s.fsm.store.Get(kr.key, kr.recursive, kr.sorted, time.Now())
	if err != nil {
		s.writeError(w, err)
		return
	}
	s.writeEvent(w, ev, http.StatusOK)
}

// watch long-polls (or streams) the events of a key.
func (s *Server) watch(w http.ResponseWriter, r *http.Request, kr *keysRequest) {
	wt, err := s.fsm.store.Watch(kr.key, kr.recursive, kr.stream, kr.waitIndex)
	if err != nil {
		s.writeError(w, err)
		return
	}
	defer wt.Remove()
	s.setHeaders(w, s.fsm.store.Index())
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if flusher != nil {
		flusher.Flush()
	}
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.stop:
			return
		case ev, ok := <-wt.EventChan():
			if !ok {
				return
			}
			enc.Encode(ev)
			if flusher != nil {
				flusher.Flush()
			}
			if !kr.stream {
				return
			}
		}
	}
}

func (s *Server) setHeaders(w http.ResponseWriter, etcdIndex uint64) {
	h := w.Header()
	h.Set("X-Etcd-Cluster-Id", s.fsm.clusterID())
	h.Set("X-Etcd-Index", strconv.FormatUint(etcdIndex, 10))
	h.Set("X-Raft-Index", strconv.FormatUint(s.raft.AppliedIndex(), 10))
	h.Set("X-Raft-Term", strconv.FormatUint(s.raft.CurrentTerm(), 10))
}

func (s *Server) writeEvent(w http.ResponseWriter, ev *store.Event, status int) {
	s.setHeaders(w, ev.EtcdIndex)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(ev)
}

// writeError answers with etcd's error JSON; a non-etcd error becomes a
// 300 (raft internal) so that no Go error string leaks as a bare 500.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	var se *store.Error
	if !errors.As(err, &se) {
		se = store.NewError(store.EcodeRaftInternal, err.Error(), s.fsm.store.Index())
	}
	if se.Index == 0 {
		se.Index = s.fsm.store.Index()
	}
	h := w.Header()
	h.Set("X-Etcd-Cluster-Id", s.fsm.clusterID())
	h.Set("X-Etcd-Index", strconv.FormatUint(se.Index, 10))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(se.StatusCode())
	json.NewEncoder(w).Encode(se)
}
