package faulttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// history records the operations of all clients.
type history struct {
	start   time.Time
	mu      sync.Mutex
	ops     []porcupine.Operation
	indexes []uint64 // of each op: the store index a successful write made
	clients int      // client IDs handed out so far
}

// now is the history's clock: nanoseconds since its start, monotonic.
func (h *history) now() int64 { return int64(time.Since(h.start)) }

func (h *history) add(op porcupine.Operation, index uint64) {
	h.mu.Lock()
	h.ops = append(h.ops, op)
	h.indexes = append(h.indexes, index)
	h.mu.Unlock()
}

// lastIndex is the highest store index of an acknowledged write.
func (h *history) lastIndex() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var last uint64
	for _, i := range h.indexes {
		last = max(last, i)
	}
	return last
}

// newClient hands out a fresh client ID, for a client whose last
// operation never returned (its operation stays open to the end).
func (h *history) newClient() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients++
	return h.clients - 1
}

// eventLog follows all the store's events with streaming watches, moving
// to another member whenever a stream ends, so that after the run it knows
// which writes took effect.
type eventLog struct {
	mu     sync.Mutex
	events map[uint64]*Response // by store index
	next   uint64               // every index below next is in events
	err    error                // why the log has a gap it cannot fill
}

func newEventLog() *eventLog { return &eventLog{events: map[uint64]*Response{}, next: 1} }

