package store

import (
	"fmt"
	"strings"
	"sync"
)

// historyCapacity is how many events etcd keeps for watchers that come
// back with a waitIndex.
const historyCapacity = 1000

// watcherBuffer is how many undelivered events a watcher may have before
// it is dropped (its channel closed), as etcd does with slow watchers.
const watcherBuffer = 100

// history is the ring of the last events, refreshes included, with
// consecutive indexes (every index is one event).
type history struct {
	ring  []*Event
	head  int // position of the oldest event
	count int
}

func (h *history) add(e *Event) {
	if h.ring == nil {
		h.ring = make([]*Event, historyCapacity)
	}
	if h.count < len(h.ring) {
		h.ring[(h.head+h.count)%len(h.ring)] = e
		h.count++
		return
	}
	h.ring[h.head] = e
	h.head = (h.head + 1) % len(h.ring)
}

func (h *history) at(i int) *Event { return h.ring[(h.head+i)%len(h.ring)] }

// bounds is etcd's StartIndex and LastIndex: the oldest and newest kept
// event's index, 0 and 0 while there is none.
func (h *history) bounds() (start, last uint64) {
	if h.count == 0 {
		return 0, 0
	}
	return h.at(0).index(), h.at(h.count - 1).index()
}

// scan returns the kept events from index since on that a watcher of key
// would see (only the first unless all), or 401 when since is older than
// the oldest kept event.
func (h *history) scan(key string, recursive, all bool, since uint64) ([]*Event, *Error) {
	start, last := h.bounds()
	if since < start {
		return nil, NewError(EcodeEventIndexCleared, fmt.Sprintf("the requested history has been cleared [%d/%d]", start, since), 0)
	}
	if since > last {
		return nil, nil
	}
	var found []*Event
	for i := int(since - start); i < h.count; i++ {
		if e := h.at(i); watches(key, recursive, e) {
			found = append(found, e)
			if !all {
				break
			}
		}
	}
	return found, nil
}

func (h *history) events() []*Event {
	es := make([]*Event, h.count)
	for i := range es {
		es[i] = h.at(i)
	}
	return es
}

// watches reports whether a watcher of key sees the event e, with etcd's
// rules: an event at key; with recursive, an event below key unless it
// is hidden from key (an element after key starts with "_"); and the
// deletion or expiry of a directory key is in. Refreshes are seen by none.
// The same rule serves live events and the history; live, notify asks it
// about a removed directory only for the keys that were in it.
//
// etcd 3.4's history scan has two rules of its own, not copied here
// because they make a watch's answer depend on whether its event is still
// live or already in the history: it gives a recursive watcher the events
// of hidden keys, and a directory's removal to any key that starts with
// the directory's name as a string ("/ab" for "/a").
func watches(key string, recursive bool, e *Event) bool {
	if e.Refresh {
		return false
	}
	k := e.Node.Key
	switch {
	case k == key:
		return true
	case recursive && isBelow(k, key) && !hiddenBelow(k, key):
		return true
	case (e.Action == ActionDelete || e.Action == ActionExpire) && e.Node.Dir && isBelow(key, k):
		return true
	}
	return false
}

// hub holds the waiting watchers by key.
type hub struct {
	mu    sync.Mutex
	byKey map[string]map[*Watcher]struct{}
	count int
}

// Watcher receives the events of a Watch on its channel. A one-shot
// watcher's channel is closed after its one event; a stream watcher's when
// it falls watcherBuffer events behind (it is dropped, as etcd drops slow
// watchers), when the store is restored from a snapshot, or on Remove.
type Watcher struct {
	ch         chan *Event
	key        string
	recursive  bool
	stream     bool
	sinceIndex uint64
	startIndex uint64
	hub        *hub
	closed     bool // guarded by hub.mu
}

// EventChan is where the events arrive; it is closed when the watcher is
// done (see Watcher).
func (w *Watcher) EventChan() <-chan *Event { return w.ch }

// StartIndex is the store index when the watch began (etcd reports it as
// X-Etcd-Index of a watch response).
func (w *Watcher) StartIndex() uint64 { return w.startIndex }

// Remove stops the watcher and closes its channel if not yet closed. It
// may be called any number of times.
func (w *Watcher) Remove() {
	w.hub.mu.Lock()
	defer w.hub.mu.Unlock()
	w.hub.drop(w)
}

// Watch waits for the events of key (cleaned as etcd does) from index
// sinceIndex on (0: from the next one). Events already in the history are
// delivered at once — the first matching one for a one-shot watcher; every
// matching one, then the live ones, for a stream watcher (etcd 3.4 sends a
// stream only the first one and then nothing, live events included: a bug
// not copied). A sinceIndex older than the history is error 401.
func (s *Store) Watch(key string, recursive, stream bool, sinceIndex uint64) (*Watcher, error) {
	key = cleanPath(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if sinceIndex == 0 {
		sinceIndex = s.index + 1
	}
	found, err := s.history.scan(key, recursive, stream, sinceIndex)
	if err != nil {
		err.Index = s.index
		return nil, err
	}
	w := &Watcher{
		ch:         make(chan *Event, watcherBuffer+len(found)),
		key:        key,
		recursive:  recursive,
		stream:     stream,
		sinceIndex: sinceIndex,
		startIndex: s.index,
		hub:        &s.hub,
	}
	for _, e := range found {
		c := e.clone()
		c.EtcdIndex = s.index
		w.ch <- c
		w.sinceIndex = e.index() + 1
	}
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	if len(found) > 0 && !stream {
		w.closed = true
		close(w.ch)
		return w, nil
	}
	if s.hub.byKey == nil {
		s.hub.byKey = map[string]map[*Watcher]struct{}{}
	}
	set := s.hub.byKey[key]
	if set == nil {
		set = map[*Watcher]struct{}{}
		s.hub.byKey[key] = set
	}
	set[w] = struct{}{}
	s.hub.count++
	return w, nil
}

// notify delivers e to the watchers that watch it: those at e's key and
// above it, and, for a removed directory, those at the keys that were in
// it (below is their paths). As in etcd, the watcher of a key below a
// removed directory hears of it live only if that key existed; the
// history (watches) does not ask. Each watcher gets e once (etcd sends a
// stream watcher of the removed key itself the event twice).
func (h *hub) notify(e *Event, below []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.count == 0 {
		return
	}
	var shared *Event
	visit := func(key string) {
		for w := range h.byKey[key] {
			if e.index() < w.sinceIndex || !watches(w.key, w.recursive, e) {
				continue
			}
			if shared == nil {
				shared = e.clone()
			}
			select {
			case w.ch <- shared:
				if !w.stream {
					h.drop(w)
				}
			default:
				h.drop(w)
			}
		}
	}
	k := e.Node.Key
	for p := k; ; {
		visit(p)
		if p == "/" {
			break
		}
		p = p[:strings.LastIndexByte(p, '/')]
		if p == "" {
			p = "/"
		}
	}
	for _, p := range below {
		visit(p)
	}
}

// drop unregisters w and closes its channel, once. h.mu must be held.
func (h *hub) drop(w *Watcher) {
	if w.closed {
		return
	}
	w.closed = true
	close(w.ch)
	if set, ok := h.byKey[w.key]; ok {
		if _, ok := set[w]; ok {
			delete(set, w)
			h.count--
			if len(set) == 0 {
				delete(h.byKey, w.key)
			}
		}
	}
}

// dropAll closes every watcher (after a restore).
func (h *hub) dropAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.byKey {
		for w := range set {
			h.drop(w)
		}
	}
}

func (h *hub) watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}
