package store

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/corebox/corebox/applets/etcd/internal/wire"
)

const snapshotVersion = 1

// Snapshot encodes the whole store: index, counters, tree (with TTLs as
// absolute expirations) and the watcher history. Equal stores give equal
// bytes. Waiting watchers are not part of it.
func (s *Store) Snapshot() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var counters [numCounters]uint64
	for i := range counters {
		counters[i] = s.stats[i].Load()
	}
	return encodeSnapshot(s.index, counters, s.root, s.history.events()), nil
}

func encodeSnapshot(index uint64, counters [numCounters]uint64, root *node, events []*Event) []byte {
	e := wire.Encoder{}
	e.Byte(snapshotVersion)
	e.Uvarint(index)
	for _, c := range counters {
		e.Uvarint(c)
	}
	encodeNode(&e, root)
	e.Uvarint(uint64(len(events)))
	for _, ev := range events {
		encodeEvent(&e, ev)
	}
	return e.B
}

func encodeNode(e *wire.Encoder, n *node) {
	if n.parent == nil {
		e.String("")
	} else {
		e.String(n.name())
	}
	e.Uvarint(n.createdIndex)
	e.Uvarint(n.modifiedIndex)
	encodeTime(e, n.expire)
	if !n.isDir() {
		e.Byte(0)
		e.String(n.value)
		return
	}
	e.Byte(1)
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	e.Uvarint(uint64(len(names)))
	for _, name := range names {
		encodeNode(e, n.children[name])
	}
}

func encodeEvent(e *wire.Encoder, ev *Event) {
	e.Byte(opCodes[ev.Action])
	e.Byte(flagIf(ev.Refresh, 1) | flagIf(ev.PrevNode != nil, 2))
	encodeEventNode(e, ev.Node)
	if ev.PrevNode != nil {
		encodeEventNode(e, ev.PrevNode)
	}
}

func encodeEventNode(e *wire.Encoder, n *Node) {
	e.Byte(flagIf(n.Dir, 1) | flagIf(n.Value != nil, 2))
	e.String(n.Key)
	if n.Value != nil {
		e.String(*n.Value)
	}
	var exp time.Time
	if n.Expiration != nil {
		exp = *n.Expiration
	}
	encodeTime(e, exp)
	e.Varint(n.TTL)
	e.Uvarint(n.ModifiedIndex)
	e.Uvarint(n.CreatedIndex)
}

// Restore replaces the store's content with a snapshot. The decoder is
// strict: anything Snapshot could not have written is an error, and on an
// error the store is unchanged. On success every waiting watcher is
// closed (watch again, with a waitIndex, to resume from the history).
func (s *Store) Restore(b []byte) error {
	st, err := decodeSnapshot(b)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = st.index
	s.root = st.root
	s.ttl = st.ttl
	s.history = history{}
	for _, e := range st.events {
		s.history.add(e)
	}
	for i, c := range st.counters {
		s.stats[i].Store(c)
	}
	s.hub.dropAll()
	return nil
}

type snapshot struct {
	index    uint64
	counters [numCounters]uint64
	root     *node
	ttl      ttlHeap
	events   []*Event
}

func decodeSnapshot(b []byte) (*snapshot, error) {
	d := wire.Decoder{B: b}
	if v := d.Byte(); d.Err == nil && v != snapshotVersion {
		return nil, fmt.Errorf("unknown snapshot version %d", v)
	}
	st := &snapshot{index: d.Uvarint()}
	for i := range st.counters {
		st.counters[i] = d.Uvarint()
	}
	st.root = decodeNode(&d, st, nil)
	if d.Err == nil {
		if !st.root.isDir() || !st.root.expire.IsZero() || st.root.createdIndex != 0 || st.root.modifiedIndex != 0 {
			d.Fail(errors.New("root must be a permanent directory at index 0"))
		}
	}
	n := d.Uvarint()
	if d.Err == nil && n > historyCapacity {
		d.Fail(fmt.Errorf("%d history events, more than %d", n, historyCapacity))
	}
	for i := uint64(0); i < n && d.Err == nil; i++ {
		ev := decodeEvent(&d)
		if d.Err != nil {
			break
		}
		if n > st.index || ev.index() != st.index-n+1+i {
			d.Fail(fmt.Errorf("history event %d has index %d, not one of the last %d indexes up to the store index %d", i, ev.index(), n, st.index))
		}
		st.events = append(st.events, ev)
	}
	if d.Err == nil && n == 0 && st.index != 0 {
		d.Fail(fmt.Errorf("empty history at index %d", st.index))
	}
	if err := d.End(); err != nil {
		return nil, err
	}
	heap.Init(&st.ttl)
	if !bytes.Equal(encodeSnapshot(st.index, st.counters, st.root, st.events), b) {
		return nil, errors.New("not in canonical form")
	}
	return st, nil
}