// follow watches the store until ctx ends or the log breaks. Each stream
// lasts at most a second, so that one stuck on a paused or lagging member
// moves on.
func (l *eventLog) follow(ctx context.Context, c *Cluster, cl *Client, rng *rand.Rand) {
	for ctx.Err() == nil {
		m := c.Members[rng.IntN(len(c.Members))]
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := cl.Watch(wctx, m.ClientURL, "/", l.since(), l.add)
		cancel()
		if Code(err) == 401 {
			l.mu.Lock()
			l.err = fmt.Errorf("watching on %s from %d: %w", m.Name, l.next, err)
			l.mu.Unlock()
			return
		}
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "dial" {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (l *eventLog) since() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next
}

func (l *eventLog) add(r *Response) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events[r.Node.ModifiedIndex] = r
	for l.events[l.next] != nil {
		l.next++
	}
	return nil
}

// complete waits until the log holds every index up to last; it reports
// why not when it does not within d.
func (l *eventLog) complete(last uint64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		l.mu.Lock()
		next, err := l.next, l.err
		l.mu.Unlock()
		switch {
		case err != nil:
			return err
		case next > last:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("the event log reached index %d of %d in %v", next-1, last, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled is what the event log told about the operations of unknown
// outcome.
type settled struct {
	applied, dropped, unknown int
}

func (s settled) String() string {
	return fmt.Sprintf("%d took effect, %d never did, %d stay unknown", s.applied, s.dropped, s.unknown)
}

// operations returns the history for the checker. Operations of unknown
// outcome return after everything else. When the event log is complete, a
// set or compare-and-swap of unknown outcome whose (unique) value is in the
// log took effect and one whose value is not never did and is dropped; a
// delete of unknown outcome is settled the same way when all or none of a
// key's unacknowledged delete events are accounted for. An applied write's
// event only says that it took effect, not when: it still returns after
// everything else. (etcd's robustness tests settle their histories with
// watch events the same way.)
//
// Only the events of keys under prefix count. problems lists where the
// // event log and the acknowledged writes disagree: an acknowledged write
// whose event differs or, with a complete log, is missing, two acknowledged
// writes with one index, and an event no write can explain.
func (h *history) operations(l *eventLog, prefix string, complete bool) (ops []porcupine.Operation, s settled, problems []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()

	var last int64
	for _, op := range h.ops {
		last = max(last, op.Call, op.Return)
	}
	events := map[uint64]*Response{}
	byValue := map[string]*Response{}
	for idx, ev := range l.events {
		if !strings.HasPrefix(ev.Node.Key, prefix) {
			continue
		}
		events[idx] = ev
		if ev.Action != "delete" {
			byValue[ev.Node.Value] = ev
		}
	}
	acked := map[uint64]bool{}
	unknownValues := map[string]bool{}
	unknownDeletes := map[string]int{}
	for i, op := range h.ops {
		in, out := op.Input.(regInput), op.Output.(regOutput)
		switch {
		case in.Kind == opGet:
		case out.Unknown && in.Kind == opDelete:
			unknownDeletes[in.Key]++
		case out.Unknown:
			unknownValues[in.Value] = true
		case out.OK:
			idx := h.indexes[i]
			ev := events[idx]
			switch {
			case acked[idx]:
				problems = append(problems, fmt.Sprintf("acknowledged %s (%s) made index %d, as did another acknowledged write", describe(in, out), op.Metadata, idx))
			case ev == nil && complete:
				problems = append(problems, fmt.Sprintf("acknowledged %s (%s) made index %d, which no member's watch reported", describe(in, out), op.Metadata, idx))
			case ev == nil:
			case ev.Node.Key != in.Key || in.Kind != opDelete && ev.Node.Value != in.Value || (in.Kind == opDelete) != (ev.Action == "delete"):
				problems = append(problems, fmt.Sprintf("acknowledged %s (%s) made index %d, where the watch reported %s %s=%q", describe(in, out), op.Metadata, idx, ev.Action, ev.Node.Key, ev.Node.Value))
			}
			acked[idx] = true
		}
	}
	unackedDeletes := map[string]int{}
	for idx, ev := range events {
		if acked[idx] {
			continue
		}
		switch {
		case ev.Action == "delete" && unackedDeletes[ev.Node.Key] < unknownDeletes[ev.Node.Key]:
			unackedDeletes[ev.Node.Key]++
		case ev.Action != "delete" && unknownValues[ev.Node.Value]:
		default:
			problems = append(problems, fmt.Sprintf("the watch reported %s %s=%q at index %d, which no operation of unknown outcome can explain", ev.Action, ev.Node.Key, ev.Node.Value, idx))
		}
	}

	for _, op := range h.ops {
		in, out := op.Input.(regInput), op.Output.(regOutput)
		if !out.Unknown {
			ops = append(ops, op)
			continue
		}
		op.Return = last + 1
		var applied, never bool
		if in.Kind == opDelete {
			applied = unackedDeletes[in.Key] == unknownDeletes[in.Key]
			never = complete && unackedDeletes[in.Key] == 0
		} else {
			_, applied = byValue[in.Value]
			never = complete && !applied
		}
		switch {
		case applied:
			s.applied++
			op.Output = regOutput{OK: true}
			ops = append(ops, op)
		case never:
			s.dropped++
		default:
			s.unknown++
			ops = append(ops, op)
		}
	}
	return ops, s, problems
}

func describe(in regInput, out regOutput) string {
	return registerModel().DescribeOperation(in, out)
}

// saveRun writes the visualization, the history as JSON (as recorded, and
// as checked) and the members' logs into dir; it returns the
// visualization's path.
func saveRun(dir string, seed uint64, model porcupine.Model, info porcupine.LinearizationInfo, h *history, checked []porcupine.Operation, c *Cluster) (string, error) {
	prefix := filepath.Join(dir, fmt.Sprintf("linearizability-seed-%d", seed))
	if err := os.MkdirAll(prefix+"-logs", 0o755); err != nil {
		return "", err
	}
	html := prefix + ".html"
	if err := porcupine.VisualizePath(model, info, html); err != nil {
		return "", fmt.Errorf("writing %s: %w", html, err)
	}
	type jsonOp struct {
		Client       int
		Call, Return int64
		Input        regInput
		Output       regOutput
		Index        uint64 `json:",omitempty"`
		Meta         any
	}
	write := func(name string, ops []porcupine.Operation, indexes []uint64) error {
		var js []jsonOp
		for i, op := range ops {
			j := jsonOp{Client: op.ClientId, Call: op.Call, Return: op.Return, Input: op.Input.(regInput), Output: op.Output.(regOutput), Meta: op.Metadata}
			if indexes != nil {
				j.Index = indexes[i]
			}
			js = append(js, j)
		}
		b, _ := json.MarshalIndent(js, "", " ")
		return os.WriteFile(name, b, 0o644)
	}
	h.mu.Lock()
	err := write(prefix+"-recorded.json", h.ops, h.indexes)
	h.mu.Unlock()
	if err != nil {
		return "", err
	}
	if err := write(prefix+"-checked.json", checked, nil); err != nil {
		return "", err
	}
	for _, m := range c.Members {
		if err := os.WriteFile(filepath.Join(prefix+"-logs", m.Name+".log"), []byte(m.Log()), 0o644); err != nil {
			return "", err
		}
	}
	return html, nil
}
