package store

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// minExpireTime: etcd takes an expiration before 2000 for "none".
var minExpireTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// Store is the v2 key space. It is safe for concurrent use: Apply (from
// the raft goroutine) excludes reads and watch registrations for its
// duration; Get, Watch, Index, Expired, Snapshot and Stats run alongside
// each other.
type Store struct {
	mu      sync.RWMutex
	root    *node
	index   uint64
	ttl     ttlHeap
	history history
	hub     hub
	stats   [numCounters]atomic.Uint64
}

// New returns an empty store at index 0.
func New() *Store {
	return &Store{root: newDir("/", 0, nil, time.Time{})}
}

// Index is the current etcd index: the index of the last applied event.
func (s *Store) Index() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.index
}

// Get is a GET of key (cleaned as etcd does): the node, a directory with
// its visible children (all levels when recursive, each level sorted by
// key when sorted), TTLs as seen at now.
func (s *Store) Get(key string, recursive, sorted bool, now time.Time) (*Event, error) {
	key = cleanPath(key)
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.lookup(key)
	if err != nil {
		s.count(getsFail)
		return nil, err
	}
	s.count(getsSuccess)
	e := newEvent(ActionGet, key, n.modifiedIndex, n.createdIndex)
	e.EtcdIndex = s.index
	e.Node.Expiration, e.Node.TTL = ttlAt(n.expire, now)
	if n.isDir() {
		e.Node.Dir = true
		e.Node.Nodes = n.list(recursive, sorted, now)
	} else {
		v := n.value
		e.Node.Value = &v
	}
	return e, nil
}

// Apply applies one command. It returns the event of the change, an
// *Error for what etcd answers with an error (these change nothing but
// the failure counters, and do not advance the index), or another error
// for a command no proposer should make (unknown op, time out of range;
// nothing changes). An "expire" of a node that is gone or no longer has
// that expiration is a no-op: nil event, nil error.
func (s *Store) Apply(c Command) (*Event, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, err := s.apply(&c)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, nil
	}
	below := e.removedBelow
	e.removedBelow = nil
	s.history.add(e)
	if !e.Refresh {
		s.hub.notify(e, below)
	}
	return e.clone(), nil
}

func (s *Store) apply(c *Command) (*Event, *Error) {
	key := cleanPath(c.Key)
	exp := c.Expiration.UTC()
	if exp.Before(minExpireTime) {
		exp = time.Time{}
	}
	op := c.Op
	compared := c.PrevValue != "" || c.PrevIndex > 0
	switch {
	case op == ActionSet && c.PrevExist != nil && *c.PrevExist && compared:
		op = ActionCompareAndSwap
	case op == ActionSet && c.PrevExist != nil && *c.PrevExist:
		op = ActionUpdate
	case op == ActionSet && c.PrevExist != nil:
		op = ActionCreate
	case op == ActionSet && compared:
		op = ActionCompareAndSwap
	case op == ActionDelete && compared:
		op = ActionCompareAndDelete
	}
	var (
		e   *Event
		err *Error
	)
	switch op {
	case ActionSet:
		e, err = s.set(c, key, exp)
		s.countResult(err, setsSuccess, setsFail)
	case ActionCreate:
		e, err = s.create(key, c.Dir, c.Value, c.Unique, false, exp, ActionCreate, c.Time)
		s.countResult(err, createSuccess, createFail)
	case ActionUpdate:
		e, err = s.update(c, key, exp)
		s.countResult(countedAsFailure(err, EcodeRootROnly, EcodeNotFile), updateSuccess, updateFail)
	case ActionCompareAndSwap:
		e, err = s.compareAndSwap(c, key, exp)
		s.countResult(countedAsFailure(err, EcodeRootROnly), compareAndSwapSuccess, compareAndSwapFail)
	case ActionDelete:
		e, err = s.delete(key, c.Dir, c.Recursive, c.Time)
		s.countResult(countedAsFailure(err, EcodeRootROnly), deleteSuccess, deleteFail)
	case ActionCompareAndDelete:
		e, err = s.compareAndDelete(c, key)
		s.countResult(countedAsFailure(err, EcodeNotFile, EcodeTestFailed), compareAndDeleteSuccess, compareAndDeleteFail)
	case ActionExpire:
		e = s.expire(key, c.Expiration, c.Time)
		if e != nil {
			s.count(expireCount)
		}
	}
	return e, err
}

// countedAsFailure is err as etcd's counters see it: etcd's v2 store
// returns some of its errors without recording them (update: 107 and a
// value for a directory; compareAndSwap and delete: 107; compareAndDelete:
// a directory and a failed compare), so /v2/stats/store counts those as
// successes. uncounted lists the codes of the operation that are.
func countedAsFailure(err *Error, uncounted ...int) *Error {
	if err != nil && slices.Contains(uncounted, err.ErrorCode) {
		return nil
	}
	return err
}

