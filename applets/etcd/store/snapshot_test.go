package store

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// run applies the commands of src to the stores until src is exhausted.
func run(t testing.TB, src *commandSource, stores ...*Store) {
	for !src.done() {
		applyBoth(t, src.step(stores[0]), stores...)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	for seed := range uint64(8) {
		a := New()
		src := &commandSource{b: randomBytes(seed, 4*5000), now: t0}
		run(t, src, a)
		checkInvariants(t, a)
		if a.Index() < 1000 {
			t.Fatalf("seed %d: only %d events", seed, a.Index())
		}
		snap, err := a.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		b := New()
		mustApply(t, b, set("/old", "content"))
		if err := b.Restore(snap); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkInvariants(t, b)
		again, _ := b.Snapshot()
		if !bytes.Equal(snap, again) {
			t.Fatalf("seed %d: snapshot of the restored store differs", seed)
		}
		ga, _ := a.Get("/", true, true, src.now)
		gb, _ := b.Get("/", true, true, src.now)
		if toJSON(t, ga) != toJSON(t, gb) {
			t.Fatalf("seed %d: trees differ", seed)
		}
		// Both continue alike, expiry included.
		src = &commandSource{b: randomBytes(seed+100, 4*1000), now: src.now}
		run(t, src, a, b)
		applyBoth(t, a.Expired(src.now.Add(time.Hour)), a, b)
		sa, _ := a.Snapshot()
		sb, _ := b.Snapshot()
		if !bytes.Equal(sa, sb) {
			t.Fatalf("seed %d: snapshots differ after the same commands", seed)
		}
		checkInvariants(t, b)
		// The restored history serves watchers as the original does.
		for _, since := range []uint64{a.Index() - 999, a.Index() - 500, a.Index()} {
			wa, err1 := a.Watch("/a", true, false, since)
			wb, err2 := b.Watch("/a", true, false, since)
			if err1 != nil || err2 != nil {
				t.Fatalf("watch: %v %v", err1, err2)
			}
			var ea, eb *Event
			select {
			case ea = <-wa.EventChan():
			default:
			}
			select {
			case eb = <-wb.EventChan():
			default:
			}
			if toJSON(t, ea) != toJSON(t, eb) {
				t.Errorf("history from %d: %s vs %s", since, toJSON(t, ea), toJSON(t, eb))
			}
			wa.Remove()
			wb.Remove()
		}
	}
}

func TestSnapshotEmpty(t *testing.T) {
	a := New()
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	b := New()
	mustApply(t, b, set("/x", "y"))
	if err := b.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if b.Index() != 0 {
		t.Errorf("index %d", b.Index())
	}
	if _, err := b.Get("/x", false, false, t0); err == nil {
		t.Error("old content survived the restore")
	}
}

// TestRestoreRejects: a damaged snapshot is an error and the store keeps
// its content.
func TestRestoreRejects(t *testing.T) {
	src := &commandSource{b: randomBytes(7, 4*300), now: t0}
	a := New()
	run(t, src, a)
	snap, _ := a.Snapshot()
	s := New()
	mustApply(t, s, set("/keep", "me"), Command{Op: ActionSet, Key: "/ttl", Value: "x", Expiration: at(time.Minute)})
	before, _ := s.Snapshot()
	// Truncated, extended or of another version: always rejected.
	bad := [][]byte{nil, {}, {2}, append(bytes.Clone(snap), 0), append([]byte{2}, snap[1:]...)}
	for i := 0; i < len(snap); i += 1 + i/16 {
		bad = append(bad, snap[:i])
	}
	for _, b := range bad {
		if err := s.Restore(b); err == nil {
			t.Fatalf("restored a damaged snapshot of %d bytes", len(b))
		}
		after, _ := s.Snapshot()
		if !bytes.Equal(before, after) {
			t.Fatalf("a failed restore changed the store")
		}
	}
	// A flipped bit is rejected, leaving the store as it was, or (in a
	// name, a value, a counter) makes another valid snapshot, which must
	// then give a sound store.
	for i := 0; i < len(snap); i += 3 {
		b := bytes.Clone(snap)
		b[i] ^= 0x40
		if err := s.Restore(b); err != nil {
			after, _ := s.Snapshot()
			if !bytes.Equal(before, after) {
				t.Fatalf("a failed restore changed the store")
			}
			continue
		}
		checkInvariants(t, s)
		mustApply(t, s, set("/after", "restore"))
		if err := s.Restore(before); err != nil {
			t.Fatal(err)
		}
	}
}
