package store

import (
	"container/heap"
	"path"
	"sort"
	"strings"
	"time"
)

// Node is a key or directory as etcd's JSON shows it (etcd's NodeExtern).
// Value is nil for a directory; Nodes lists a directory's children in a
// get (never hidden ones); Expiration and TTL are set only for a node with
// a TTL; the root's Key is "" (etcd's "/1" with its prefix trimmed).
type Node struct {
	Key           string     `json:"key,omitempty"`
	Value         *string    `json:"value,omitempty"`
	Dir           bool       `json:"dir,omitempty"`
	Expiration    *time.Time `json:"expiration,omitempty"`
	TTL           int64      `json:"ttl,omitempty"`
	Nodes         []*Node    `json:"nodes,omitempty"`
	ModifiedIndex uint64     `json:"modifiedIndex,omitempty"`
	CreatedIndex  uint64     `json:"createdIndex,omitempty"`
}

func (n *Node) clone() *Node {
	if n == nil {
		return nil
	}
	c := *n
	if n.Value != nil {
		v := *n.Value
		c.Value = &v
	}
	if n.Expiration != nil {
		t := *n.Expiration
		c.Expiration = &t
	}
	if n.Nodes != nil {
		c.Nodes = make([]*Node, len(n.Nodes))
		for i, child := range n.Nodes {
			c.Nodes[i] = child.clone()
		}
	}
	return &c
}

// ttlAt is etcd's expiration and TTL of a node expiring at exp, seen at
// now: the TTL is the remaining time in seconds rounded up, so it is at
// least 1 while the node has not expired (and 0 or negative once it has,
// until its expire command is applied).
func ttlAt(exp, now time.Time) (*time.Time, int64) {
	if exp.IsZero() {
		return nil, 0
	}
	d := exp.Sub(now)
	ttl := d / time.Second
	if d%time.Second > 0 {
		ttl++
	}
	t := exp.UTC()
	return &t, int64(ttl)
}

// externKey is the key a path shows as: the root is etcd's "/1", which the
// /v2/keys prefix trimming turns into "".
func externKey(p string) string {
	if p == "/" {
		return ""
	}
	return p
}

// node is a key (children == nil) or a directory in the tree.
type node struct {
	path          string
	createdIndex  uint64
	modifiedIndex uint64
	expire        time.Time // zero: permanent; always UTC without monotonic reading
	value         string
	children      map[string]*node
	parent        *node
	heapIndex     int // position in the store's ttl heap, -1 when not in it
}

func newFile(p, value string, index uint64, parent *node, expire time.Time) *node {
	return &node{path: p, createdIndex: index, modifiedIndex: index, value: value, parent: parent, expire: expire, heapIndex: -1}
}

func newDir(p string, index uint64, parent *node, expire time.Time) *node {
	return &node{path: p, createdIndex: index, modifiedIndex: index, children: map[string]*node{}, parent: parent, expire: expire, heapIndex: -1}
}

func (n *node) isDir() bool { return n.children != nil }

func (n *node) name() string { return path.Base(n.path) }

// isHidden: a name starting with "_" is not listed in its directory.
func (n *node) isHidden() bool { return strings.HasPrefix(n.name(), "_") }

// repr is the node as a response shows it, at time now. A directory lists
// its visible children only when recursive (prevNode and child entries).
func (n *node) repr(recursive, sorted bool, now time.Time) *Node {
	e := &Node{Key: externKey(n.path), ModifiedIndex: n.modifiedIndex, CreatedIndex: n.createdIndex}
	e.Expiration, e.TTL = ttlAt(n.expire, now)
	if !n.isDir() {
		v := n.value
		e.Value = &v
		return e
	}
	e.Dir = true
	if recursive {
		e.Nodes = n.list(true, sorted, now)
	}
	return e
}

// list is a directory's visible children, each as repr(recursive).
func (n *node) list(recursive, sorted bool, now time.Time) []*Node {
	var nodes []*Node
	for _, c := range n.children {
		if c.isHidden() {
			continue
		}
		nodes = append(nodes, c.repr(recursive, sorted, now))
	}
	if sorted {
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].Key < nodes[j].Key })
	}
	return nodes
}

// compare is etcd's CAS/CAD test: an empty prevValue or a zero prevIndex
// is not compared. The cause is etcd's, e.g. "[two != one] [3 != 8]".
func (n *node) compare(prevValue string, prevIndex uint64) (cause string, ok bool) {
	valueOK := prevValue == "" || n.value == prevValue
	indexOK := prevIndex == 0 || n.modifiedIndex == prevIndex
	switch {
	case valueOK && indexOK:
		return "", true
	case valueOK:
		return "[" + uitoa(prevIndex) + " != " + uitoa(n.modifiedIndex) + "]", false
	case indexOK:
		return "[" + prevValue + " != " + n.value + "]", false
	default:
		return "[" + prevValue + " != " + n.value + "] [" + uitoa(prevIndex) + " != " + uitoa(n.modifiedIndex) + "]", false
	}
}

// ttlHeap orders the nodes with a TTL by expiration (then path).
type ttlHeap []*node

func (h ttlHeap) Len() int { return len(h) }
func (h ttlHeap) Less(i, j int) bool {
	if !h[i].expire.Equal(h[j].expire) {
		return h[i].expire.Before(h[j].expire)
	}
	return h[i].path < h[j].path
}
func (h ttlHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex = i
	h[j].heapIndex = j
}
func (h *ttlHeap) Push(x any) {
	n := x.(*node)
	n.heapIndex = len(*h)
	*h = append(*h, n)
}
func (h *ttlHeap) Pop() any {
	old := *h
	n := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	n.heapIndex = -1
	return n
}

// setExpire gives n the expiration exp (zero: permanent), keeping the heap.
func (h *ttlHeap) setExpire(n *node, exp time.Time) {
	n.expire = exp
	switch {
	case exp.IsZero() && n.heapIndex >= 0:
		heap.Remove(h, n.heapIndex)
	case exp.IsZero():
	case n.heapIndex >= 0:
		heap.Fix(h, n.heapIndex)
	default:
		heap.Push(h, n)
	}
}

func (h *ttlHeap) remove(n *node) {
	if n.heapIndex >= 0 {
		heap.Remove(h, n.heapIndex)
	}
}

// expired appends the nodes of the heap expiring at or before now.
func (h ttlHeap) expired(now time.Time, i int, out []*node) []*node {
	if i >= len(h) || h[i].expire.After(now) {
		return out
	}
	out = append(out, h[i])
	out = h.expired(now, 2*i+1, out)
	return h.expired(now, 2*i+2, out)
}