// lookupWritable finds an existing node a command may change: any but
// the root, which is read-only.
func (s *Store) lookupWritable(key string) (*node, *Error) {
	if key == "/" {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	return s.lookup(key)
}

// lookup finds the node at the clean path p: 100 names the first missing
// element, 104 the key on the way that is not a directory.
func (s *Store) lookup(p string) (*node, *Error) {
	n := s.root
	if p == "/" {
		return n, nil
	}
	for _, name := range splitPath(p) {
		if !n.isDir() {
			return nil, NewError(EcodeNotDir, n.path, s.index)
		}
		child, ok := n.children[name]
		if !ok {
			return nil, NewError(EcodeKeyNotFound, path.Join(n.path, name), s.index)
		}
		n = child
	}
	return n, nil
}

// splitPath is the elements of a clean absolute path other than the root.
func splitPath(p string) []string {
	var els []string
	for len(p) > 1 {
		p = p[1:]
		i := 0
		for i < len(p) && p[i] != '/' {
			i++
		}
		els = append(els, p[:i])
		p = p[i:]
	}
	return els
}

// set is PUT without conditions: create or replace a key (never a
// directory); with Refresh the key must exist and keeps its value.
func (s *Store) set(c *Command, key string, exp time.Time) (*Event, *Error) {
	prev, err := s.lookup(key)
	if err != nil && err.ErrorCode != EcodeKeyNotFound {
		return nil, err
	}
	value := c.Value
	if c.Refresh {
		if err != nil {
			return nil, err
		}
		value = prev.value
	}
	e, cerr := s.create(key, c.Dir, value, false, true, exp, ActionSet, c.Time)
	if cerr != nil {
		return nil, cerr
	}
	if c.Refresh {
		e.Refresh = true
	}
	return e, nil
}

// create makes the key or directory at key, with the missing directories
// on the way. replace lets it replace an existing key (not a directory);
// unique puts it inside key, named by the new index.
func (s *Store) create(key string, dir bool, value string, unique, replace bool, exp time.Time, action string, now time.Time) (*Event, *Error) {
	next := s.index + 1
	if unique {
		key = path.Join(key, fmt.Sprintf("%020d", next))
	}
	if key == "/" {
		return nil, NewError(EcodeRootROnly, "/", s.index)
	}
	parent := s.root
	dirPath, name := path.Split(key)
	for _, el := range splitPath(path.Clean(dirPath)) {
		child, ok := parent.children[el]
		switch {
		case !ok:
			child = newDir(path.Join(parent.path, el), next, parent, time.Time{})
			parent.children[el] = child
		case !child.isDir():
			// etcd counts this failure as a failed set whatever the
			// operation, on top of the operation's own failure.
			s.count(setsFail)
			return nil, NewError(EcodeNotDir, child.path, s.index)
		}
		parent = child
	}
	var prevNode *Node
	if old, ok := parent.children[name]; ok {
		if !replace {
			return nil, NewError(EcodeNodeExist, key, s.index)
		}
		if old.isDir() {
			return nil, NewError(EcodeNotFile, key, s.index)
		}
		prevNode = old.repr(false, false, now)
		s.removeTree(old)
	}
	e := newEvent(action, key, next, next)
	e.PrevNode = prevNode
	var n *node
	if dir {
		n = newDir(key, next, parent, time.Time{})
		e.Node.Dir = true
	} else {
		n = newFile(key, value, next, parent, time.Time{})
		v := value
		e.Node.Value = &v
	}
	parent.children[name] = n
	s.ttl.setExpire(n, exp)
	e.Node.Expiration, e.Node.TTL = ttlAt(n.expire, now)
	s.index = next
	return e, nil
}

// update changes an existing key's value and TTL, or a directory's TTL.
func (s *Store) update(c *Command, key string, exp time.Time) (*Event, *Error) {
	n, err := s.lookupWritable(key)
	if err != nil {
		return nil, err
	}
	if n.isDir() && c.Value != "" {
		return nil, NewError(EcodeNotFile, key, s.index)
	}
	value := c.Value
	if c.Refresh {
		value = n.value
	}
	next := s.index + 1
	e := newEvent(ActionUpdate, key, next, n.createdIndex)
	e.PrevNode = n.repr(false, false, c.Time)
	e.Refresh = c.Refresh
	if n.isDir() {
		// As in etcd, a directory's own modifiedIndex stays: only the
		// event carries the new index.
		e.Node.Dir = true
	} else {
		n.value = value
		n.modifiedIndex = next
		e.Node.Value = &value
	}
	s.ttl.setExpire(n, exp)
	e.Node.Expiration, e.Node.TTL = ttlAt(n.expire, c.Time)
	s.index = next
	return e, nil
}

func (s *Store) compareAndSwap(c *Command, key string, exp time.Time) (*Event, *Error) {
	n, err := s.lookupWritable(key)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, NewError(EcodeNotFile, key, s.index)
	}
	if cause, ok := n.compare(c.PrevValue, c.PrevIndex); !ok {
		return nil, NewError(EcodeTestFailed, cause, s.index)
	}
	value := c.Value
	if c.Refresh {
		value = n.value
	}
	next := s.index + 1
	e := newEvent(ActionCompareAndSwap, key, next, n.createdIndex)
	e.PrevNode = n.repr(false, false, c.Time)
	e.Refresh = c.Refresh
	n.value = value
	n.modifiedIndex = next
	s.ttl.setExpire(n, exp)
	e.Node.Value = &value
	e.Node.Expiration, e.Node.TTL = ttlAt(n.expire, c.Time)
	s.index = next
	return e, nil
}

