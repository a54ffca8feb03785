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

	"github.com/corebox/corebox/applets/etcd/keypath"
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
	expiration       time.Time // zero: no ttl (or an empty one)
	refresh, dir     bool
	prevValue        string
	prevIndex        uint64
	prevExist        *bool
	noValueOnSuccess bool
}

// parseKeysRequest reads a /v2/keys request's path, query and form as
// etcd 3.4 does (etcdserver/api/v2http's parseKeyRequest): the same
// checks in the same order, the same errors, and the TTL turned into an
// expiration at now. A parameter given twice counts by its first value,
// the form's before the query's.
func parseKeysRequest(r *http.Request, maxBytes int64, now time.Time) (*keysRequest, error) {
	kr := &keysRequest{method: r.Method}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(nil, r.Body, maxBytes)
	}
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			// etcd's own refusal of a form too large (Go's 10 MiB limit),
			// at corebox's lower bound.
			return nil, store.NewError(store.EcodeInvalidForm, "http: POST too large", 0)
		}
		return nil, store.NewError(store.EcodeInvalidForm, err.Error(), 0)
	}
	key, err := store.CleanKey(strings.TrimPrefix(r.URL.Path, keysPrefix))
	if err != nil {
		return nil, store.NewError(store.EcodeInvalidForm, "incorrect key prefix", 0)
	}
	kr.key = key
	f := r.Form
	// A parameter that is present must parse, even when empty.
	boolean := func(name string, dst *bool) error {
		vs, ok := f[name]
		if !ok {
			return nil
		}
		b, err := strconv.ParseBool(vs[0])
		if err != nil {
			return store.NewError(store.EcodeInvalidField, fmt.Sprintf("invalid value for %q", name), 0)
		}
		*dst = b
		return nil
	}
	index := func(name string, dst *uint64) error {
		vs, ok := f[name]
		if !ok {
			return nil
		}
		n, err := strconv.ParseUint(vs[0], 10, 64)
		if err != nil {
			return store.NewError(store.EcodeIndexNaN, fmt.Sprintf("invalid value for %q", name), 0)
		}
		*dst = n
		return nil
	}
	if err := index("prevIndex", &kr.prevIndex); err != nil {
		return nil, err
	}
	if err := index("waitIndex", &kr.waitIndex); err != nil {
		return nil, err
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"recursive", &kr.recursive}, {"sorted", &kr.sorted}, {"wait", &kr.wait}, {"dir", &kr.dir}, {"quorum", &kr.quorum}, {"stream", &kr.stream}} {
		if err := boolean(b.name, b.dst); err != nil {
			return nil, err
		}
	}
	if kr.wait && r.Method != http.MethodGet {
		return nil, store.NewError(store.EcodeInvalidField, `"wait" can only be used with GET requests`, 0)
	}
	kr.prevValue = f.Get("prevValue")
	if _, ok := f["prevValue"]; ok && kr.prevValue == "" {
		return nil, store.NewError(store.EcodePrevValueRequired, `"prevValue" cannot be empty`, 0)
	}
	if err := boolean("noValueOnSuccess", &kr.noValueOnSuccess); err != nil {
		return nil, err
	}
	// An empty ttl is no ttl. etcd takes the seconds as an unsigned number,
	// multiplies them into a time.Duration and carries the expiration in
	// Unix nanoseconds; the overflows of both are kept, so that a TTL too
	// large to represent makes the same key as on etcd (one that never
	// expires, or one already expired).
	hasTTL := false
	if v := f.Get("ttl"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, store.NewError(store.EcodeTTLNaN, `invalid value for "ttl"`, 0)
		}
		hasTTL = true
		if ns := now.Add(time.Duration(n) * time.Second).UnixNano(); ns != 0 {
			kr.expiration = time.Unix(0, ns)
		}
	}
	if vs, ok := f["prevExist"]; ok {
		b, err := strconv.ParseBool(vs[0])
		if err != nil {
			return nil, store.NewError(store.EcodeInvalidField, "invalid value for prevExist", 0)
		}
		kr.prevExist = &b
	}
	if vs, ok := f["refresh"]; ok {
		b, err := strconv.ParseBool(vs[0])
		if err != nil {
			return nil, store.NewError(store.EcodeInvalidField, "invalid value for refresh", 0)
		}
		kr.refresh = b
		if b {
			if f.Get("value") != "" {
				return nil, store.NewError(store.EcodeRefreshValue, "A value was provided on a refresh", 0)
			}
			if !hasTTL {
				return nil, store.NewError(store.EcodeRefreshTTLRequired, "No TTL value set", 0)
			}
		}
	}
	kr.value = f.Get("value")
	return kr, nil
}

