package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	etcdv2 "go.etcd.io/etcd/client/v2"

	"github.com/corebox/corebox/applets/etcd/client"
	"github.com/corebox/corebox/applets/etcd/client/etcdtest"
)

func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("client.New(%+v): %v", cfg, err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// etcdError asserts that err is an etcd error with the given code and cause.
func etcdError(t *testing.T, err error, code int, cause string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an etcd error", err, err)
	}
	if e.Code != code || e.Cause != cause || e.Index == 0 || e.Message == "" {
		t.Fatalf("etcd error %+v, want code %d cause %q, a message and an index", e, code, cause)
	}
	if want := fmt.Sprintf("%d: %s (%s) [%d]", e.Code, e.Message, e.Cause, e.Index); e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
	return e
}

func TestNewValidates(t *testing.T) {
	for _, eps := range [][]string{nil, {"127.0.0.1:2379"}, {"ftp://h:1"}, {"http://"}, {"http://h:1/?x=1"}, {"http://h:1", "%zz"}} {
		if _, err := client.New(client.Config{Endpoints: eps}); err == nil {
			t.Errorf("New(%q) succeeded", eps)
		}
	}
	c, err := client.New(client.Config{Endpoints: []string{"http://127.0.0.1:2379", "https://[::1]:2379/prefix"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Endpoints(); !slices.Equal(got, []string{"http://127.0.0.1:2379", "https://[::1]:2379/prefix"}) {
		t.Fatalf("Endpoints() = %q", got)
	}
}

func TestKeys(t *testing.T) {
	m := etcdtest.Start(t, nil)
	c := newClient(t, client.Config{Endpoints: []string{m.ClientURL}})
	ctx := ctxT(t)

	t.Run("get missing", func(t *testing.T) {
		_, err := c.Get(ctx, "/missing", nil)
		etcdError(t, err, client.ErrorCodeKeyNotFound, "/missing")
		if !client.IsKeyNotFound(err) || client.IsNodeExist(err) {
			t.Fatal("IsKeyNotFound/IsNodeExist disagree with the code")
		}
		if !strings.HasPrefix(err.Error(), "100: Key not found (/missing) [") {
			t.Fatalf("Error() = %q", err)
		}
	})

	t.Run("set get", func(t *testing.T) {
		r, err := c.Set(ctx, "/a", "1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != "set" || r.Node.Key != "/a" || r.Node.Value != "1" || r.PrevNode != nil ||
			r.Node.CreatedIndex == 0 || r.Node.CreatedIndex != r.Node.ModifiedIndex || r.Index != r.Node.ModifiedIndex {
			t.Fatalf("set: %+v node %+v", r, r.Node)
		}
		if r.RaftIndex == 0 || r.RaftTerm == 0 || r.ClusterID == "" {
			t.Fatalf("raft headers missing: %+v", r)
		}
		r2, err := c.Set(ctx, "a", "2", nil) // no leading slash
		if err != nil {
			t.Fatal(err)
		}
		if r2.PrevNode == nil || r2.PrevNode.Value != "1" || r2.Node.ModifiedIndex <= r.Node.ModifiedIndex {
			t.Fatalf("second set: %+v prev %+v", r2.Node, r2.PrevNode)
		}
		g, err := c.Get(ctx, "/a", &client.GetOptions{Quorum: true})
		if err != nil {
			t.Fatal(err)
		}
		if g.Action != "get" || g.Node.Value != "2" || g.Node.ModifiedIndex != r2.Node.ModifiedIndex {
			t.Fatalf("get: %+v", g.Node)
		}
	})

	t.Run("create update", func(t *testing.T) {
		_, err := c.Create(ctx, "/a", "x", 0)
		etcdError(t, err, client.ErrorCodeNodeExist, "/a")
		if !client.IsNodeExist(err) {
			t.Fatal("IsNodeExist false")
		}
		r, err := c.Create(ctx, "/c", "x", 0)
		if err != nil || r.Action != "create" || r.Node.Value != "x" {
			t.Fatalf("create: %+v, %v", r, err)
		}
		_, err = c.Update(ctx, "/u", "x", 0)
		etcdError(t, err, client.ErrorCodeKeyNotFound, "/u")
		r, err = c.Update(ctx, "/c", "y", 0)
		if err != nil || r.Action != "update" || r.Node.Value != "y" || r.PrevNode.Value != "x" {
			t.Fatalf("update: %+v, %v", r, err)
		}
		if _, err := c.Set(ctx, "/c", "z", &client.SetOptions{PrevExist: "maybe"}); err == nil {
			t.Fatal("a bad PrevExist was sent")
		}
		r, err = c.Set(ctx, "/c", "z", &client.SetOptions{PrevExist: client.PrevExist})
		if err != nil || r.Action != "update" {
			t.Fatalf("set prevExist=true: %+v, %v", r, err)
		}
		_, err = c.Set(ctx, "/c", "z", &client.SetOptions{PrevExist: client.PrevNoExist})
		etcdError(t, err, client.ErrorCodeNodeExist, "/c")
	})

	t.Run("compare and swap", func(t *testing.T) {
		r, err := c.Set(ctx, "/cas", "one", nil)
		if err != nil {
			t.Fatal(err)
		}
		idx := r.Node.ModifiedIndex
		_, err = c.CompareAndSwap(ctx, "/cas", "two", "nope", 0, 0)
		e := etcdError(t, err, client.ErrorCodeTestFailed, "[nope != one]")
		if !client.IsCompareFailed(err) || e.Index != idx {
			t.Fatalf("compare failed: %+v", e)
		}
		_, err = c.CompareAndSwap(ctx, "/cas", "two", "", idx+100, 0)
		etcdError(t, err, client.ErrorCodeTestFailed, fmt.Sprintf("[%d != %d]", idx+100, idx))
		_, err = c.CompareAndSwap(ctx, "/cas", "two", "nope", idx+100, 0)
		etcdError(t, err, client.ErrorCodeTestFailed, fmt.Sprintf("[nope != one] [%d != %d]", idx+100, idx))
		if _, err := c.CompareAndSwap(ctx, "/cas", "two", "", 0, 0); err == nil || client.ErrorCode(err) != 0 {
			t.Fatalf("a compare-and-swap without condition: %v", err)
		}
		r, err = c.CompareAndSwap(ctx, "/cas", "two", "one", idx, 0)
		if err != nil || r.Action != "compareAndSwap" || r.Node.Value != "two" || r.PrevNode.Value != "one" {
			t.Fatalf("cas: %+v, %v", r, err)
		}
		r, err = c.Set(ctx, "/cas", "three", &client.SetOptions{PrevValue: "two"})
		if err != nil || r.Action != "compareAndSwap" {
			t.Fatalf("set prevValue: %+v, %v", r, err)
		}
		_, err = c.CompareAndDelete(ctx, "/cas", "two", 0)
		etcdError(t, err, client.ErrorCodeTestFailed, "[two != three]")
		r, err = c.CompareAndDelete(ctx, "/cas", "three", r.Node.ModifiedIndex)
		if err != nil || r.Action != "compareAndDelete" || r.PrevNode.Value != "three" {
			t.Fatalf("cad: %+v, %v", r, err)
		}
	})

	t.Run("dirs", func(t *testing.T) {
		if _, err := c.Set(ctx, "/d", "v", &client.SetOptions{Dir: true}); err == nil {
			t.Fatal("a directory with a value was sent")
		}
		r, err := c.Set(ctx, "/d", "", &client.SetOptions{Dir: true})
		if err != nil || !r.Node.Dir {
			t.Fatalf("mkdir: %+v, %v", r, err)
		}
		for _, k := range []string{"/d/b", "/d/a/y", "/d/a/x", "/d/c"} {
			if _, err := c.Set(ctx, k, k, nil); err != nil {
				t.Fatal(err)
			}
		}
		_, err = c.Set(ctx, "/d", "v", nil)
		etcdError(t, err, client.ErrorCodeNotFile, "/d")
		_, err = c.Set(ctx, "/d/b/z", "v", nil)
		etcdError(t, err, client.ErrorCodeNotDir, "/d/b")

		g, err := c.Get(ctx, "/d", &client.GetOptions{Sort: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := keysOf(g.Node); got != "/d /d/a /d/b /d/c" {
			t.Fatalf("sorted children: %s", got)
		}
		if a := g.Node.Nodes[0]; !a.Dir || a.Nodes != nil {
			t.Fatalf("a non-recursive get has grandchildren: %+v", a)
		}
		g, err = c.Get(ctx, "/d", &client.GetOptions{Sort: true, Recursive: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := keysOf(g.Node); got != "/d /d/a /d/a/x /d/a/y /d/b /d/c" {
			t.Fatalf("recursive sorted: %s", got)
		}
		root, err := c.Get(ctx, "", nil)
		if err != nil || !root.Node.Dir || root.Node.Key != "" {
			t.Fatalf("root: %+v, %v", root, err)
		}

		_, err = c.Delete(ctx, "/d", nil)
		etcdError(t, err, client.ErrorCodeNotFile, "/d")
		_, err = c.Delete(ctx, "/d", &client.DeleteOptions{Dir: true})
		etcdError(t, err, client.ErrorCodeDirNotEmpty, "/d")
		r, err = c.Delete(ctx, "/d/b", &client.DeleteOptions{Dir: true})
		if err != nil || r.Action != "delete" || r.PrevNode.Value != "/d/b" {
			t.Fatalf("delete a key with Dir: %+v, %v", r, err)
		}
		r, err = c.Delete(ctx, "/d", &client.DeleteOptions{Recursive: true})
		if err != nil || r.Action != "delete" || !r.Node.Dir {
			t.Fatalf("recursive delete: %+v, %v", r, err)
		}
		_, err = c.Delete(ctx, "/", &client.DeleteOptions{Recursive: true})
		etcdError(t, err, client.ErrorCodeRootROnly, "/")
	})

	t.Run("no value on success", func(t *testing.T) {
		r, err := c.Set(ctx, "/nv", "1", &client.SetOptions{NoValueOnSuccess: true})
		if err != nil || r.Action != "set" || r.Node != nil || r.Index == 0 {
			t.Fatalf("noValueOnSuccess: %+v, %v", r, err)
		}
	})

	t.Run("ttl and refresh", func(t *testing.T) {
		r, err := c.Set(ctx, "/ttl", "v", &client.SetOptions{TTL: 1500 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if r.Node.TTL != 2 || r.Node.Expiration == nil || time.Until(*r.Node.Expiration) > 3*time.Second {
			t.Fatalf("ttl 1.5s rounds up to 2: ttl %d expiration %v", r.Node.TTL, r.Node.Expiration)
		}
		r, err = c.Set(ctx, "/ttl", "", &client.SetOptions{TTL: 100 * time.Second, Refresh: true, PrevExist: client.PrevExist})
		if err != nil {
			t.Fatal(err)
		}
		if r.Action != "update" || r.Node.Value != "v" || r.Node.TTL != 100 {
			t.Fatalf("refresh: %+v", r.Node)
		}
		_, err = c.Set(ctx, "/ttl", "x", &client.SetOptions{TTL: time.Second, Refresh: true})
		if client.ErrorCode(err) != client.ErrorCodeRefreshValue {
			t.Fatalf("refresh with a value: %v", err)
		}
		_, err = c.Set(ctx, "/ttl", "", &client.SetOptions{Refresh: true})
		if client.ErrorCode(err) != client.ErrorCodeRefreshTTLRequired {
			t.Fatalf("refresh without TTL: %v", err)
		}

		// A short TTL expires, and an update without TTL makes a key
		// permanent.
		if _, err := c.Create(ctx, "/short", "v", time.Second); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Set(ctx, "/kept", "v", &client.SetOptions{TTL: time.Second}); err != nil {
			t.Fatal(err)
		}
		r, err = c.Update(ctx, "/kept", "w", 0)
		if err != nil || r.Node.TTL != 0 || r.Node.Expiration != nil || r.PrevNode.TTL == 0 {
			t.Fatalf("update without ttl: %+v, %v", r, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := c.Get(ctx, "/short", nil)
			if client.IsKeyNotFound(err) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a 1s key still there after 5s: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if _, err := c.Get(ctx, "/kept", nil); err != nil {
			t.Fatalf("the permanent key expired: %v", err)
		}
	})

	t.Run("in order", func(t *testing.T) {
		var names []string
		for i := range 3 {
			r, err := c.CreateInOrder(ctx, "/q", fmt.Sprint(i), 0)
			if err != nil {
				t.Fatal(err)
			}
			if r.Action != "create" || !strings.HasPrefix(r.Node.Key, "/q/") || len(r.Node.Key) != len("/q/")+20 {
				t.Fatalf("in-order key: %+v", r.Node)
			}
			names = append(names, r.Node.Key)
		}
		r, err := c.CreateInOrder(ctx, "/q", "ttl", time.Minute)
		if err != nil || r.Node.TTL != 60 {
			t.Fatalf("in-order with ttl: %+v, %v", r, err)
		}
		names = append(names, r.Node.Key)
		if !slices.IsSorted(names) {
			t.Fatalf("in-order keys not increasing: %q", names)
		}
		g, err := c.Get(ctx, "/q", &client.GetOptions{Sort: true})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range g.Node.Nodes {
			got = append(got, n.Key)
		}
		if !slices.Equal(got, names) {
			t.Fatalf("sorted %q, created %q", got, names)
		}
	})

	// Keys are escaped so that etcd sees them as written, and as etcd's own
	// client writes them.
	t.Run("key escaping", func(t *testing.T) {
		theirs := etcdV2(t, m.ClientURL)
		keys := []string{"/sp ace", "/un/ïcødé/☃", "/per%cent", "/per%25cent", "/q?uery", "/ha#sh", "/pl+us", "/semi;colon", "/amp&=", "/dou//ble", "/dot/./x", "/tab\tkey"}
		for _, k := range keys {
			r, err := c.Set(ctx, "/esc"+k, "v"+k, nil)
			if err != nil {
				t.Fatalf("set %q: %v", k, err)
			}
			want, err := theirs.Get(ctx, "/esc"+k, nil)
			if err != nil {
				t.Fatalf("etcd's client cannot read %q back: %v", k, err)
			}
			if r.Node.Key != want.Node.Key || want.Node.Value != "v"+k {
				t.Fatalf("key %q: ours %q, etcd's client %q = %q", k, r.Node.Key, want.Node.Key, want.Node.Value)
			}
			if _, err := theirs.Set(ctx, "/esc2"+k, "w", nil); err != nil {
				t.Fatal(err)
			}
			g, err := c.Get(ctx, "/esc2"+k, nil)
			if err != nil || g.Node.Value != "w" {
				t.Fatalf("cannot read %q written by etcd's client: %v", k, err)
			}
		}
		g, err := c.Get(ctx, "/esc", &client.GetOptions{Sort: true, Recursive: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := keysOf(g.Node); !strings.Contains(got, "/esc/per%25cent /esc/per%cent ") || !strings.Contains(got, " /esc/tab\tkey ") {
			t.Fatalf("%% escaped wrongly: %s", keysOf(g.Node))
		}
	})

	// Marshalled, a Response is what etcd's Go client marshals, which is
	// what etcdctl -o json prints.
	t.Run("json like etcd's client", func(t *testing.T) {
		theirs := etcdV2(t, m.ClientURL)
		if _, err := c.Set(ctx, "/j/dir/k", "v", &client.SetOptions{TTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
		r, err := c.Set(ctx, "/j/k", "v", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"/j", "/j/k", "/j/dir/k"} {
			ours, err := c.Get(ctx, key, &client.GetOptions{Recursive: true, Sort: true})
			if err != nil {
				t.Fatal(err)
			}
			want, err := theirs.Get(ctx, key, &etcdv2.GetOptions{Recursive: true, Sort: true})
			if err != nil {
				t.Fatal(err)
			}
			a, _ := json.Marshal(ours)
			b, _ := json.Marshal(want)
			// The TTL may tick between the two reads.
			if strings.ReplaceAll(string(a), `"ttl":3599`, `"ttl":3600`) != strings.ReplaceAll(string(b), `"ttl":3599`, `"ttl":3600`) {
				t.Fatalf("json of %s:\nours   %s\netcd's %s", key, a, b)
			}
			if ours.Index != want.Index || ours.ClusterID != want.ClusterID {
				t.Fatalf("headers: ours %d %s, etcd's %d %s", ours.Index, ours.ClusterID, want.Index, want.ClusterID)
			}
		}
		a, _ := json.Marshal(r)
		if want := fmt.Sprintf(`{"action":"set","node":{"key":"/j/k","value":"v","nodes":null,"createdIndex":%d,"modifiedIndex":%[1]d},"prevNode":null}`, r.Node.ModifiedIndex); string(a) != want {
			t.Fatalf("json %s, want %s", a, want)
		}
	})
}

// keysOf lists a node's keys depth first.
func keysOf(n *client.Node) string {
	var out []string
	var walk func(*client.Node)
	walk = func(n *client.Node) {
		out = append(out, n.Key)
		for _, c := range n.Nodes {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(out, " ")
}

// etcdV2 is etcd's own Go client, for comparison.
func etcdV2(t *testing.T, endpoint string) etcdv2.KeysAPI {
	t.Helper()
	c, err := etcdv2.New(etcdv2.Config{Endpoints: []string{endpoint}, Transport: etcdv2.DefaultTransport})
	if err != nil {
		t.Fatal(err)
	}
	return etcdv2.NewKeysAPI(c)
}

// next runs w.Next in the background.
func next(ctx context.Context, w *client.Watcher) <-chan result {
	ch := make(chan result, 1)
	go func() {
		r, err := w.Next(ctx)
		ch <- result{r, err}
	}()
	return ch
}

type result struct {
	r   *client.Response
	err error
}

func wait(t *testing.T, ch <-chan result) *client.Response {
	t.Helper()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("watch: %v", res.err)
		}
		return res.r
	case <-time.After(10 * time.Second):
		t.Fatal("no event after 10s")
	}
	return nil
}

func quiet(t *testing.T, ch <-chan result) {
	t.Helper()
	select {
	case res := <-ch:
		t.Fatalf("unexpected event %+v, %v", res.r, res.err)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestWatch(t *testing.T) {
	m := etcdtest.Start(t, nil)
	c := newClient(t, client.Config{Endpoints: []string{m.ClientURL}})
	ctx := ctxT(t)

	t.Run("one event", func(t *testing.T) {
		w := c.Watcher("/w", nil)
		ch := next(ctx, w)
		quiet(t, ch)
		if _, err := c.Set(ctx, "/other", "x", nil); err != nil {
			t.Fatal(err)
		}
		quiet(t, ch)
		s, err := c.Set(ctx, "/w", "hello", nil)
		if err != nil {
			t.Fatal(err)
		}
		r := wait(t, ch)
		if r.Action != "set" || r.Node.Key != "/w" || r.Node.Value != "hello" || r.Node.ModifiedIndex != s.Node.ModifiedIndex {
			t.Fatalf("event %+v %+v", r, r.Node)
		}
		// The watcher moved past that event.
		ch = next(ctx, w)
		quiet(t, ch)
		if _, err := c.Delete(ctx, "/w", nil); err != nil {
			t.Fatal(err)
		}
		r = wait(t, ch)
		if r.Action != "delete" || r.PrevNode == nil || r.PrevNode.Value != "hello" {
			t.Fatalf("delete event %+v", r)
		}
	})

	t.Run("recursive", func(t *testing.T) {
		w := c.Watcher("/wd", &client.WatcherOptions{Recursive: true})
		plain := c.Watcher("/wd", nil)
		ch, chPlain := next(ctx, w), next(ctx, plain)
		quiet(t, chPlain) // both watches are registered at the server by now
		if _, err := c.Set(ctx, "/wd/a/b", "deep", nil); err != nil {
			t.Fatal(err)
		}
		if r := wait(t, ch); r.Node.Key != "/wd/a/b" || r.Node.Value != "deep" {
			t.Fatalf("recursive event %+v", r.Node)
		}
		quiet(t, chPlain)
	})

	t.Run("after index", func(t *testing.T) {
		var idx []uint64
		for i := range 3 {
			r, err := c.Set(ctx, "/wa", fmt.Sprint(i), nil)
			if err != nil {
				t.Fatal(err)
			}
			idx = append(idx, r.Node.ModifiedIndex)
		}
		w := c.Watcher("/wa", &client.WatcherOptions{AfterIndex: idx[0]})
		for i := 1; i < 3; i++ {
			r := wait(t, next(ctx, w))
			if r.Node.ModifiedIndex != idx[i] || r.Node.Value != fmt.Sprint(i) {
				t.Fatalf("event %d: %+v, want index %d", i, r.Node, idx[i])
			}
		}
		quiet(t, next(ctx, w))
	})

	t.Run("cancel", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		ch := next(cctx, c.Watcher("/never", nil))
		quiet(t, ch)
		start := time.Now()
		cancel()
		select {
		case res := <-ch:
			if !errors.Is(res.err, context.Canceled) {
				t.Fatalf("cancelled watch: %v", res.err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("a cancelled watch still waits")
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("cancel took %v", d)
		}
	})

	t.Run("deadline", func(t *testing.T) {
		dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := c.Watcher("/never", nil).Next(dctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("expired watch: %v", err)
		}
	})
}

// After more than 1000 events, an old index is gone from etcd's history:
// the watch fails with 401 and says so.
func TestWatchHistoryCleared(t *testing.T) {
	m := etcdtest.Start(t, nil)
	c := newClient(t, client.Config{Endpoints: []string{m.ClientURL}})
	ctx := ctxT(t)
	first, err := c.Set(ctx, "/h/0", "0", nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 130 {
				if _, err := c.Set(ctx, fmt.Sprintf("/h/%d", g), fmt.Sprint(i), nil); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	w := c.Watcher("/h", &client.WatcherOptions{AfterIndex: first.Node.ModifiedIndex, Recursive: true})
	_, err = w.Next(ctx)
	var e *client.Error
	if !errors.As(err, &e) || !client.IsEventIndexCleared(err) || e.Code != 401 ||
		e.Message != "The event in requested index is outdated and cleared" ||
		!strings.HasPrefix(e.Cause, "the requested history has been cleared [") || e.Index <= first.Node.ModifiedIndex+1000 {
		t.Fatalf("watching a cleared index: %#v", err)
	}
	// A watch from a recent index still works.
	recent, err := c.Get(ctx, "/h/0", nil)
	if err != nil {
		t.Fatal(err)
	}
	w = c.Watcher("/h", &client.WatcherOptions{AfterIndex: recent.Index, Recursive: true})
	ch := next(ctx, w)
	if _, err := c.Set(ctx, "/h/x", "x", nil); err != nil {
		t.Fatal(err)
	}
	if r := wait(t, ch); r.Node.Key != "/h/x" {
		t.Fatalf("event %+v", r.Node)
	}
}

// deadURL is an address where nothing listens.
func deadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	l.Close()
	return u
}

// counter is a server that counts requests and answers with handler.
func counter(t *testing.T, handler http.Handler) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s, &n
}

func TestFailover(t *testing.T) {
	m := etcdtest.Start(t, nil)
	ctx := ctxT(t)
	target, _ := url.Parse(m.ClientURL)

	t.Run("dead first endpoint", func(t *testing.T) {
		c := newClient(t, client.Config{Endpoints: []string{deadURL(t), m.ClientURL}})
		if _, err := c.Set(ctx, "/f", "1", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Create(ctx, "/f-created", "1", 0); err != nil {
			t.Fatalf("a create whose connection was refused must move on: %v", err)
		}
		if r, err := c.CreateInOrder(ctx, "/fq", "1", 0); err != nil || r.Action != "create" {
			t.Fatalf("in-order create: %v", err)
		}
	})

	t.Run("5xx moves on and the good endpoint is remembered", func(t *testing.T) {
		sick, hits := counter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"errorCode":300,"message":"Raft Internal Error","cause":"etcdserver: request timed out","index":0}`, http.StatusInternalServerError)
		}))
		c := newClient(t, client.Config{Endpoints: []string{sick.URL, m.ClientURL}})
		for i := range 3 {
			if _, err := c.Get(ctx, "/f", nil); err != nil {
				t.Fatal(err)
			}
			if hits.Load() != 1 {
				t.Fatalf("call %d: the sick endpoint got %d requests, want 1", i, hits.Load())
			}
		}
	})

	t.Run("etcd errors are answers", func(t *testing.T) {
		proxy, hits := counter(t, httputil.NewSingleHostReverseProxy(target))
		c := newClient(t, client.Config{Endpoints: []string{proxy.URL, m.ClientURL}})
		_, err := c.Get(ctx, "/no-such-key", nil)
		etcdError(t, err, client.ErrorCodeKeyNotFound, "/no-such-key")
		_, err = c.Create(ctx, "/f", "x", 0)
		etcdError(t, err, client.ErrorCodeNodeExist, "/f")
		if hits.Load() != 2 {
			t.Fatalf("%d requests, want 2 (one per call)", hits.Load())
		}
	})

	t.Run("all endpoints down", func(t *testing.T) {
		d1, d2 := deadURL(t), deadURL(t)
		c := newClient(t, client.Config{Endpoints: []string{d1, d2}})
		_, err := c.Get(ctx, "/f", nil)
		var ce *client.ClusterError
		if !errors.As(err, &ce) || len(ce.Errors) != 5 {
			t.Fatalf("want a ClusterError of 1+2×2 attempts, got %v", err)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("ClusterError does not unwrap to ECONNREFUSED: %v", err)
		}
		want := "client: etcd cluster is unavailable or misconfigured; error #0: dial tcp " + strings.TrimPrefix(d1, "http://") + ": connect: connection refused\n; error #1: dial tcp " + strings.TrimPrefix(d2, "http://")
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("error %q\nwant prefix %q", err, want)
		}
		one := newClient(t, client.Config{Endpoints: []string{d1, d2}, Retries: -1})
		_, err = one.Get(ctx, "/f", nil)
		if !errors.As(err, &ce) || len(ce.Errors) != 1 {
			t.Fatalf("Retries -1: want one attempt, got %v", err)
		}
	})

	t.Run("header timeout", func(t *testing.T) {
		hang := hangingServer(t)
		c := newClient(t, client.Config{Endpoints: []string{hang, m.ClientURL}, HeaderTimeout: 200 * time.Millisecond})
		start := time.Now()
		if _, err := c.Get(ctx, "/f", nil); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
			t.Fatalf("took %v", d)
		}
		only := newClient(t, client.Config{Endpoints: []string{hang}, HeaderTimeout: 100 * time.Millisecond, Retries: -1})
		_, err := only.Get(ctx, "/f", nil)
		if want := "client: endpoint " + hang + " exceeded header timeout"; err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %v, want %q", err, want)
		}
		// A watch has no header timeout: its answer comes with an event.
		wc := newClient(t, client.Config{Endpoints: []string{m.ClientURL}, HeaderTimeout: 100 * time.Millisecond})
		ch := next(ctx, wc.Watcher("/late", nil))
		time.Sleep(400 * time.Millisecond)
		if _, err := wc.Set(ctx, "/late", "x", nil); err != nil {
			t.Fatal(err)
		}
		wait(t, ch)
	})

	// A create whose request may have been applied is not sent again.
	t.Run("create is sent once", func(t *testing.T) {
		var got atomic.Int64
		dropper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.ReadAll(r.Body)
			got.Add(1)
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		}))
		t.Cleanup(dropper.Close)
		c := newClient(t, client.Config{Endpoints: []string{dropper.URL, m.ClientURL}})
		_, err := c.Create(ctx, "/once", "x", 0)
		var ce *client.ClusterError
		if err == nil || errors.As(err, &ce) {
			t.Fatalf("a create that lost its answer: %v, want the transport error", err)
		}
		if _, err := c.Get(ctx, "/once", nil); !client.IsKeyNotFound(err) {
			t.Fatalf("the create went to another endpoint too: %v", err)
		}
		// The failed endpoint is no longer the first choice.
		if _, err := c.Create(ctx, "/once", "x", 0); err != nil {
			t.Fatalf("second create: %v", err)
		}
		if got.Load() != 1 {
			t.Fatalf("the dropping endpoint got %d requests", got.Load())
		}
		// A plain set may be sent again.
		c2 := newClient(t, client.Config{Endpoints: []string{dropper.URL, m.ClientURL}})
		if _, err := c2.Set(ctx, "/again", "x", nil); err != nil {
			t.Fatal(err)
		}
	})

	// Followers of etcd 2 redirected writes to the leader with a 307; the
	// request, body included, is sent again there.
	t.Run("307 redirect", func(t *testing.T) {
		redirector, _ := counter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := *target
			u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
			http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
		}))
		c := newClient(t, client.Config{Endpoints: []string{redirector.URL}})
		if r, err := c.Set(ctx, "/redir ected", "body", &client.SetOptions{TTL: time.Hour}); err != nil || r.Node.Value != "body" || r.Node.TTL != 3600 {
			t.Fatalf("PUT through a 307: %+v, %v", r, err)
		}
		if r, err := c.CreateInOrder(ctx, "/redirq", "posted", 0); err != nil || r.Node.Value != "posted" {
			t.Fatalf("POST through a 307: %+v, %v", r, err)
		}
		if r, err := c.Delete(ctx, "/redir ected", nil); err != nil || r.PrevNode.Value != "body" {
			t.Fatalf("DELETE through a 307: %+v, %v", r, err)
		}
		if err := c.UpdateMember(ctx, "ffff", []string{"http://127.0.0.1:1"}); !isMemberError(err, http.StatusNotFound) {
			t.Fatalf("members PUT through a 307: %v", err)
		}
	})
}

func isMemberError(err error, status int) bool {
	var me *client.MemberError
	return errors.As(err, &me) && me.StatusCode == status && me.Message != ""
}

// hangingServer accepts connections and never answers.
func hangingServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + l.Addr().String()
}

// A watch whose endpoint dies asks the next endpoint from the same index:
// the event written while it was cut off is not lost.
func TestWatchFailover(t *testing.T) {
	m := etcdtest.Start(t, nil)
	ctx := ctxT(t)
	target, _ := url.Parse(m.ClientURL)
	forward := httputil.NewSingleHostReverseProxy(target)
	polling := make(chan struct{}, 1)
	die := make(chan struct{})
	// dying forwards everything but watches; a watch it holds until die is
	// closed, then drops the connection, as a member that crashed.
	dying := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("wait") != "true" {
			forward.ServeHTTP(w, r)
			return
		}
		select {
		case polling <- struct{}{}:
		default:
		}
		<-die
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(dying.Close)
	c := newClient(t, client.Config{Endpoints: []string{dying.URL, m.ClientURL}})
	r, err := c.Set(ctx, "/wf", "before", nil)
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watcher("/wf", &client.WatcherOptions{AfterIndex: r.Node.ModifiedIndex})
	ch := next(ctx, w)
	<-polling
	missed, err := c.Set(ctx, "/wf", "while cut off", nil)
	if err != nil {
		t.Fatal(err)
	}
	close(die)
	ev := wait(t, ch)
	if ev.Node.Value != "while cut off" || ev.Node.ModifiedIndex != missed.Node.ModifiedIndex {
		t.Fatalf("event %+v, want the one written while the watch was cut off", ev.Node)
	}
}

// A three-member cluster: the members API, Sync, Health, Version, and a
// watch that outlives the leader it was watching through.
func TestCluster(t *testing.T) {
	ms := etcdtest.StartCluster(t, 3, nil)
	ctx := ctxT(t)
	var eps []string
	for _, m := range ms {
		eps = append(eps, m.ClientURL)
	}
	c := newClient(t, client.Config{Endpoints: eps})

	t.Run("members", func(t *testing.T) {
		list, err := c.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 3 {
			t.Fatalf("members: %+v", list)
		}
		byName := map[string]client.Member{}
		for _, mb := range list {
			byName[mb.Name] = mb
		}
		for _, m := range ms {
			mb, ok := byName[m.Name]
			if !ok || mb.ID == "" || !slices.Equal(mb.PeerURLs, []string{m.PeerURL}) || !slices.Equal(mb.ClientURLs, []string{m.ClientURL}) {
				t.Fatalf("member %s: %+v", m.Name, mb)
			}
		}
		leader, err := c.Leader(ctx)
		if err != nil || byName[leader.Name].ID != leader.ID {
			t.Fatalf("leader %+v, %v", leader, err)
		}

		if _, err := c.AddMember(ctx, "http://127.0.0.1:1/path"); err == nil || err.Error() != "URL must not contain a path: http://127.0.0.1:1/path" {
			t.Fatalf("bad peer URL: %v", err)
		}
		if _, err := c.AddMember(ctx, "ftp://127.0.0.1:1"); err == nil || err.Error() != "URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:1" {
			t.Fatalf("bad peer URL: %v", err)
		}
		// etcd refuses changes until the cluster has been healthy for 5s.
		deadline := time.Now().Add(15 * time.Second)
		for {
			_, err := c.AddMember(ctx, ms[0].PeerURL)
			var se *client.ServerError
			if !errors.As(err, &se) || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if _, err := c.AddMember(ctx, ms[0].PeerURL); !isMemberError(err, http.StatusConflict) || err.Error() != "membership: peerURL exists" {
			t.Fatalf("adding an existing peer URL: %v", err)
		}
		newPeer := deadURL(t)
		added, err := c.AddMember(ctx, newPeer)
		if err != nil {
			t.Fatal(err)
		}
		if added.ID == "" || added.Name != "" || !slices.Equal(added.PeerURLs, []string{newPeer}) {
			t.Fatalf("added %+v", added)
		}
		list, err = c.Members(ctx)
		if err != nil || len(list) != 4 {
			t.Fatalf("after add: %+v, %v", list, err)
		}
		other := deadURL(t)
		if err := c.UpdateMember(ctx, added.ID, []string{other}); err != nil {
			t.Fatal(err)
		}
		list, _ = c.Members(ctx)
		if i := slices.IndexFunc(list, func(mb client.Member) bool { return mb.ID == added.ID }); i < 0 || !slices.Equal(list[i].PeerURLs, []string{other}) {
			t.Fatalf("after update: %+v", list)
		}
		if err := c.UpdateMember(ctx, "1234", []string{deadURL(t)}); !isMemberError(err, http.StatusNotFound) || err.Error() != "No such member: 1234" {
			t.Fatalf("updating an unknown member: %v", err)
		}
		if err := c.RemoveMember(ctx, added.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.RemoveMember(ctx, added.ID); err != nil {
			t.Fatalf("removing a removed member: %v", err)
		}
		if err := c.RemoveMember(ctx, "1234"); !isMemberError(err, http.StatusNotFound) {
			t.Fatalf("removing an unknown member: %v", err)
		}
		if list, err = c.Members(ctx); err != nil || len(list) != 3 {
			t.Fatalf("after remove: %+v, %v", list, err)
		}
	})

	t.Run("sync", func(t *testing.T) {
		one := newClient(t, client.Config{Endpoints: []string{ms[1].ClientURL}})
		if err := one.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got := one.Endpoints()
		slices.Sort(got)
		want := slices.Clone(eps)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("after Sync: %q, want %q", got, want)
		}
	})

	t.Run("health and version", func(t *testing.T) {
		for _, ep := range eps {
			if err := c.Health(ctx, ep); err != nil {
				t.Fatalf("health of %s: %v", ep, err)
			}
			server, cluster, err := c.Version(ctx, ep)
			if err != nil || !strings.HasPrefix(server, "3.") || !strings.HasPrefix(cluster, "3.") {
				t.Fatalf("version of %s: %q %q %v", ep, server, cluster, err)
			}
		}
		dead := deadURL(t)
		err := c.Health(ctx, dead)
		if err == nil || errors.Is(err, client.ErrUnhealthy) || !strings.HasPrefix(err.Error(), `Get "`+dead+`/health": dial tcp`) {
			t.Fatalf("health of a dead member: %v", err)
		}
		sick, _ := counter(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, `{"health":"false"}`, http.StatusServiceUnavailable)
		}))
		if err := c.Health(ctx, sick.URL); !errors.Is(err, client.ErrUnhealthy) {
			t.Fatalf("health of a sick member: %v", err)
		}
	})

	t.Run("watch outlives its leader", func(t *testing.T) {
		leader, err := c.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var lm *etcdtest.Member
		order := []string{}
		for _, m := range ms {
			if m.Name == leader.Name {
				lm = m
				order = append([]string{m.ClientURL}, order...)
			} else {
				order = append(order, m.ClientURL)
			}
		}
		wc := newClient(t, client.Config{Endpoints: order, HeaderTimeout: 2 * time.Second, Retries: 20})
		start, err := wc.Set(ctx, "/lw", "start", nil)
		if err != nil {
			t.Fatal(err)
		}
		w := wc.Watcher("/lw", &client.WatcherOptions{AfterIndex: start.Node.ModifiedIndex})
		ch := next(ctx, w)
		quiet(t, ch)
		lm.Kill()
		if _, err := wc.Set(ctx, "/lw", "after the leader died", nil); err != nil {
			t.Fatalf("writing after the leader died: %v", err)
		}
		if ev := wait(t, ch); ev.Node.Value != "after the leader died" {
			t.Fatalf("event %+v", ev.Node)
		}
		if got, err := wc.Leader(ctx); err != nil || got.Name == leader.Name {
			t.Fatalf("new leader %+v, %v", got, err)
		}
	})
}

func TestTLS(t *testing.T) {
	tl := etcdtest.NewTLS(t, true)
	m := etcdtest.Start(t, &etcdtest.Options{TLS: tl})
	ctx := ctxT(t)
	c := newClient(t, client.Config{Endpoints: []string{m.ClientURL}, TLS: tl.Client})
	if _, err := c.Set(ctx, "/tls", "secret", nil); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Get(ctx, "/tls", nil); err != nil || r.Node.Value != "secret" {
		t.Fatalf("get over TLS: %+v, %v", r, err)
	}
	if err := c.Health(ctx, m.ClientURL); err != nil {
		t.Fatal(err)
	}
	anon := tl.Client.Clone()
	anon.Certificates = nil
	noCert := newClient(t, client.Config{Endpoints: []string{m.ClientURL}, TLS: anon, Retries: -1})
	if _, err := noCert.Get(ctx, "/tls", nil); err == nil {
		t.Fatal("a client without certificate was served")
	}
	untrusted := newClient(t, client.Config{Endpoints: []string{m.ClientURL}, Retries: -1})
	if _, err := untrusted.Get(ctx, "/tls", nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a server with an unknown CA was trusted: %v", err)
	}
}
