package server

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	etcdclient "go.etcd.io/etcd/client/v2"
)

// TestRealEtcdClient drives corebox with etcd's own v2 Go client
// (go.etcd.io/etcd/client/v2) through every operation it offers.
func TestRealEtcdClient(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.leader()
	var endpoints []string
	for i := range c.members {
		endpoints = append(endpoints, c.url(i))
	}
	cli, err := etcdclient.New(etcdclient.Config{Endpoints: endpoints, HeaderTimeoutPerRequest: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cli.Sync(ctx); err != nil {
		t.Fatalf("Sync (reads /v2/members): %v", err)
	}
	kapi := etcdclient.NewKeysAPI(cli)
	code := func(err error) int {
		var e etcdclient.Error
		if errors.As(err, &e) {
			return e.Code
		}
		return -1
	}

	r, err := kapi.Set(ctx, "/dir/a", "1", nil)
	if err != nil || r.Action != "set" || r.Node.Value != "1" || r.Index == 0 {
		t.Fatalf("Set: %+v %v", r, err)
	}
	first := r.Node.ModifiedIndex
	if r, err = kapi.Get(ctx, "/dir/a", &etcdclient.GetOptions{Quorum: true}); err != nil || r.Node.Value != "1" {
		t.Fatalf("Get quorum: %+v %v", r, err)
	}
	if _, err = kapi.Create(ctx, "/dir/a", "2"); code(err) != etcdclient.ErrorCodeNodeExist {
		t.Fatalf("Create of an existing key: %v", err)
	}
	if r, err = kapi.Create(ctx, "/dir/b", "2"); err != nil || r.Action != "create" {
		t.Fatalf("Create: %+v %v", r, err)
	}
	if r, err = kapi.Update(ctx, "/dir/b", "3"); err != nil || r.Action != "update" || r.PrevNode.Value != "2" {
		t.Fatalf("Update: %+v %v", r, err)
	}
	if _, err = kapi.Update(ctx, "/dir/none", "3"); code(err) != etcdclient.ErrorCodeKeyNotFound {
		t.Fatalf("Update of a missing key: %v", err)
	}
	if _, err = kapi.Set(ctx, "/dir/a", "9", &etcdclient.SetOptions{PrevValue: "wrong"}); code(err) != etcdclient.ErrorCodeTestFailed {
		t.Fatalf("CAS with a wrong value: %v", err)
	}
	if r, err = kapi.Set(ctx, "/dir/a", "9", &etcdclient.SetOptions{PrevValue: "1", PrevIndex: first}); err != nil || r.Action != "compareAndSwap" {
		t.Fatalf("CAS: %+v %v", r, err)
	}
	if r, err = kapi.Set(ctx, "/ttl", "t", &etcdclient.SetOptions{TTL: 30 * time.Second}); err != nil || r.Node.TTL == 0 || r.Node.Expiration == nil {
		t.Fatalf("Set with TTL: %+v %v", r, err)
	}
	if r, err = kapi.Set(ctx, "/ttl", "", &etcdclient.SetOptions{TTL: 60 * time.Second, Refresh: true, PrevExist: etcdclient.PrevExist}); err != nil || r.Node.Value != "t" || r.Node.TTL <= 30 {
		t.Fatalf("refresh: %+v %v", r, err)
	}
	if r, err = kapi.Set(ctx, "/nv", "v", &etcdclient.SetOptions{NoValueOnSuccess: true}); err != nil || r.Node != nil {
		t.Fatalf("NoValueOnSuccess: %+v %v", r, err)
	}
	if r, err = kapi.Set(ctx, "/emptydir", "", &etcdclient.SetOptions{Dir: true}); err != nil || !r.Node.Dir {
		t.Fatalf("mkdir: %+v %v", r, err)
	}
	var queued []string
	for i := 0; i < 3; i++ {
		r, err := kapi.CreateInOrder(ctx, "/queue", fmt.Sprint(i), &etcdclient.CreateInOrderOptions{TTL: time.Minute})
		if err != nil {
			t.Fatalf("CreateInOrder: %v", err)
		}
		queued = append(queued, r.Node.Key)
	}
	if !sort.StringsAreSorted(queued) {
		t.Fatalf("in-order keys not in order: %v", queued)
	}
	if r, err = kapi.Get(ctx, "/", &etcdclient.GetOptions{Recursive: true, Sort: true}); err != nil || len(r.Node.Nodes) < 4 {
		t.Fatalf("recursive sorted Get of /: %+v %v", r, err)
	}
	if _, err = kapi.Delete(ctx, "/dir", nil); code(err) != etcdclient.ErrorCodeNotFile {
		t.Fatalf("Delete of a dir without dir/recursive: %v", err)
	}
	if _, err = kapi.Delete(ctx, "/dir/b", &etcdclient.DeleteOptions{PrevValue: "nope"}); code(err) != etcdclient.ErrorCodeTestFailed {
		t.Fatalf("CAD with a wrong value: %v", err)
	}
	if r, err = kapi.Delete(ctx, "/dir/b", &etcdclient.DeleteOptions{PrevValue: "3"}); err != nil || r.Action != "compareAndDelete" {
		t.Fatalf("CAD: %+v %v", r, err)
	}
	if r, err = kapi.Delete(ctx, "/dir", &etcdclient.DeleteOptions{Recursive: true, Dir: true}); err != nil || r.Action != "delete" {
		t.Fatalf("recursive Delete: %+v %v", r, err)
	}

	// Watch: a live event from a write on a follower.
	w := kapi.Watcher("/watched", &etcdclient.WatcherOptions{Recursive: true})
	events := make(chan *etcdclient.Response, 1)
	go func() {
		r, err := w.Next(ctx)
		if err == nil {
			events <- r
		}
	}()
	time.Sleep(300 * time.Millisecond)
	follower := etcdclient.NewKeysAPI(mustClient(t, c.url((lead+1)%3)))
	if _, err := follower.Set(ctx, "/watched/x", "live", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-events:
		if r.Action != "set" || r.Node.Key != "/watched/x" || r.Node.Value != "live" {
			t.Fatalf("watch event %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}

	// Members API.
	mapi := etcdclient.NewMembersAPI(cli)
	ms, err := mapi.List(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("members: %+v %v", ms, err)
	}
	for _, m := range ms {
		if !strings.HasPrefix(m.Name, "m") || len(m.ClientURLs) != 1 || len(m.PeerURLs) != 1 {
			t.Fatalf("member %+v", m)
		}
	}
	ld, err := mapi.Leader(ctx)
	if err != nil || ld.ID != c.members[lead].ID() {
		t.Fatalf("leader: %+v %v (want %s)", ld, err, c.members[lead].ID())
	}
	// Add a member that never starts, then remove it: the cluster keeps a
	// quorum of 3 out of 4 meanwhile.
	p := freePorts(t, 1)
	added, err := mapi.Add(ctx, fmt.Sprintf("http://127.0.0.1:%d", p[0]))
	if err != nil {
		t.Fatalf("member add: %v", err)
	}
	waitMembers := func(what string, n int) {
		t.Helper()
		// Another member learns a configuration change with the leader's
		// next append: poll.
		deadline := time.Now().Add(5 * time.Second)
		for {
			ms, _ := mapi.List(ctx)
			if len(ms) == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d members, want %d", what, len(ms), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitMembers("after add", 4)
	if _, err := mapi.Add(ctx, fmt.Sprintf("http://127.0.0.1:%d", p[0])); err == nil {
		t.Fatal("adding the same peer URL twice was accepted")
	}
	if err := mapi.Update(ctx, added.ID, []string{fmt.Sprintf("http://127.0.0.1:%d", p[0])}); err != nil {
		t.Fatalf("member update: %v", err)
	}
	if err := mapi.Remove(ctx, added.ID); err != nil {
		t.Fatalf("member remove: %v", err)
	}
	waitMembers("after remove", 3)
	if err := mapi.Remove(ctx, "ffffffff"); err == nil {
		t.Fatal("removing an unknown member succeeded")
	}
}

func mustClient(t *testing.T, endpoint string) etcdclient.Client {
	t.Helper()
	c, err := etcdclient.New(etcdclient.Config{Endpoints: []string{endpoint}, HeaderTimeoutPerRequest: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