// command turns a write request into a store command, with the proposer's
// clock. PUT is a "set" and DELETE a "delete": the store refines them by
// prevExist, prevValue and prevIndex into create, update, compareAndSwap
// and compareAndDelete, as etcd does.
func (kr *keysRequest) command(now time.Time) store.Command {
	c := store.Command{Op: "set", Key: kr.key, Value: kr.value, Dir: kr.dir, Refresh: kr.refresh,
		PrevValue: kr.prevValue, PrevIndex: kr.prevIndex, PrevExist: kr.prevExist,
		Expiration: kr.expiration, Time: now}
	switch kr.method {
	case http.MethodPost:
		c.Op, c.Unique = "create", true
	case http.MethodDelete:
		c.Op, c.Recursive = "delete", kr.recursive
	}
	return c
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	if p := keypath.Canonical(r.URL.Path); p != r.URL.Path && r.Method != http.MethodConnect {
		// etcd's mux (Go's before 1.22) sends a path that is not clean to
		// the clean one, with a 301; Go's mux now does it before this
		// handler with a 307, except for escaped dots ("%2e%2e"), which it
		// leaves in the path it hands over.
		u := *r.URL
		u.Path, u.RawPath = p, ""
		http.Redirect(w, r, u.String(), http.StatusMovedPermanently)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		w.Header().Set("Allow", "HEAD,GET,PUT,POST,DELETE")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	now := time.Now()
	kr, err := parseKeysRequest(r, s.cfg.MaxRequestBytes, now)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		s.get(w, r, kr)
		return
	}
	b, err := kr.command(now).Marshal()
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
	if r := res.rendered; r != nil { // forwarded: the leader rendered it
		if kr.noValueOnSuccess && valueless(r.action) {
			s.writeEvent(w, &store.Event{Action: r.action, EtcdIndex: r.etcdIndex}, r.status)
			return
		}
		s.setHeaders(w, r.etcdIndex)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(r.status)
		w.Write(r.body)
		return
	}
	ev := res.Event
	status := eventStatus(ev)
	if kr.noValueOnSuccess && valueless(ev.Action) {
		ev = &store.Event{Action: ev.Action, EtcdIndex: ev.EtcdIndex}
	}
	s.writeEvent(w, ev, status)
}

// eventStatus is the HTTP status of a write's answer: 201 for a new key.
func eventStatus(ev *store.Event) int {
	if ev.Action == "create" || ev.Action == "set" && ev.PrevNode == nil {
		return http.StatusCreated
	}
	return http.StatusOK
}

// valueless says whether noValueOnSuccess strips the answer of an action.
func valueless(action string) bool {
	return action == "set" || action == "create" || action == "update" || action == "compareAndSwap"
}

// get answers a GET or HEAD: a watch or a read. As in etcd, quorum=true
// makes it a linearized read even with wait=true (etcd turns a GET with
// quorum into a QGET, which never watches).
func (s *Server) get(w http.ResponseWriter, r *http.Request, kr *keysRequest) {
	if kr.wait && !kr.quorum {
		s.watch(w, r, kr)
		return
	}
	read := s.localRead
	if kr.quorum {
		read = s.readIndex
	}
	if err := read(r.Context()); err != nil {
		s.writeError(w, err)
		return
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
	if err := s.localRead(r.Context()); err != nil {
		s.writeError(w, err)
		return
	}
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
			enc.Encode(wireEvent(ev))
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
	json.NewEncoder(w).Encode(wireEvent(ev))
}

// wireEvent is an event as etcd's HTTP layer writes it: a copy of action,
// node and prevNode (etcd's Event.Clone), so never with "refresh".
func wireEvent(ev *store.Event) *store.Event {
	if !ev.Refresh {
		return ev
	}
	c := *ev
	c.Refresh = false
	return &c
}

// writeError answers with etcd's error JSON; a non-etcd error becomes a
// 300 (raft internal) so that no Go error string leaks as a bare 500. The
// index is the error's own: 0 for a request etcd refuses before it reaches
// the store (a bad parameter, a raft error), as etcd answers.
func (s *Server) writeError(w http.ResponseWriter, err error) {
	var se *store.Error
	if !errors.As(err, &se) {
		se = store.NewError(store.EcodeRaftInternal, err.Error(), 0)
	}
	h := w.Header()
	h.Set("X-Etcd-Cluster-Id", s.fsm.clusterID())
	h.Set("X-Etcd-Index", strconv.FormatUint(se.Index, 10))
	h.Set("Content-Type", "application/json")
	w.WriteHeader(se.StatusCode())
	json.NewEncoder(w).Encode(se)
}