// delete removes a key; a directory only with dir (empty) or recursive.
func (s *Store) delete(key string, dir, recursive bool, now time.Time) (*Event, *Error) {
	n, err := s.lookupWritable(key)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		if !dir && !recursive {
			return nil, NewError(EcodeNotFile, n.path, s.index)
		}
		if len(n.children) > 0 && !recursive {
			return nil, NewError(EcodeDirNotEmpty, n.path, s.index)
		}
	}
	next := s.index + 1
	e := newEvent(ActionDelete, key, next, n.createdIndex)
	e.PrevNode = n.repr(false, false, now)
	e.Node.Dir = n.isDir()
	e.removedBelow = s.removeTree(n)
	s.index = next
	return e, nil
}

func (s *Store) compareAndDelete(c *Command, key string) (*Event, *Error) {
	n, err := s.lookup(key)
	if err != nil {
		return nil, err
	}
	if n.isDir() {
		return nil, NewError(EcodeNotFile, externKey(key), s.index)
	}
	if cause, ok := n.compare(c.PrevValue, c.PrevIndex); !ok {
		return nil, NewError(EcodeTestFailed, cause, s.index)
	}
	next := s.index + 1
	e := newEvent(ActionCompareAndDelete, key, next, n.createdIndex)
	e.PrevNode = n.repr(false, false, c.Time)
	s.removeTree(n)
	s.index = next
	return e, nil
}

// expire removes the node at key if it still expires at exp.
func (s *Store) expire(key string, exp, now time.Time) *Event {
	n, err := s.lookup(key)
	if err != nil || n == s.root || n.expire.IsZero() || !n.expire.Equal(exp) {
		return nil
	}
	next := s.index + 1
	e := newEvent(ActionExpire, key, next, n.createdIndex)
	e.PrevNode = n.repr(false, false, now)
	e.Node.Dir = n.isDir()
	e.removedBelow = s.removeTree(n)
	s.index = next
	return e
}

// removeTree unlinks n and drops it and everything under it from the TTL
// heap. It returns the paths of the nodes that were below n.
func (s *Store) removeTree(n *node) (below []string) {
	if n.parent != nil && n.parent.children[n.name()] == n {
		delete(n.parent.children, n.name())
	}
	var walk func(*node)
	walk = func(m *node) {
		for _, c := range m.children {
			walk(c)
		}
		s.ttl.remove(m)
		if m != n {
			below = append(below, m.path)
		}
	}
	walk(n)
	return below
}

// Expired returns the "expire" commands for every key and directory that
// expires at or before now, in a deterministic order (by expiration, then
// key), leaving out what goes with a directory expiring no later. The
// leader proposes them; applying one whose node has meanwhile been
// refreshed or replaced does nothing.
func (s *Store) Expired(now time.Time) []Command {
	s.mu.RLock()
	nodes := s.ttl.expired(now, 0, nil)
	type item struct {
		path   string
		expire time.Time
	}
	items := make([]item, len(nodes))
	for i, n := range nodes {
		items[i] = item{n.path, n.expire}
	}
	s.mu.RUnlock()
	slices.SortFunc(items, func(a, b item) int {
		if c := a.expire.Compare(b.expire); c != 0 {
			return c
		}
		return cmp.Compare(a.path, b.path)
	})
	var cmds []Command
	gone := map[string]bool{}
	for _, it := range items {
		covered := false
		for p := path.Dir(it.path); p != "/"; p = path.Dir(p) {
			if gone[p] {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		gone[it.path] = true
		cmds = append(cmds, Command{Op: ActionExpire, Key: it.path, Expiration: it.expire, Time: now})
	}
	return cmds
}
