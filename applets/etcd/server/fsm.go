package server

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/corebox/corebox/applets/etcd/store"
)

// Kinds of raft log entries, the first byte of each.
const (
	entryCommand byte = 'c' // a store.Command
	entryMember  byte = 'm' // a Member's attributes (added, or published at start)
	entryRemove  byte = 'r' // a member's removal (its attributes are forgotten)
	entryCluster byte = 'i' // the cluster's identity, the first entry of a new cluster
	entryBatch   byte = 'b' // several of the above, proposed together (batch.go)
)

// Member is one member of the cluster as /v2/members shows it.
type Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// clusterIdentity is the content of an entryCluster.
type clusterIdentity struct {
	ClusterID string `json:"cluster_id"`
	Token     string `json:"token"`
}

// result is what applying one entry returns to the proposer.
type result struct {
	Event *store.Event
	Err   error
	// rendered replaces Event in the result of a proposal this member
	// forwarded: the leader's rendering of it for the client.
	rendered *rendered
}

// fsm is the replicated state: the key-value store, the members'
// attributes and the cluster identity.
type fsm struct {
	store *store.Store

	mu       sync.RWMutex
	members  map[string]Member
	identity clusterIdentity

	appliedMu sync.Mutex
	applied   uint64        // the raft index of the last entry applied
	advanced  chan struct{} // closed and replaced when applied grows
}

func newFSM() *fsm {
	return &fsm{store: store.New(), members: map[string]Member{}, advanced: make(chan struct{})}
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) any {
	r := f.apply(l)
	f.setApplied(l.Index)
	return r
}

func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = f.apply(l)
	}
	if len(logs) > 0 {
		f.setApplied(logs[len(logs)-1].Index)
	}
	return out
}

func (f *fsm) setApplied(idx uint64) {
	f.appliedMu.Lock()
	if idx > f.applied {
		f.applied = idx
		close(f.advanced)
		f.advanced = make(chan struct{})
	}
	f.appliedMu.Unlock()
}

// appliedIndex is the raft index of the last command applied.
func (f *fsm) appliedIndex() uint64 {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	return f.applied
}

// advancedCh is closed at the next apply.
func (f *fsm) advancedCh() <-chan struct{} {
	f.appliedMu.Lock()
	defer f.appliedMu.Unlock()
	return f.advanced
}

func (f *fsm) apply(l *raft.Log) any {
	if l.Type != raft.LogCommand || len(l.Data) == 0 {
		return nil
	}
	if l.Data[0] == entryBatch {
		entries, err := decodeBatch(l.Data[1:])
		if err != nil {
			return result{Err: fmt.Errorf("raft entry %d: %w", l.Index, err)}
		}
		out := make(batchResult, len(entries))
		for i, e := range entries {
			out[i] = f.applyEntry(e, l.Index)
		}
		return out
	}
	return f.applyEntry(l.Data, l.Index)
}

// applyEntry applies one entry (not a batch) carried by raft entry index.
func (f *fsm) applyEntry(data []byte, index uint64) result {
	body := data[1:]
	switch data[0] {
	case entryCommand:
		c, err := store.UnmarshalCommand(body)
		if err != nil {
			return result{Err: fmt.Errorf("raft entry %d: %w", index, err)}
		}
		ev, err := f.store.Apply(c)
		return result{Event: ev, Err: err}
	case entryMember:
		var m Member
		if err := json.Unmarshal(body, &m); err != nil {
			return result{Err: fmt.Errorf("raft entry %d: %w", index, err)}
		}
		f.mu.Lock()
		old := f.members[m.ID]
		if m.Name == "" { // an update of peer URLs keeps the published attributes
			m.Name, m.ClientURLs = old.Name, old.ClientURLs
		}
		if len(m.PeerURLs) == 0 {
			m.PeerURLs = old.PeerURLs
		}
		f.members[m.ID] = m
		f.mu.Unlock()
		return result{}
	case entryRemove:
		f.mu.Lock()
		delete(f.members, string(body))
		f.mu.Unlock()
		return result{}
	case entryCluster:
		var id clusterIdentity
		if err := json.Unmarshal(body, &id); err != nil {
			return result{Err: fmt.Errorf("raft entry %d: %w", index, err)}
		}
		f.mu.Lock()
		if f.identity.ClusterID == "" {
			f.identity = id
		}
		f.mu.Unlock()
		return result{}
	}
	return result{Err: fmt.Errorf("raft entry %d: unknown kind %q", index, data[0])}
}

func (f *fsm) memberList() []Member {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Member, 0, len(f.members))
	for _, m := range f.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (f *fsm) member(id string) (Member, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m, ok := f.members[id]
	return m, ok
}

func (f *fsm) clusterID() string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.identity.ClusterID
}

// snapshotState is what a raft snapshot holds.
type snapshotState struct {
	Version  int               `json:"version"`
	Applied  uint64            `json:"applied"` // the raft index of the last command in it
	Identity clusterIdentity   `json:"identity"`
	Members  map[string]Member `json:"members"`
	Store    []byte            `json:"store"`
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	// raft calls Snapshot on the FSM goroutine: no Apply runs meanwhile.
	b, err := f.store.Snapshot()
	if err != nil {
		return nil, err
	}
	f.mu.RLock()
	st := snapshotState{Version: 1, Applied: f.appliedIndex(), Identity: f.identity, Members: make(map[string]Member, len(f.members)), Store: b}
	for k, v := range f.members {
		st.Members[k] = v
	}
	f.mu.RUnlock()
	return &fsmSnapshot{state: st}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st snapshotState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("decoding snapshot: %w", err)
	}
	if st.Version != 1 {
		return fmt.Errorf("snapshot version %d: unsupported", st.Version)
	}
	if err := f.store.Restore(st.Store); err != nil {
		return fmt.Errorf("restoring the store: %w", err)
	}
	f.appliedMu.Lock()
	f.applied = st.Applied
	close(f.advanced)
	f.advanced = make(chan struct{})
	f.appliedMu.Unlock()
	f.mu.Lock()
	f.identity = st.Identity
	f.members = st.Members
	if f.members == nil {
		f.members = map[string]Member{}
	}
	f.mu.Unlock()
	return nil
}

type fsmSnapshot struct{ state snapshotState }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.state); err != nil {
		sink.Cancel()
		return fmt.Errorf("writing snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
