package faulttest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

const (
	linClients   = 5
	linKeys      = 4
	opTimeout    = 2 * time.Second
	checkTimeout = 2 * time.Minute
)

// TestLinearizability has clients issue quorum gets, sets,
// compare-and-swaps and deletes on a few keys against random members while
// a nemesis kills and restarts, pauses and resumes, and partitions members;
// porcupine then checks the history against registerModel. A watch of the
// whole store follows the run to settle the writes whose answer was lost
// (see history.operations) and to check that every acknowledged write is
// an event of the store at the index its answer gave.
//
// Knobs (environment):
//
//	COREBOX_FAULT_SEED=S       run only seed S (to reproduce a failure)
//	COREBOX_FAULT_SEEDS=N      run seeds 1..N instead of the default few
//	COREBOX_FAULT_DURATION=D   how long each seed's clients run (default 8s)
//	COREBOX_FAULT_OUT=DIR      where histories, visualizations and logs go
//	                           (always written when set; otherwise only on
//	                           failure, into a new directory under $TMPDIR)
//	COREBOX_FAULT_SEED_BASE=B  BenchmarkLinearizability's first seed (default 1000)
//	COREBOX_FAULT_LOCAL_READS=1  gets without quorum=true: local reads are not
//	                           linearizable, so runs with partitions should
//	                           fail; this checks the checker
//
// Many seeds: go test -run XXX -bench Linearizability -benchtime 20x ./applets/etcd/faulttest/
// or COREBOX_FAULT_SEEDS=20 go test -run TestLinearizability -timeout 60m ./applets/etcd/faulttest/
func TestLinearizability(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if s := os.Getenv("COREBOX_FAULT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("COREBOX_FAULT_SEED=%q: %v", s, err)
		}
		seeds = []uint64{n}
	} else if s := os.Getenv("COREBOX_FAULT_SEEDS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			t.Fatalf("COREBOX_FAULT_SEEDS=%q: want a count of seeds", s)
		}
		seeds = nil
		for i := uint64(1); i <= n; i++ {
			seeds = append(seeds, i)
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed-%d", seed), func(t *testing.T) {
			checkLinearizable(t, seed, linDuration(t))
		})
	}
}

// BenchmarkLinearizability runs one seed per iteration, from
// $COREBOX_FAULT_SEED_BASE on: -benchtime 20x runs 20 seeds.
func BenchmarkLinearizability(b *testing.B) {
	base := uint64(1000)
	if s := os.Getenv("COREBOX_FAULT_SEED_BASE"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			b.Fatalf("COREBOX_FAULT_SEED_BASE=%q: %v", s, err)
		}
		base = n
	}
	for seed := base; b.Loop(); seed++ {
		checkLinearizable(b, seed, linDuration(b))
	}
}

func linDuration(t testing.TB) time.Duration {
	if s := os.Getenv("COREBOX_FAULT_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("COREBOX_FAULT_DURATION=%q: %v", s, err)
		}
		return d
	}
	return 8 * time.Second
}