func decodeNode(d *wire.Decoder, st *snapshot, parent *node) *node {
	name := d.String()
	created := d.Uvarint()
	modified := d.Uvarint()
	exp := decodeTime(d)
	kind := d.Byte()
	if d.Err != nil {
		return nil
	}
	p := "/"
	if parent != nil {
		if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
			d.Fail(fmt.Errorf("bad name %q in %s", name, parent.path))
			return nil
		}
		p = strings.TrimSuffix(parent.path, "/") + "/" + name
		if created == 0 {
			d.Fail(fmt.Errorf("%s: created at index 0", p))
			return nil
		}
	} else if name != "" {
		d.Fail(fmt.Errorf("root named %q", name))
		return nil
	}
	if created > modified || modified > st.index {
		d.Fail(fmt.Errorf("%s: created at %d, modified at %d, store at %d", p, created, modified, st.index))
		return nil
	}
	var n *node
	switch kind {
	case 0:
		n = newFile(p, d.String(), created, parent, exp)
		n.modifiedIndex = modified
	case 1:
		if created != modified {
			d.Fail(fmt.Errorf("directory %s: created at %d, modified at %d", p, created, modified))
			return nil
		}
		n = newDir(p, created, parent, exp)
		count := d.Uvarint()
		for i := uint64(0); i < count && d.Err == nil; i++ {
			c := decodeNode(d, st, n)
			if d.Err != nil {
				break
			}
			if _, dup := n.children[c.name()]; dup {
				d.Fail(fmt.Errorf("%s: duplicate child %q", p, c.name()))
				break
			}
			n.children[c.name()] = c
		}
	default:
		d.Fail(fmt.Errorf("%s: bad node kind %d", p, kind))
		return nil
	}
	if d.Err != nil {
		return nil
	}
	if !exp.IsZero() {
		if exp.Before(minExpireTime) {
			d.Fail(fmt.Errorf("%s: expiration %v before 2000", p, exp))
			return nil
		}
		n.heapIndex = len(st.ttl)
		st.ttl = append(st.ttl, n)
	}
	return n
}

func decodeEvent(d *wire.Decoder) *Event {
	code := d.Byte()
	flags := d.Byte()
	if d.Err != nil {
		return nil
	}
	ev := &Event{Action: opNames[code]}
	if ev.Action == "" {
		d.Fail(fmt.Errorf("bad event action code %d", code))
		return nil
	}
	if flags&^3 != 0 {
		d.Fail(fmt.Errorf("bad event flags %#x", flags))
		return nil
	}
	ev.Refresh = flags&1 != 0
	ev.Node = decodeEventNode(d)
	if flags&2 != 0 {
		ev.PrevNode = decodeEventNode(d)
	}
	if d.Err != nil {
		return nil
	}
	if k := ev.Node.Key; k == "" || cleanPath(k) != k {
		d.Fail(fmt.Errorf("event key %q is not a clean key", k))
		return nil
	}
	ev.EtcdIndex = ev.index()
	return ev
}

func decodeEventNode(d *wire.Decoder) *Node {
	flags := d.Byte()
	if d.Err == nil && flags&^3 != 0 {
		d.Fail(fmt.Errorf("bad event node flags %#x", flags))
	}
	n := &Node{Dir: flags&1 != 0, Key: d.String()}
	if flags&2 != 0 {
		v := d.String()
		n.Value = &v
	}
	if exp := decodeTime(d); !exp.IsZero() {
		n.Expiration = &exp
	}
	n.TTL = d.Varint()
	n.ModifiedIndex = d.Uvarint()
	n.CreatedIndex = d.Uvarint()
	return n
}
