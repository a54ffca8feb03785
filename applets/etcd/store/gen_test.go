package store

import (
	"fmt"
	"testing"
	"time"
)

// commandSource turns bytes into a run of commands over a small key space,
// so that they collide: for the fuzz targets and the randomized tests.
type commandSource struct {
	b   []byte
	now time.Time
}

var (
	genKeys   = []string{"/", "/a", "/a/b", "/a/b/c", "/a/_h", "/a/_h/x", "/b", "/b/c", "/_x", "/q", "a//b/", "/c/../a"}
	genOps    = []string{ActionSet, ActionCreate, ActionUpdate, ActionCompareAndSwap, ActionDelete, ActionCompareAndDelete}
	genValues = []string{"", "one", "two", "\xff\x00"}
)

func (src *commandSource) byte() byte {
	if len(src.b) == 0 {
		return 0
	}
	v := src.b[0]
	src.b = src.b[1:]
	return v
}

func (src *commandSource) done() bool { return len(src.b) == 0 }

// step returns the next commands to apply to a store in the state of s:
// one mutation, or (one time in eight) the expire commands s proposes.
func (src *commandSource) step(s *Store) []Command {
	op, key, f1, f2 := src.byte(), src.byte(), src.byte(), src.byte()
	src.now = src.now.Add(time.Duration(f2%8) * 700 * time.Millisecond)
	if op%8 == 7 {
		return s.Expired(src.now)
	}
	c := Command{
		Op:        genOps[int(op)%len(genOps)],
		Key:       genKeys[int(key)%len(genKeys)],
		Value:     genValues[int(key>>4)%len(genValues)],
		Dir:       f1&1 != 0,
		Refresh:   f1&2 != 0 && f1&4 != 0,
		Recursive: f1&8 != 0,
		Unique:    f1&16 != 0,
		Time:      src.now,
	}
	if f1&32 != 0 {
		pe := f1&64 != 0
		c.PrevExist = &pe
	}
	if f1&128 != 0 {
		c.PrevValue = genValues[1+int(op>>4)%(len(genValues)-1)]
	}
	if f2&8 != 0 {
		c.PrevIndex = uint64(op>>3) % 16
	}
	if f2&16 != 0 {
		c.Expiration = src.now.Add(time.Duration(f2>>5) * time.Second)
	}
	return []Command{c}
}

// checkInvariants verifies the structure Apply and Restore must keep.
func checkInvariants(t testing.TB, s *Store) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	withTTL := map[*node]bool{}
	var walk func(n *node)
	walk = func(n *node) {
		if n.modifiedIndex > s.index || n.createdIndex > n.modifiedIndex {
			t.Fatalf("%s: indexes %d/%d at %d", n.path, n.createdIndex, n.modifiedIndex, s.index)
		}
		if !n.expire.IsZero() {
			withTTL[n] = true
			if n.heapIndex < 0 || n.heapIndex >= len(s.ttl) || s.ttl[n.heapIndex] != n {
				t.Fatalf("%s: not in the TTL heap", n.path)
			}
		} else if n.heapIndex != -1 {
			t.Fatalf("%s: permanent node in the TTL heap", n.path)
		}
		for name, c := range n.children {
			if c.parent != n || c.name() != name || c.path != cleanPath(n.path+"/"+name) {
				t.Fatalf("%s: bad child %q (%s)", n.path, name, c.path)
			}
			walk(c)
		}
	}
	walk(s.root)
	if len(withTTL) != len(s.ttl) {
		t.Fatalf("TTL heap has %d nodes, the tree %d", len(s.ttl), len(withTTL))
	}
	es := s.history.events()
	for i, e := range es {
		if want := s.index - uint64(len(es)-1-i); e.index() != want {
			t.Fatalf("history event %d at index %d, want %d", i, e.index(), want)
		}
	}
	if len(es) == 0 && s.index != 0 {
		t.Fatalf("no history at index %d", s.index)
	}
}

// applyBoth applies cs to every store and fails unless they answer alike.
func applyBoth(t testing.TB, cs []Command, stores ...*Store) {
	t.Helper()
	for _, c := range cs {
		var first string
		for i, s := range stores {
			e, err := s.Apply(c)
			got := fmt.Sprintf("%v", err)
			if e != nil {
				got = fmt.Sprintf("%s %d %s", toJSON(t, e), e.EtcdIndex, got)
			}
			if i == 0 {
				first = got
			} else if got != first {
				t.Fatalf("%+v: store %d answers %s, store 0 %s", c, i, got, first)
			}
		}
	}
}