// checkLinearizable runs one seed: every third seed has 5 members, the
// others 3. The seed fixes the clients' choices and the nemesis's
// schedule; the timing of processes and the network is not reproducible.
func checkLinearizable(t testing.TB, seed uint64, d time.Duration) {
	size := 3
	if seed%3 == 0 {
		size = 5
	}
	c := newCluster(t, Options{Size: size, Proxy: true})
	defer c.Close()
	leaderOf(t, c, c.Members, 15*time.Second)

	h := &history{start: time.Now(), clients: linClients}
	var keys []string
	for k := 0; k < linKeys; k++ {
		keys = append(keys, fmt.Sprintf("/lin/%d", k))
	}
	cl := NewClient(opTimeout)
	events := newEventLog()
	watchCtx, stopWatching := context.WithCancel(context.Background())
	defer stopWatching()
	var watching sync.WaitGroup
	watching.Add(1)
	go func() {
		defer watching.Done()
		events.follow(watchCtx, c, NewClient(opTimeout), rand.New(rand.NewPCG(seed, 1<<32)))
	}()

	seen := &recent{values: map[string]string{}}
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for id := 0; id < linClients; id++ {
		w := &worker{id: id, client: id, rng: rand.New(rand.NewPCG(seed, uint64(id)+1)), c: c, cl: cl, h: h, keys: keys, seen: seen,
			quorum: os.Getenv("COREBOX_FAULT_LOCAL_READS") == ""}
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(end)
		}()
	}
	n := &nemesis{c: c, rng: rand.New(rand.NewPCG(seed, 0)), h: h}
	n.run(end)
	wg.Wait()
	if err := n.healAll(); err != nil {
		t.Fatal(err)
	}
	leaderOf(t, c, c.Members, 20*time.Second)
	finalIndex := finalReads(t, c, cl, h, keys, seed)
	last := max(h.lastIndex(), finalIndex, storeIndex(c, cl))
	logErr := events.complete(last, 15*time.Second)
	stopWatching()
	watching.Wait()
	c.Close()

	ops, settled, problems := h.operations(events, "/lin/", logErr == nil)
	for _, p := range problems {
		t.Errorf("BUG: seed %d: %s", seed, p)
	}
	model := registerModel()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, checkTimeout)
	info.AddAnnotations(n.notes)
	log := "complete"
	if logErr != nil {
		log = logErr.Error()
	}
	t.Logf("seed %d, %d members, faults: %v", seed, size, n.done)
	t.Logf("seed %d: %d operations recorded; event log up to index %d: %s; of unknown outcome: %v; porcupine: %s in %v",
		seed, len(h.ops), last, log, settled, res, time.Since(start).Round(time.Millisecond))
	out := os.Getenv("COREBOX_FAULT_OUT")
	if res == porcupine.Ok && len(problems) == 0 && out == "" {
		return
	}
	if out == "" {
		var err error
		if out, err = os.MkdirTemp("", "corebox-fault-"); err != nil {
			t.Fatal(err)
		}
	}
	html, err := saveRun(out, seed, model, info, h, ops, c)
	if err != nil {
		t.Errorf("saving the run: %v", err)
	}
	switch res {
	case porcupine.Illegal:
		t.Errorf("BUG: seed %d: the history is not linearizable; visualization: %s (histories and member logs beside it)", seed, html)
	case porcupine.Unknown:
		t.Logf("seed %d: porcupine gave up after %v: the check is inconclusive; visualization: %s", seed, checkTimeout, html)
	default:
		t.Logf("seed %d: visualization: %s", seed, html)
	}
}

// recent remembers the last value seen of each key, for the clients'
// compare-and-swaps to have a fair chance.
type recent struct {
	mu     sync.Mutex
	values map[string]string
}

func (r *recent) get(key string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.values[key]
	return v, ok
}

func (r *recent) put(key, value string) {
	r.mu.Lock()
	r.values[key] = value
	r.mu.Unlock()
}

type worker struct {
	id, client int
	seq        int
	rng        *rand.Rand
	c          *Cluster
	cl         *Client
	h          *history
	keys       []string
	seen       *recent
	quorum     bool // gets ask for quorum=true
}

func (w *worker) run(end time.Time) {
	for time.Now().Before(end) {
		m := w.c.Members[w.rng.IntN(len(w.c.Members))]
		in := w.choose()
		call := w.h.now()
		out, index, meta, sent := w.do(m, in)
		ret := w.h.now()
		if !sent || out.Unknown {
			// Back off as a client does when a member fails it.
			time.Sleep(time.Duration(50+w.rng.IntN(100)) * time.Millisecond)
		}
		switch {
		case !sent: // the connection was refused: nothing happened
			continue
		case in.Kind == opGet && out.Unknown: // a lost read tells nothing
			continue
		}
		w.h.add(porcupine.Operation{ClientId: w.client, Input: in, Output: out, Call: call, Return: ret, Metadata: meta}, index)
		if out.Unknown {
			w.client = w.h.newClient()
		}
	}
}

