package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"
)

// Node is a key or a directory in etcd's v2 store.
type Node struct {
	Key   string `json:"key"`
	Dir   bool   `json:"dir,omitempty"`
	Value string `json:"value"`
	// Nodes are a directory's children (and, for recursive reads, theirs).
	Nodes         []*Node `json:"nodes"`
	CreatedIndex  uint64  `json:"createdIndex"`
	ModifiedIndex uint64  `json:"modifiedIndex"`
	// Expiration and TTL (seconds left) are set for keys with a TTL.
	Expiration *time.Time `json:"expiration,omitempty"`
	TTL        int64      `json:"ttl,omitempty"`
}

// Response is a successful keys API answer.
type Response struct {
	// Action is get, set, create, update, delete, compareAndSwap,
	// compareAndDelete or expire.
	Action string `json:"action"`
	// Node is the node after the action (for a delete: the deleted node,
	// without value). It is nil only for a Set with NoValueOnSuccess.
	Node *Node `json:"node"`
	// PrevNode is the node before the action, when there was one.
	PrevNode *Node `json:"prevNode"`

	// Index is the store's index when the answer was made (X-Etcd-Index);
	// for a watch, when the watch began.
	Index     uint64 `json:"-"`
	RaftIndex uint64 `json:"-"` // X-Raft-Index
	RaftTerm  uint64 `json:"-"` // X-Raft-Term
	ClusterID string `json:"-"` // X-Etcd-Cluster-Id
}

// GetOptions are Get's options; nil means all false.
type GetOptions struct {
	Recursive bool // include the whole subtree, not only the children
	Sort      bool // children in key order
	Quorum    bool // read through raft, never a stale value
}

// PrevExist values for SetOptions.PrevExist.
const (
	PrevIgnore  = ""      // set whether or not the key exists
	PrevExist   = "true"  // only update an existing key
	PrevNoExist = "false" // only create a new key
)

// SetOptions are Set's options; nil means none.
type SetOptions struct {
	// TTL makes the key expire; it is rounded up to whole seconds. Zero
	// means no expiry (and removes an existing one).
	TTL time.Duration
	// Refresh resets the TTL of an existing key without changing its value
	// or notifying watchers; the value must be "".
	Refresh bool
	// PrevExist is PrevIgnore, PrevExist or PrevNoExist.
	PrevExist string
	// PrevValue and PrevIndex, when set, make the set conditional.
	PrevValue string
	PrevIndex uint64
	// Dir makes a directory; the value must be "".
	Dir bool
	// NoValueOnSuccess asks for an answer without nodes.
	NoValueOnSuccess bool
}

// DeleteOptions are Delete's options; nil means none.
type DeleteOptions struct {
	Recursive bool // delete a directory and everything in it
	Dir       bool // delete an empty directory (or a key)
	// PrevValue and PrevIndex, when set, make the delete conditional.
	PrevValue string
	PrevIndex uint64
}

// WatcherOptions are Watcher's options; nil means none.
type WatcherOptions struct {
	// AfterIndex makes the first event the first one after this index;
	// zero means the first one after the watch begins.
	AfterIndex uint64
	// Recursive watches the key's whole subtree.
	Recursive bool
}

// keyPath is the URL path of key under the keys API.
func keyPath(key string) string {
	if key != "" && key[0] != '/' {
		key = "/" + key
	}
	return "/v2/keys" + key
}

// ttlSeconds rounds a TTL up to etcd's whole seconds.
func ttlSeconds(ttl time.Duration) string {
	return strconv.FormatInt(int64(math.Ceil(ttl.Seconds())), 10)
}

// Get reads a key or a directory.
func (c *Client) Get(ctx context.Context, key string, o *GetOptions) (*Response, error) {
	if o == nil {
		o = &GetOptions{}
	}
	q := url.Values{}
	if o.Recursive {
		q.Set("recursive", "true")
	}
	if o.Sort {
		q.Set("sorted", "true")
	}
	if o.Quorum {
		q.Set("quorum", "true")
	}
	return c.keys(ctx, &request{method: "GET", path: keyPath(key), query: q}, true)
}

// Set writes a key (or makes a directory), as its options say.
func (c *Client) Set(ctx context.Context, key, value string, o *SetOptions) (*Response, error) {
	if o == nil {
		o = &SetOptions{}
	}
	switch o.PrevExist {
	case PrevIgnore, PrevExist, PrevNoExist:
	default:
		return nil, fmt.Errorf(`etcd client: set %s: PrevExist must be "", "true" or "false", not %q`, key, o.PrevExist)
	}
	if o.Dir && value != "" {
		return nil, fmt.Errorf("etcd client: set %s: a directory has no value", key)
	}
	q, form := url.Values{}, url.Values{}
	if o.Dir {
		q.Set("dir", "true")
	} else if !o.Refresh || value != "" {
		form.Set("value", value)
	}
	if o.PrevValue != "" {
		q.Set("prevValue", o.PrevValue)
	}
	if o.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(o.PrevIndex, 10))
	}
	if o.PrevExist != PrevIgnore {
		q.Set("prevExist", o.PrevExist)
	}
	if o.NoValueOnSuccess {
		q.Set("noValueOnSuccess", "true")
	}
	if o.TTL > 0 {
		form.Set("ttl", ttlSeconds(o.TTL))
	}
	if o.Refresh {
		form.Set("refresh", "true")
	}
	r := &request{method: "PUT", path: keyPath(key), query: q, form: form, create: o.PrevExist == PrevNoExist}
	return c.keys(ctx, r, !o.NoValueOnSuccess)
}

