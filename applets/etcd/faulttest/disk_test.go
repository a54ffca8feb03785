package faulttest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestFullDisk runs a cluster whose members' data dirs are small tmpfs
// mounts and writes until every disk is full. Each refused write must be an
// etcd error (or no answer at all), no member may crash, reads must keep
// working, and once the disks have room again the cluster takes writes and
// every acknowledged write is there — also after a kill -9 of the whole
// cluster and a restart from the data dirs.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs per member")
	}
	dir := t.TempDir()
	const size = 3
	for i := 0; i < size; i++ {
		mnt := filepath.Join(dir, memberName(i))
		if err := os.Mkdir(mnt, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=6m"); err != nil {
			t.Fatalf("mounting a tmpfs at %s: %v", mnt, err)
		}
		t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	}
	c := newCluster(t, Options{Size: size, Dir: dir})
	cl := NewClient(3 * time.Second)
	leaderOf(t, c, c.Members, 15*time.Second)

	value := strings.Repeat("v", 16<<10)
	acked := map[string]bool{}
	refused, consecutive := 0, 0
	var firstRefusal error
	for n := 0; n < 2000 && consecutive < 10; n++ {
		key := fmt.Sprintf("/full/%d", n)
		m := c.Members[n%size]
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := cl.Set(ctx, m.ClientURL, key, value)
		cancel()
		if err == nil {
			acked[key] = true
			consecutive = 0
			continue
		}
		var ee *EtcdError
		if !errors.As(err, &ee) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("write %s on %s: not an etcd error: %v", key, m.Name, err)
		}
		if ee != nil && ee.ErrorCode < 300 {
			t.Fatalf("write %s on %s: a full disk answered as a client error: %v", key, m.Name, err)
		}
		if firstRefusal == nil {
			firstRefusal = err
		}
		refused++
		consecutive++
	}
	if consecutive < 10 {
		t.Fatalf("the disks never filled up: %d writes acknowledged, %d refused", len(acked), refused)
	}
	t.Logf("%d writes acknowledged, then refused (first: %v)", len(acked), firstRefusal)
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the disks filled up")
	}

	// Reads still work while the disks are full: every member answers (a
	// member that acknowledged a write it cannot store yet refuses with
	// an etcd error rather than a stale value: read-your-writes), and one
	// that is caught up gives the value.
	var someKey string
	for key := range acked {
		someKey = key
		break
	}
	slow := NewClient(10 * time.Second)
	served := 0
	for _, m := range c.Members {
		r, err := slow.Get(timeout(t, 10*time.Second), m.ClientURL, someKey, false)
		var ee *EtcdError
		switch {
		case err == nil && r.Node.Value == value:
			served++
		case err == nil:
			t.Fatalf("reading %s on %s with full disks: a wrong value", someKey, m.Name)
		case !errors.As(err, &ee):
			t.Fatalf("reading %s on %s with full disks: not an etcd error: %v", someKey, m.Name, err)
		}
	}
	if served == 0 {
		t.Fatalf("no member served a read of %s with full disks", someKey)
	}

	for i := 0; i < size; i++ {
		mnt := filepath.Join(dir, memberName(i))
		if err := unix.Mount("tmpfs", mnt, "tmpfs", unix.MS_REMOUNT, "size=256m"); err != nil {
			t.Fatalf("growing the tmpfs at %s: %v", mnt, err)
		}
	}
	// The cluster takes writes again.
	ctx := timeout(t, 60*time.Second)
	for n := 0; ; n++ {
		m := c.Members[n%size]
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := cl.Set(wctx, m.ClientURL, "/full/after", "ok")
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no write succeeded within 60s after the disks got room: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkAcked(t, c, cl, acked, value)

	for _, m := range c.Members {
		m.Kill()
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, c, c.Members, 20*time.Second)
	checkAcked(t, c, cl, acked, value)
}

// checkAcked reads every acknowledged key with quorum=true, spread over
// the members.
func checkAcked(t *testing.T, c *Cluster, cl *Client, acked map[string]bool, value string) {
	t.Helper()
	ctx := timeout(t, 60*time.Second)
	i, lost := 0, 0
	for key := range acked {
		m := c.Members[i%len(c.Members)]
		i++
		v, found, err := quorumGet(ctx, cl, m, key)
		if err != nil {
			t.Fatal(err)
		}
		if !found || v != value {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("BUG: %d of %d acknowledged writes lost", lost, len(acked))
	}
}
