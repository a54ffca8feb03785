package store

import (
	"strings"
	"testing"
	"time"
)

// next receives the watcher's next event, or fails after a while.
func next(t *testing.T, w *Watcher) *Event {
	t.Helper()
	select {
	case e, ok := <-w.EventChan():
		if !ok {
			t.Fatal("channel closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	return nil
}

// nothing checks that the watcher has no event waiting (and is open).
func nothing(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case e, ok := <-w.EventChan():
		if !ok {
			t.Fatal("channel closed")
		}
		t.Fatalf("unexpected event %s", toJSON(t, e))
	default:
	}
}

func closed(t *testing.T, w *Watcher) {
	t.Helper()
	select {
	case e, ok := <-w.EventChan():
		if ok {
			t.Fatalf("event %s, want a closed channel", toJSON(t, e))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("channel not closed")
	}
}

func watch(t *testing.T, s *Store, key string, recursive, stream bool, since uint64) *Watcher {
	t.Helper()
	w, err := s.Watch(key, recursive, stream, since)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWatchOneShot(t *testing.T) {
	s := New()
	mustApply(t, s, set("/x", "1"))
	w := watch(t, s, "/foo", false, false, 0)
	if w.StartIndex() != 1 {
		t.Errorf("StartIndex %d", w.StartIndex())
	}
	nothing(t, w)
	mustApply(t, s, set("/y/z", "not seen"), set("/foobar", "nor this"))
	nothing(t, w)
	mustApply(t, s, set("/foo", "bar"))
	e := next(t, w)
	if got, want := toJSON(t, e), `{"action":"set","node":{"key":"/foo","value":"bar","modifiedIndex":4,"createdIndex":4}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if e.EtcdIndex != 4 {
		t.Errorf("EtcdIndex %d", e.EtcdIndex)
	}
	closed(t, w)
	w.Remove()
	w.Remove()
	if s.Stats().Watchers != 0 {
		t.Error("watcher still counted")
	}
}

func TestWatchRecursiveAndHidden(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		recursive bool
		change    Command
		sees      bool
	}{
		{"recursive watcher sees a key below", "/foo", true, set("/foo/bar/baz", "x"), true},
		{"recursive watcher sees its own key", "/foo", true, set("/foo", "x"), true},
		{"recursive watcher on the root", "/", true, set("/a/b", "x"), true},
		{"not a sibling with the same prefix", "/foo", true, set("/foobar", "x"), false},
		{"non-recursive watcher does not see below", "/foo", false, set("/foo/bar", "x"), false},
		{"hidden key hidden from the root", "/", true, set("/_hidden", "x"), false},
		{"hidden key hidden from its parent", "/foo", true, set("/foo/_bar", "x"), false},
		{"key in a hidden directory hidden from above", "/foo", true, set("/foo/_bar/baz", "x"), false},
		{"hidden key seen by its own watcher", "/foo/_bar", false, set("/foo/_bar", "x"), true},
		{"inside a hidden directory, seen from it", "/foo/_bar", true, set("/foo/_bar/baz", "x"), true},
		{"hidden key below is hidden even from a hidden dir", "/_a", true, set("/_a/_b", "x"), false},
		{"in-order key", "/queue", true, Command{Op: ActionCreate, Key: "/queue", Unique: true, Value: "job"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			mustApply(t, s, set("/zzz", "start"))
			w := watch(t, s, tt.key, tt.recursive, true, 0)
			defer w.Remove()
			mustApply(t, s, tt.change)
			if tt.sees {
				next(t, w)
			} else {
				nothing(t, w)
			}
			// The history answers the same.
			h := watch(t, s, tt.key, tt.recursive, false, 2)
			defer h.Remove()
			if tt.sees {
				next(t, h)
			} else {
				nothing(t, h)
			}
		})
	}
}

// TestWatchDeletedDirectory: deleting (or expiring) a directory is an
// event for the watchers of every key inside it: live, of every key that
// was there (as etcd); from the history, of any key below it.
func TestWatchDeletedDirectory(t *testing.T) {
	s := New()
	mustApply(t, s, set("/dir/a/b", "1"), set("/dir/_h", "2"), set("/dirx", "3"))
	wb := watch(t, s, "/dir/a/b", false, false, 0)
	wh := watch(t, s, "/dir/_h", false, true, 0)
	wr := watch(t, s, "/dir/a", true, true, 0)
	wx := watch(t, s, "/dirx", false, true, 0)
	wn := watch(t, s, "/dir/none", false, true, 0)
	defer wh.Remove()
	defer wr.Remove()
	defer wx.Remove()
	defer wn.Remove()
	mustApply(t, s, Command{Op: ActionDelete, Key: "/dir", Recursive: true})
	for _, w := range []*Watcher{wb, wh, wr} {
		e := next(t, w)
		if e.Action != ActionDelete || e.Node.Key != "/dir" || !e.Node.Dir {
			t.Errorf("got %s", toJSON(t, e))
		}
	}
	closed(t, wb)
	nothing(t, wh) // once only
	nothing(t, wx)
	nothing(t, wn)
	// From the history too, for any key below.
	for _, key := range []string{"/dir/a/b", "/dir/none"} {
		h := watch(t, s, key, false, false, 4)
		if e := next(t, h); e.Node.Key != "/dir" {
			t.Errorf("history of %s: %s", key, toJSON(t, e))
		}
	}
	h := watch(t, s, "/dirx", false, false, 4)
	nothing(t, h)
	h.Remove()
}

func TestWatchStream(t *testing.T) {
	s := New()
	w := watch(t, s, "/foo", true, true, 0)
	for i := range 5 {
		mustApply(t, s, set("/foo/k", strings.Repeat("x", i)))
	}
	for i := range 5 {
		if e := next(t, w); *e.Node.Value != strings.Repeat("x", i) {
			t.Fatalf("event %d: %s", i, toJSON(t, e))
		}
	}
	nothing(t, w)
	w.Remove()
	closed(t, w)
	mustApply(t, s, set("/foo/k", "after remove"))
}

func TestWatchHistory(t *testing.T) {
	s := New()
	mustApply(t, s, set("/foo", "1"), set("/bar", "2"), set("/foo", "3"), set("/baz", "4"))
	// waitIndex in the history: the first matching event at once, with the
	// current index as EtcdIndex.
	w := watch(t, s, "/foo", false, false, 2)
	e := next(t, w)
	if *e.Node.Value != "3" || e.EtcdIndex != 4 {
		t.Errorf("got %s at %d", toJSON(t, e), e.EtcdIndex)
	}
	closed(t, w)
	if w.StartIndex() != 4 {
		t.Errorf("StartIndex %d", w.StartIndex())
	}
	// A stream from the history gets every match, then the live events.
	w = watch(t, s, "/foo", false, true, 1)
	for _, v := range []string{"1", "3"} {
		if e := next(t, w); *e.Node.Value != v {
			t.Errorf("got %s, want value %s", toJSON(t, e), v)
		}
	}
	nothing(t, w)
	mustApply(t, s, set("/foo", "5"))
	if e := next(t, w); *e.Node.Value != "5" || e.EtcdIndex != 5 {
		t.Errorf("got %s", toJSON(t, e))
	}
	w.Remove()
	// A future waitIndex waits for that index.
	w = watch(t, s, "/foo", false, false, 7)
	mustApply(t, s, set("/foo", "6"))
	nothing(t, w)
	mustApply(t, s, set("/foo", "7"))
	if e := next(t, w); *e.Node.Value != "7" {
		t.Errorf("got %s", toJSON(t, e))
	}
}

func TestWatchHistoryCleared(t *testing.T) {
	s := New()
	for i := range 1100 {
		mustApply(t, s, set("/k", strings.Repeat("x", i%3)))
	}
	_, err := s.Watch("/k", false, false, 50)
	if got, want := result(t, nil, err), `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [101/50]","index":1100}`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if err.(*Error).StatusCode() != 400 {
		t.Errorf("status %d", err.(*Error).StatusCode())
	}
	w := watch(t, s, "/k", false, false, 101)
	if e := next(t, w); e.Node.ModifiedIndex != 101 {
		t.Errorf("oldest kept event: %s", toJSON(t, e))
	}
}

// TestWatchRefresh: a refresh is not delivered, live or from the history.
func TestWatchRefresh(t *testing.T) {
	s := New()
	mustApply(t, s, Command{Op: ActionSet, Key: "/foo", Value: "bar", Expiration: at(time.Minute)})
	w := watch(t, s, "/foo", false, true, 0)
	defer w.Remove()
	mustApply(t, s, Command{Op: ActionSet, Key: "/foo", Refresh: true, PrevExist: yes(), Expiration: at(2 * time.Minute)})
	mustApply(t, s, Command{Op: ActionSet, Key: "/foo", Refresh: true, Expiration: at(3 * time.Minute)})
	nothing(t, w)
	e, _ := s.Get("/foo", false, false, t0)
	if *e.Node.Value != "bar" || e.Node.TTL != 180 {
		t.Errorf("after refresh: %s", toJSON(t, e))
	}
	mustApply(t, s, set("/foo", "new"))
	if e := next(t, w); *e.Node.Value != "new" {
		t.Errorf("got %s", toJSON(t, e))
	}
	h := watch(t, s, "/foo", false, false, 2)
	if e := next(t, h); e.Node.ModifiedIndex != 4 {
		t.Errorf("history returned %s", toJSON(t, e))
	}
}

// TestWatchSlow: a watcher that does not read is dropped, and Apply never
// waits for it.
func TestWatchSlow(t *testing.T) {
	s := New()
	w := watch(t, s, "/k", false, true, 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range watcherBuffer + 10 {
			mustApply(t, s, set("/k", strings.Repeat("x", i%2)))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Apply blocked on a slow watcher")
	}
	n := 0
	for range w.EventChan() {
		n++
	}
	if n != watcherBuffer {
		t.Errorf("%d events before the close, want %d", n, watcherBuffer)
	}
	if s.Stats().Watchers != 0 {
		t.Error("a dropped watcher still counts")
	}
	w.Remove()
}

// TestWatchSharedEvents: the event a writer gets back is its own.
func TestWatchSharedEvents(t *testing.T) {
	s := New()
	w := watch(t, s, "/k", false, false, 0)
	e, err := s.Apply(set("/k", "v"))
	if err != nil {
		t.Fatal(err)
	}
	e.Node = nil
	if got := next(t, w); got.Node == nil || got.Node.Key != "/k" {
		t.Error("the watcher's event changed with the writer's")
	}
	h := watch(t, s, "/k", false, false, 1)
	if got := next(t, h); got.Node == nil {
		t.Error("the history's event changed with the writer's")
	}
}

func TestWatchRestoreClosesWatchers(t *testing.T) {
	s := New()
	mustApply(t, s, set("/k", "v"))
	b, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	w := watch(t, s, "/k", true, true, 0)
	if err := s.Restore(b); err != nil {
		t.Fatal(err)
	}
	closed(t, w)
	w.Remove()
	if s.Stats().Watchers != 0 {
		t.Error("watchers survive a restore")
	}
}