func (w *worker) choose() regInput {
	key := w.keys[w.rng.IntN(len(w.keys))]
	w.seq++
	value := fmt.Sprintf("%d.%d", w.id, w.seq)
	switch r := w.rng.IntN(100); {
	case r < 40:
		return regInput{Kind: opGet, Key: key}
	case r < 60:
		return regInput{Kind: opSet, Key: key, Value: value}
	case r < 88:
		prev, ok := w.seen.get(key)
		if !ok || w.rng.IntN(5) == 0 {
			prev = fmt.Sprintf("%d.%d", w.rng.IntN(linClients), w.rng.IntN(w.seq)+1)
		}
		return regInput{Kind: opCAS, Key: key, Value: value, Prev: prev}
	default:
		return regInput{Kind: opDelete, Key: key}
	}
}

// do runs one operation on m. index is the store index a successful write
// made; sent is false when the request surely never reached m (the
// connection could not be made).
func (w *worker) do(m *Member, in regInput) (out regOutput, index uint64, meta string, sent bool) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var r *Response
	var err error
	switch in.Kind {
	case opGet:
		r, err = w.cl.Get(ctx, m.ClientURL, in.Key, w.quorum)
	case opSet:
		r, err = w.cl.Set(ctx, m.ClientURL, in.Key, in.Value)
	case opCAS:
		r, err = w.cl.CompareAndSwap(ctx, m.ClientURL, in.Key, in.Value, in.Prev)
	case opDelete:
		r, err = w.cl.Delete(ctx, m.ClientURL, in.Key)
	}
	var etcdErr *EtcdError
	var opErr *net.OpError
	switch {
	case err == nil:
		out.OK = true
		if in.Kind == opGet {
			out.Value = r.Node.Value
		}
		if in.Kind == opGet || in.Kind == opSet || in.Kind == opCAS {
			w.seen.put(in.Key, r.Node.Value)
		}
		if in.Kind != opGet {
			index = r.Node.ModifiedIndex
		}
		return out, index, fmt.Sprintf("%s: index %d", m.Name, r.Node.ModifiedIndex), true
	case errors.As(err, &etcdErr) && etcdErr.Definite() && (in.Kind != opGet || etcdErr.ErrorCode == 100):
		// A missing key, a failed comparison: the server decided.
		return out, 0, fmt.Sprintf("%s: %v", m.Name, err), true
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return out, 0, "", false
	default:
		out.Unknown = true
		return out, 0, fmt.Sprintf("%s: %v", m.Name, err), true
	}
}

// storeIndex is the highest store index among the members (plain reads).
func storeIndex(c *Cluster, cl *Client) uint64 {
	var last uint64
	for _, m := range c.Members {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		r, err := cl.Get(ctx, m.ClientURL, "/", false)
		cancel()
		if err == nil {
			last = max(last, r.EtcdIndex)
		}
	}
	return last
}

