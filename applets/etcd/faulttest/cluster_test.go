package faulttest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const election = 500 * time.Millisecond // the clusters' --election-timeout

func timeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func leaderOf(t testing.TB, c *Cluster, among []*Member, within time.Duration) *Member {
	t.Helper()
	l, err := c.Leader(timeout(t, within), among)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func without(ms []*Member, drop ...*Member) []*Member {
	var out []*Member
	for _, m := range ms {
		if !slices.Contains(drop, m) {
			out = append(out, m)
		}
	}
	return out
}

func set(t testing.TB, cl *Client, m *Member, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cl.Set(ctx, m.ClientURL, key, value); err != nil {
		t.Fatalf("set %s=%s on %s: %v", key, value, m.Name, err)
	}
}

// quorumGet reads key on m with quorum=true, retrying raft trouble (300,
// 301) and lost answers until ctx ends. found is false for a missing key.
func quorumGet(ctx context.Context, cl *Client, m *Member, key string) (value string, found bool, err error) {
	for {
		r, err := cl.Get(ctx, m.ClientURL, key, true)
		switch {
		case err == nil:
			return r.Node.Value, true, nil
		case Code(err) == 100:
			return "", false, nil
		case Code(err) != 0 && Code(err) < 300:
			return "", false, err
		}
		select {
		case <-ctx.Done():
			return "", false, fmt.Errorf("quorum read of %s on %s: %w (last error: %v)", key, m.Name, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// expectValue waits until a quorum read of key on m gives value.
func expectValue(t testing.TB, cl *Client, m *Member, key, value string, within time.Duration) {
	t.Helper()
	ctx := timeout(t, within)
	for {
		v, found, err := quorumGet(ctx, cl, m, key)
		if err != nil {
			t.Fatalf("%s on %s: %v", key, m.Name, err)
		}
		if found && v == value {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s on %s is %q (found %v), want %q", key, m.Name, v, found, value)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func sizes(t *testing.T, f func(t *testing.T, size int)) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d-members", n), func(t *testing.T) { f(t, n) })
	}
}

// TestLeaderKill kills the leader with SIGKILL: the others elect a new
// one within a few election timeouts, answer quorum reads at once, take
// writes through every member, and the old leader restarts and catches up.
func TestLeaderKill(t *testing.T) { sizes(t, testLeaderKill) }

func testLeaderKill(t *testing.T, size int) {
	c := newCluster(t, Options{Size: size})
	cl := NewClient(3 * time.Second)
	leader := leaderOf(t, c, c.Members, 15*time.Second)
	set(t, cl, leader, "/before", "1")
	for _, m := range c.Members {
		expectValue(t, cl, m, "/before", "1", 5*time.Second)
	}

	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	rest := without(c.Members, leader)
	next := leaderOf(t, c, rest, 10*time.Second)
	took := time.Since(killed)
	t.Logf("%s led; %s leads %v after the kill", leader.Name, next.Name, took.Round(time.Millisecond))
	if took > 6*election {
		t.Errorf("a new leader took %v (more than 6 election timeouts of %v)", took, election)
	}

	// The new leader can serve linearizable reads without waiting for a
	// client's write: its read index is the commit index, which covers
	// its own no-op and barrier entries.
	var wg sync.WaitGroup
	for _, m := range rest {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 4*election)
			defer cancel()
			start := time.Now()
			r, err := cl.Get(ctx, m.ClientURL, "/before", true)
			if err != nil || r.Node.Value != "1" {
				t.Errorf("BUG: quorum read on %s right after the election (no write since): %v after %v, want \"1\" within %v",
					m.Name, err, time.Since(start).Round(time.Millisecond), 4*election)
			}
		}()
	}
	wg.Wait()

	for _, m := range rest {
		for k := 0; k < 10; k++ {
			set(t, cl, m, fmt.Sprintf("/after/%s/%d", m.Name, k), m.Name)
		}
	}
	for _, m := range rest {
		for _, w := range rest {
			expectValue(t, cl, m, fmt.Sprintf("/after/%s/9", w.Name), w.Name, 5*time.Second)
		}
	}

	if err := leader.Start(); err != nil {
		t.Fatal(err)
	}
	for _, w := range rest {
		expectValue(t, cl, leader, fmt.Sprintf("/after/%s/9", w.Name), w.Name, 15*time.Second)
	}
	expectValue(t, cl, leader, "/before", "1", 5*time.Second)
}

// TestFollowerRestart kills a follower with SIGKILL, writes while it is
// down, restarts it from its data dir and checks it catches up.
func TestFollowerRestart(t *testing.T) { sizes(t, testFollowerRestart) }

func testFollowerRestart(t *testing.T, size int) {
	c := newCluster(t, Options{Size: size})
	cl := NewClient(3 * time.Second)
	leader := leaderOf(t, c, c.Members, 15*time.Second)
	set(t, cl, leader, "/before", "1")
	follower := without(c.Members, leader)[0]
	expectValue(t, cl, follower, "/before", "1", 5*time.Second)
	if err := follower.Kill(); err != nil {
		t.Fatal(err)
	}
	up := without(c.Members, follower)
	const n = 100
	for k := 0; k < n; k++ {
		set(t, cl, up[k%len(up)], fmt.Sprintf("/down/%d", k), fmt.Sprint(k))
	}
	restarted := time.Now()
	if err := follower.Start(); err != nil {
		t.Fatal(err)
	}
	expectValue(t, cl, follower, fmt.Sprintf("/down/%d", n-1), fmt.Sprint(n-1), 15*time.Second)
	t.Logf("%s caught up %d writes %v after its restart", follower.Name, n, time.Since(restarted).Round(time.Millisecond))
	ctx := timeout(t, 10*time.Second)
	for k := 0; k < n; k++ {
		// A local read: what the follower itself applied.
		r, err := cl.Get(ctx, follower.ClientURL, fmt.Sprintf("/down/%d", k), false)
		if err != nil || r.Node.Value != fmt.Sprint(k) {
			t.Fatalf("/down/%d on %s after catching up: %v %v", k, follower.Name, r, err)
		}
	}
}

// TestWholeClusterRestart writes from several goroutines through every
// member, kills every member with SIGKILL while writes are in flight,
// restarts them all and checks that every acknowledged write is there.
func TestWholeClusterRestart(t *testing.T) { sizes(t, testWholeClusterRestart) }

func testWholeClusterRestart(t *testing.T, size int) {
	c := newCluster(t, Options{Size: size})
	cl := NewClient(2 * time.Second)
	leaderOf(t, c, c.Members, 15*time.Second)

	const writers, enough = 8, 300
	var (
		mu    sync.Mutex
		acked = map[string]string{}
		count atomic.Int64
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				key, value := fmt.Sprintf("/durable/w%d/%d", g, n), fmt.Sprintf("v%d-%d", g, n)
				m := c.Members[rng.IntN(len(c.Members))]
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := cl.Set(ctx, m.ClientURL, key, value)
				cancel()
				if err == nil {
					mu.Lock()
					acked[key] = value
					mu.Unlock()
					count.Add(1)
				}
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for count.Load() < enough && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Kill them all at once, with writes in flight.
	var kill sync.WaitGroup
	for _, m := range c.Members {
		kill.Add(1)
		go func() {
			defer kill.Done()
			m.Kill()
		}()
	}
	kill.Wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < enough {
		t.Fatalf("only %d writes acknowledged in 30s", len(acked))
	}
	t.Logf("%d writes acknowledged before the kill", len(acked))

	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, c, c.Members, 20*time.Second)
	ctx := timeout(t, 60*time.Second)
	i, lost := 0, 0
	for key, want := range acked {
		m := c.Members[i%len(c.Members)]
		i++
		v, found, err := quorumGet(ctx, cl, m, key)
		if err != nil {
			t.Fatal(err)
		}
		if !found || v != want {
			lost++
			t.Errorf("BUG: acknowledged write %s=%s is %q (found %v) on %s after the restart", key, want, v, found, m.Name)
		}
	}
	if lost > 0 {
		t.Errorf("BUG: %d of %d acknowledged writes lost", lost, len(acked))
	}
}

// TestMembership adds a member at runtime (POST /v2/members through a
// follower, then the member starts with --initial-cluster-state existing),
// checks it serves quorum reads and takes writes, then removes a follower
// and the leader (DELETE /v2/members/ID) and checks the cluster keeps
// working after each.
func TestMembership(t *testing.T) {
	c := newCluster(t, Options{Size: 3})
	cl := NewClient(5 * time.Second)
	leader := leaderOf(t, c, c.Members, 15*time.Second)
	follower := without(c.Members, leader)[0]

	// Through a follower, as soon as the cluster has a leader: the
	// follower forwards the change to the leader.
	d, err := c.NewMember("d")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cl.AddMember(timeout(t, 15*time.Second), follower.ClientURL, d.PeerURL)
	if err != nil {
		t.Errorf("BUG: adding d through %s as soon as %s leads: %v", follower.Name, leader.Name, err)
		waitMembers(t, cl, follower, without(c.Members, d))
		if info, err = cl.AddMember(timeout(t, 15*time.Second), follower.ClientURL, d.PeerURL); err != nil {
			t.Fatalf("adding d through %s: %v", follower.Name, err)
		}
		t.Logf("adding d through %s worked once it knew every member's client URLs", follower.Name)
	}
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	set(t, cl, leader, "/m/before", "1")
	expectValue(t, cl, d, "/m/before", "1", 15*time.Second)
	if id, err := c.ID(timeout(t, time.Second), d); err != nil || id != info.ID {
		t.Errorf("d's ID is %q (%v); POST /v2/members said %q", id, err, info.ID)
	}
	waitMembers(t, cl, leader, c.Members)
	set(t, cl, d, "/m/via-d", "d")
	for _, m := range c.Members {
		expectValue(t, cl, m, "/m/via-d", "d", 5*time.Second)
	}

	// Remove a follower that is not the new member, through the new member.
	victim := without(c.Members, leader, d)[0]
	id, err := c.ID(timeout(t, time.Second), victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.RemoveMember(timeout(t, 15*time.Second), d.ClientURL, id); err != nil {
		t.Fatalf("removing %s through d: %v", victim.Name, err)
	}
	victim.Kill()
	c.Forget(victim)
	waitMembers(t, cl, leader, c.Members)
	checkWorks(t, c, cl, "after-follower-removal")

	// Remove the leader, through a follower.
	leader = leaderOf(t, c, c.Members, 10*time.Second)
	id, err = c.ID(timeout(t, time.Second), leader)
	if err != nil {
		t.Fatal(err)
	}
	via := without(c.Members, leader)[0]
	if err := cl.RemoveMember(timeout(t, 15*time.Second), via.ClientURL, id); err != nil {
		t.Errorf("BUG: removing the leader %s through %s: %v", leader.Name, via.Name, err)
	}
	leader.Kill()
	c.Forget(leader)
	leaderOf(t, c, c.Members, 10*time.Second)
	waitMembers(t, cl, c.Members[0], c.Members)
	checkWorks(t, c, cl, "after-leader-removal")
}

// waitMembers waits until /v2/members on m lists exactly want, each with
// its name and client URL published.
func waitMembers(t *testing.T, cl *Client, m *Member, want []*Member) {
	t.Helper()
	ctx := timeout(t, 10*time.Second)
	var got []MemberInfo
	var err error
	for {
		got, err = cl.Members(ctx, m.ClientURL)
		if err == nil && len(got) == len(want) {
			ok := true
			for _, w := range want {
				ok = ok && slices.ContainsFunc(got, func(g MemberInfo) bool {
					return g.Name == w.Name && slices.Equal(g.ClientURLs, []string{w.ClientURL}) && slices.Equal(g.PeerURLs, []string{w.PeerURL})
				})
			}
			if ok {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("members on %s: %+v (%v), want %s", m.Name, got, err, names(want))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkWorks writes through every member and reads every write back with
// quorum reads on every member.
func checkWorks(t *testing.T, c *Cluster, cl *Client, tag string) {
	t.Helper()
	for _, m := range c.Members {
		set(t, cl, m, "/m/"+tag+"/"+m.Name, m.Name)
	}
	for _, m := range c.Members {
		for _, w := range c.Members {
			expectValue(t, cl, m, "/m/"+tag+"/"+w.Name, w.Name, 5*time.Second)
		}
	}
}

// TestSnapshotCatchUp makes two followers of five lag: one killed with
// SIGKILL, one cut off by a partition. It writes enough for the leader to
// snapshot and compact its log past both, then heals the partition and
// restarts the killed member, and checks that each catches up by
// installing the leader's snapshot, and that the healed one answers a
// quorum read as soon as it has installed it.
func TestSnapshotCatchUp(t *testing.T) {
	const snapshotCount = 100 // also the trailing log entries the leader keeps
	c := newCluster(t, Options{Size: 5, SnapshotCount: snapshotCount, Proxy: true})
	cl := NewClient(3 * time.Second)
	leader := leaderOf(t, c, c.Members, 15*time.Second)
	set(t, cl, leader, "/s/before", "1")
	followers := without(c.Members, leader)
	stopped, cut := followers[0], followers[1]
	var lastIndex uint64
	for _, m := range []*Member{stopped, cut} {
		expectValue(t, cl, m, "/s/before", "1", 5*time.Second)
		r, err := cl.Get(timeout(t, time.Second), m.ClientURL, "/s/before", false)
		if err != nil {
			t.Fatal(err)
		}
		lastIndex = max(lastIndex, r.RaftIndex)
	}
	if err := stopped.Kill(); err != nil {
		t.Fatal(err)
	}
	var alone, rest []int
	for i, m := range c.Members {
		if m == cut {
			alone = append(alone, i)
		} else {
			rest = append(rest, i)
		}
	}
	c.Proxy.Partition(Refuse, alone, rest)

	const n = 500
	up := without(c.Members, stopped, cut)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := g; k < n; k += 10 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := cl.Set(ctx, up[k%len(up)].ClientURL, fmt.Sprintf("/s/%d", k), fmt.Sprint(k)); err != nil {
					errs <- err
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writing while %s is down and %s cut off: %v", stopped.Name, cut.Name, err)
	}

	// The leader snapshots on its own schedule (raft checks every 10–20 s);
	// wait until its snapshot leaves both followers' last entries outside
	// the entries it keeps.
	snap := waitSnapshot(t, leader, lastIndex+snapshotCount, 45*time.Second)
	t.Logf("%s and %s stopped at raft index %d or below; leader %s snapshotted at %d", stopped.Name, cut.Name, lastIndex, leader.Name, snap.Index)

	healed := time.Now()
	c.Proxy.Heal()
	installed := waitSnapshot(t, cut, snap.Index, 30*time.Second)
	t.Logf("%s installed snapshot %s %v after the heal", cut.Name, installed.ID, time.Since(healed).Round(time.Millisecond))
	// No write since the snapshot: the member has everything it needs.
	ctx, cancel := context.WithTimeout(context.Background(), 4*election)
	start := time.Now()
	r, err := cl.Get(ctx, cut.ClientURL, fmt.Sprintf("/s/%d", n-1), true)
	cancel()
	if err != nil || r.Node.Value != fmt.Sprint(n-1) {
		t.Errorf("BUG: quorum read on %s right after it installed a snapshot (no write since): %v after %v, want %q within %v",
			cut.Name, err, time.Since(start).Round(time.Millisecond), fmt.Sprint(n-1), 4*election)
	}

	restarted := time.Now()
	if err := stopped.Start(); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, stopped, snap.Index, 30*time.Second)
	t.Logf("%s installed the snapshot %v after its restart", stopped.Name, time.Since(restarted).Round(time.Millisecond))
	for _, m := range []*Member{cut, stopped} {
		expectValue(t, cl, m, fmt.Sprintf("/s/%d", n-1), fmt.Sprint(n-1), 20*time.Second)
		ctx := timeout(t, 10*time.Second)
		for k := 0; k < n; k++ {
			r, err := cl.Get(ctx, m.ClientURL, fmt.Sprintf("/s/%d", k), false)
			if err != nil || r.Node.Value != fmt.Sprint(k) {
				t.Fatalf("/s/%d on %s after catching up: %v %v", k, m.Name, r, err)
			}
		}
	}
}

// waitSnapshot waits until m's data dir holds a snapshot at index min or
// later, and returns the latest.
func waitSnapshot(t *testing.T, m *Member, min uint64, within time.Duration) Snapshot {
	t.Helper()
	deadline := time.Now().Add(within)
	var latest Snapshot
	for {
		snaps, err := Snapshots(m.DataDir)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range snaps {
			if s.Index > latest.Index {
				latest = s
			}
		}
		if latest.Index >= min {
			return latest
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no snapshot at index %d or later after %v (latest: %+v)", m.Name, min, within, latest)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPartitionedLeader cuts the leader off from the others through the
// proxy, once stalling its connections and once refusing them: the others
// elect a new leader and take writes; the old leader acknowledges no
// write and answers no quorum read while it is cut off; healed, it follows
// the new leader and has its writes.
func TestPartitionedLeader(t *testing.T) {
	for _, mode := range []Mode{Stall, Refuse} {
		t.Run(mode.String(), func(t *testing.T) {
			c := newCluster(t, Options{Size: 3, Proxy: true})
			cl := NewClient(3 * time.Second)
			old := leaderOf(t, c, c.Members, 15*time.Second)
			set(t, cl, old, "/p/before", "1")
			var alone, rest []int
			for i, m := range c.Members {
				if m == old {
					alone = append(alone, i)
				} else {
					rest = append(rest, i)
				}
			}
			c.Proxy.Partition(mode, alone, rest)
			cut := time.Now()
			next := leaderOf(t, c, without(c.Members, old), 10*time.Second)
			t.Logf("%s cut off; %s leads %v later", old.Name, next.Name, time.Since(cut).Round(time.Millisecond))
			set(t, cl, next, "/p/during", "majority")
			if _, err := cl.Set(timeout(t, 3*time.Second), old.ClientURL, "/p/minority", "x"); err == nil {
				t.Errorf("BUG: %s acknowledged a write while cut off from the majority", old.Name)
			}
			if r, err := cl.Get(timeout(t, 3*time.Second), old.ClientURL, "/p/during", true); err == nil {
				t.Errorf("BUG: %s answered a quorum read while cut off from the majority: %+v", old.Name, r.Node)
			}
			if n := c.Proxy.Unidentified(); n > 0 {
				t.Errorf("the proxy did not recognise the dialling member of %d connections", n)
			}
			c.Proxy.Heal()
			expectValue(t, cl, old, "/p/during", "majority", 15*time.Second)
			expectValue(t, cl, old, "/p/before", "1", 5*time.Second)
			if _, found, err := quorumGet(timeout(t, 5*time.Second), cl, next, "/p/minority"); err != nil || found {
				t.Errorf("the write the cut-off member did not acknowledge: found %v (%v)", found, err)
			}
		})
	}
}
