package store

import (
	"bytes"
	"path"
	"strings"
	"testing"
	"time"
)

func FuzzCleanKey(f *testing.F) {
	for _, s := range []string{"", "/", "foo", "/foo//bar/", "/a/./b", "/a/../b", "/..", "a/../../b", "/_h/x", "/%2F/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		k, err := CleanKey(raw)
		if err != nil {
			if !strings.Contains(raw, "..") {
				t.Fatalf("%q rejected: %v", raw, err)
			}
			return
		}
		if !strings.HasPrefix(k, "/") || path.Clean(k) != k {
			t.Fatalf("%q -> %q: not clean", raw, k)
		}
		if again, err := CleanKey(k); err != nil || again != k {
			t.Fatalf("%q -> %q -> %q, %v", raw, k, again, err)
		}
		if k != path.Join("/", raw) {
			t.Fatalf("%q -> %q, etcd makes %q", raw, k, path.Join("/", raw))
		}
	})
}

func FuzzUnmarshalCommand(f *testing.F) {
	for _, c := range commandCases {
		b, _ := c.Marshal()
		f.Add(b)
	}
	f.Add([]byte{1, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := UnmarshalCommand(b)
		if err != nil {
			return
		}
		again, err := c.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%x decodes to %+v, which marshals to %x, %v", b, c, again, err)
		}
		s := New()
		mustApply(t, s, set("/a/b", "one"), mkdir("/d"), Command{Op: ActionSet, Key: "/t", Value: "x", Expiration: at(time.Second)})
		s.Apply(c)
		checkInvariants(t, s)
	})
}

func FuzzRestore(f *testing.F) {
	for seed := range uint64(4) {
		s := New()
		run(f, &commandSource{b: randomBytes(seed, 4*(10+int(seed)*60)), now: t0}, s)
		b, _ := s.Snapshot()
		f.Add(b)
	}
	empty, _ := New().Snapshot()
	f.Add(empty)
	f.Fuzz(func(t *testing.T, b []byte) {
		s := New()
		mustApply(t, s, set("/keep", "me"), Command{Op: ActionSet, Key: "/ttl", Value: "x", Expiration: at(time.Minute)})
		w, _ := s.Watch("/keep", false, true, 0)
		before, _ := s.Snapshot()
		if err := s.Restore(b); err != nil {
			after, _ := s.Snapshot()
			if !bytes.Equal(before, after) {
				t.Fatal("a failed restore changed the store")
			}
			select {
			case <-w.EventChan():
				t.Fatal("a failed restore touched the watchers")
			default:
			}
			return
		}
		again, _ := s.Snapshot()
		if !bytes.Equal(again, b) {
			t.Fatal("restored store snapshots differently")
		}
		checkInvariants(t, s)
		s.Get("/", true, true, t0)
		s.Watch("/", true, true, 1)
		run(t, &commandSource{b: randomBytes(uint64(len(b)), 4*50), now: t0}, s)
		applyBoth(t, s.Expired(t0.Add(time.Duration(1<<62))), s)
		checkInvariants(t, s)
	})
}

// FuzzApply applies a run of commands to two stores, one of them replaced
// by a restore of its snapshot midway: they must answer and end alike.
func FuzzApply(f *testing.F) {
	f.Add(byte(3), randomBytes(1, 64))
	f.Add(byte(100), randomBytes(2, 400))
	f.Add(byte(0), []byte{7, 0, 0, 0})
	f.Fuzz(func(t *testing.T, cut byte, b []byte) {
		a, c := New(), New()
		src := &commandSource{b: b, now: t0}
		for i := 0; !src.done(); i++ {
			if i == int(cut) {
				snap, err := c.Snapshot()
				if err != nil {
					t.Fatal(err)
				}
				c = New()
				if err := c.Restore(snap); err != nil {
					t.Fatal(err)
				}
			}
			applyBoth(t, src.step(a), a, c)
		}
		checkInvariants(t, a)
		checkInvariants(t, c)
		sa, _ := a.Snapshot()
		sc, _ := c.Snapshot()
		if !bytes.Equal(sa, sc) {
			t.Fatal("the restored store ended differently")
		}
		ga, _ := a.Get("/", true, true, src.now)
		gc, _ := c.Get("/", true, true, src.now)
		if toJSON(t, ga) != toJSON(t, gc) {
			t.Fatal("trees differ")
		}
	})
}