// finalReads reads every key once the faults are over, so that the
// history ends with the state the cluster settled on. A key that no quorum
// read answers for 10 seconds is an error; then one write outside the
// checked keys tells whether it was the stall of quorum reads after an
// election (see TestLeaderKill), and the reads are tried again. It returns
// the highest store index the reads saw.
func finalReads(t testing.TB, c *Cluster, cl *Client, h *history, keys []string, seed uint64) uint64 {
	client := h.newClient()
	var last uint64
	read := func(key string, m *Member, d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		for {
			call := h.now()
			r, err := cl.Get(ctx, m.ClientURL, key, true)
			ret := h.now()
			if err == nil || Code(err) == 100 {
				out := regOutput{OK: err == nil}
				if err == nil {
					out.Value = r.Node.Value
					last = max(last, r.EtcdIndex)
				} else {
					last = max(last, err.(*EtcdError).Index)
				}
				h.add(porcupine.Operation{ClientId: client, Input: regInput{Kind: opGet, Key: key}, Output: out, Call: call, Return: ret, Metadata: m.Name + ": final read"}, 0)
				return nil
			}
			if ctx.Err() != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	nudged := false
	for i, key := range keys {
		m := c.Members[i%len(c.Members)]
		err := read(key, m, 10*time.Second)
		if err == nil {
			continue
		}
		t.Errorf("BUG: seed %d: the faults are over and a leader is elected, yet no quorum read of %s on %s answers for 10s: %v", seed, key, m.Name, err)
		if nudged {
			t.Fatalf("final quorum read of %s on %s after a write: %v", key, m.Name, err)
		}
		nudged = true
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, werr := cl.Set(ctx, m.ClientURL, "/nudge", "1")
		cancel()
		if err := read(key, m, 5*time.Second); err != nil {
			t.Fatalf("final quorum read of %s on %s still fails after a write (%v): %v", key, m.Name, werr, err)
		}
		t.Logf("seed %d: after one write elsewhere (%v), the quorum read of %s on %s answered at once: quorum reads wait for the next write after an election", seed, werr, key, m.Name)
	}
	return last
}

// nemesis injects one fault at a time and undoes it before the next.
type nemesis struct {
	c     *Cluster
	rng   *rand.Rand
	h     *history
	notes []porcupine.Annotation
	done  []string
}

func (n *nemesis) sleep(lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(n.rng.Int64N(int64(hi-lo))))
}

func (n *nemesis) run(end time.Time) {
	for {
		n.sleep(200*time.Millisecond, time.Second)
		if time.Now().After(end) {
			return
		}
		start := n.h.now()
		desc, err := n.inject()
		if err != nil {
			desc += ": " + err.Error()
		}
		n.done = append(n.done, desc)
		n.notes = append(n.notes, porcupine.Annotation{Tag: "nemesis", Start: start, End: n.h.now(), Description: desc, BackgroundColor: "#fde0dd"})
	}
}

// pick chooses the fault's target: the leader half the time.
func (n *nemesis) pick() *Member {
	if n.rng.IntN(2) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if l, err := n.c.Leader(ctx, n.c.Members); err == nil {
			return l
		}
	}
	return n.c.Members[n.rng.IntN(len(n.c.Members))]
}

func (n *nemesis) inject() (string, error) {
	target := n.pick()
	switch n.rng.IntN(3) {
	case 0:
		desc := "kill -9 " + target.Name + ", restart"
		if err := target.Kill(); err != nil {
			return desc, err
		}
		n.sleep(200*time.Millisecond, 2*time.Second)
		return desc, target.Start()
	case 1:
		desc := "pause " + target.Name
		if err := target.Pause(); err != nil {
			return desc, err
		}
		n.sleep(500*time.Millisecond, 3*time.Second)
		return desc, target.Resume()
	default:
		mode := Stall
		if n.rng.IntN(2) == 0 {
			mode = Refuse
		}
		var minority, majority []int
		if n.rng.IntN(2) == 0 {
			for i, m := range n.c.Members {
				if m == target {
					minority = append(minority, i)
				} else {
					majority = append(majority, i)
				}
			}
		} else {
			perm := n.rng.Perm(len(n.c.Members))
			minority, majority = perm[:len(perm)/2], perm[len(perm)/2:]
		}
		var names []string
		for _, i := range minority {
			names = append(names, n.c.Members[i].Name)
		}
		desc := fmt.Sprintf("partition (%s) %v from the rest", mode, names)
		n.c.Proxy.Partition(mode, minority, majority)
		n.sleep(time.Second, 3*time.Second)
		n.c.Proxy.Heal()
		return desc, nil
	}
}

// healAll undoes whatever a failed step of the nemesis left behind.
func (n *nemesis) healAll() error {
	n.c.Proxy.Heal()
	for _, m := range n.c.Members {
		switch {
		case m.Paused():
			if err := m.Resume(); err != nil {
				return err
			}
		case !m.Running():
			if err := m.Start(); err != nil {
				return err
			}
		}
	}
	return nil
}
