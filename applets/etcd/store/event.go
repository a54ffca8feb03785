package store

import "strconv"

// Actions of an Event; the mutating ones are also the Ops of a Command.
const (
	ActionGet              = "get"
	ActionSet              = "set"
	ActionCreate           = "create"
	ActionUpdate           = "update"
	ActionDelete           = "delete"
	ActionExpire           = "expire"
	ActionCompareAndSwap   = "compareAndSwap"
	ActionCompareAndDelete = "compareAndDelete"
)

// Event is the answer to a read or a write, and what watchers receive,
// marshalled as etcd's response JSON. Events handed out by the store are
// the caller's own, except those a Watcher receives live, which all the
// watchers of that event share: do not modify those.
type Event struct {
	Action   string `json:"action"`
	Node     *Node  `json:"node,omitempty"`
	PrevNode *Node  `json:"prevNode,omitempty"`
	// EtcdIndex is the store index to report (X-Etcd-Index): after a write,
	// the index it produced; for a get, the current index; for an event
	// found in the history when a watch starts, the index at that time.
	EtcdIndex uint64 `json:"-"`
	// Refresh marks a TTL refresh (PUT refresh=true): it is kept in the
	// history but never delivered to watchers. etcd's store marks its
	// event the same way, but its HTTP layer writes a copy without it: no
	// v2 response shows "refresh".
	Refresh bool `json:"refresh,omitempty"`

	// removedBelow is, for the removal of a directory, the paths of the
	// nodes that were in it: Apply hands them to the watchers and drops
	// them before the event goes to the history.
	removedBelow []string
}

// index is the store index the event produced.
func (e *Event) index() uint64 { return e.Node.ModifiedIndex }

func (e *Event) clone() *Event {
	c := *e
	c.Node = e.Node.clone()
	c.PrevNode = e.PrevNode.clone()
	return &c
}

func newEvent(action, p string, modifiedIndex, createdIndex uint64) *Event {
	return &Event{
		Action:    action,
		Node:      &Node{Key: externKey(p), ModifiedIndex: modifiedIndex, CreatedIndex: createdIndex},
		EtcdIndex: modifiedIndex,
	}
}

func uitoa(v uint64) string { return strconv.FormatUint(v, 10) }