// Create makes a new key; it fails with 105 "Key already exists" if the key
// exists.
func (c *Client) Create(ctx context.Context, key, value string, ttl time.Duration) (*Response, error) {
	return c.Set(ctx, key, value, &SetOptions{TTL: ttl, PrevExist: PrevNoExist})
}

// CreateInOrder makes a new key in dir whose name is the store's index, so
// that the keys of a directory sort in the order they were created.
func (c *Client) CreateInOrder(ctx context.Context, dir, value string, ttl time.Duration) (*Response, error) {
	form := url.Values{"value": {value}}
	if ttl > 0 {
		form.Set("ttl", ttlSeconds(ttl))
	}
	return c.keys(ctx, &request{method: "POST", path: keyPath(dir), form: form, create: true}, true)
}

// Update changes an existing key; it fails with 100 "Key not found" if the
// key does not exist.
func (c *Client) Update(ctx context.Context, key, value string, ttl time.Duration) (*Response, error) {
	return c.Set(ctx, key, value, &SetOptions{TTL: ttl, PrevExist: PrevExist})
}

// CompareAndSwap sets key to value if its value is prevValue and its modified
// index is prevIndex (an empty prevValue or a zero prevIndex is not
// compared; one of them must be given). A lost comparison is 101 "Compare
// failed".
func (c *Client) CompareAndSwap(ctx context.Context, key, value, prevValue string, prevIndex uint64, ttl time.Duration) (*Response, error) {
	if prevValue == "" && prevIndex == 0 {
		return nil, fmt.Errorf("etcd client: compare-and-swap %s: needs a previous value or index", key)
	}
	return c.Set(ctx, key, value, &SetOptions{TTL: ttl, PrevValue: prevValue, PrevIndex: prevIndex})
}

// Delete removes a key, or a directory as its options allow.
func (c *Client) Delete(ctx context.Context, key string, o *DeleteOptions) (*Response, error) {
	if o == nil {
		o = &DeleteOptions{}
	}
	q := url.Values{}
	if o.PrevValue != "" {
		q.Set("prevValue", o.PrevValue)
	}
	if o.PrevIndex != 0 {
		q.Set("prevIndex", strconv.FormatUint(o.PrevIndex, 10))
	}
	if o.Dir {
		q.Set("dir", "true")
	}
	if o.Recursive {
		q.Set("recursive", "true")
	}
	return c.keys(ctx, &request{method: "DELETE", path: keyPath(key), query: q}, true)
}

// CompareAndDelete removes key if its value is prevValue and its modified
// index is prevIndex (as CompareAndSwap compares).
func (c *Client) CompareAndDelete(ctx context.Context, key, prevValue string, prevIndex uint64) (*Response, error) {
	if prevValue == "" && prevIndex == 0 {
		return nil, fmt.Errorf("etcd client: compare-and-delete %s: needs a previous value or index", key)
	}
	return c.Delete(ctx, key, &DeleteOptions{PrevValue: prevValue, PrevIndex: prevIndex})
}

// keys sends a keys API request and decodes its answer.
func (c *Client) keys(ctx context.Context, r *request, wantNode bool) (*Response, error) {
	rep, err := c.do(ctx, r)
	if err != nil {
		return nil, err
	}
	return decodeKeys(rep.status, rep.header, rep.body, wantNode)
}

// Watcher follows the changes of a key (or a subtree) one event at a time.
// A Watcher is not safe for concurrent use; it holds no connection between
// calls to Next.
type Watcher struct {
	c         *Client
	key       string
	recursive bool
	waitIndex uint64 // the index of the next event to ask for; 0 means from now
}

// Watcher returns a Watcher of key. It does not contact the cluster.
func (c *Client) Watcher(key string, o *WatcherOptions) *Watcher {
	w := &Watcher{c: c, key: key}
	if o != nil {
		w.recursive = o.Recursive
		if o.AfterIndex > 0 {
			w.waitIndex = o.AfterIndex + 1
		}
	}
	return w
}

// Next waits for the next event and returns it; the Watcher then asks for
// the events after it. Next long-polls one endpoint; when that endpoint
// fails it asks the next one from the same index, so no event is lost to a
// member's death or a leader change. It returns an error when the call's
// attempts run out (calling Next again resumes from the same index), when
// the context ends, or when etcd answers an error — notably 401 (see
// IsEventIndexCleared) when the watched index fell out of etcd's history.
func (w *Watcher) Next(ctx context.Context) (*Response, error) {
	for {
		q := url.Values{"wait": {"true"}}
		if w.waitIndex > 0 {
			q.Set("waitIndex", strconv.FormatUint(w.waitIndex, 10))
		}
		if w.recursive {
			q.Set("recursive", "true")
		}
		rep, err := w.c.do(ctx, &request{method: "GET", path: keyPath(w.key), query: q, wait: true})
		if err != nil {
			return nil, err
		}
		resp, err := decodeKeys(rep.status, rep.header, rep.body, true)
		if errors.Is(err, errEmptyBody) {
			// etcd ended the poll without an event (its watcher was
			// dropped); ask again from the same index.
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		w.waitIndex = resp.Node.ModifiedIndex + 1
		return resp, nil
	}
}
