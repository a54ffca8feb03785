package faulttest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client makes the v2 calls the tests need against one member at a time.
// It never retries and never moves to another member: a test chooses the
// member, and a lost answer stays a lost answer.
type Client struct {
	http   *http.Client
	stream *http.Client // for watches: no timeout but the context's
}

// NewClient returns a client whose calls give up after timeout (watches
// run until their context ends).
func NewClient(timeout time.Duration) *Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}
	return &Client{http: &http.Client{Timeout: timeout, Transport: tr}, stream: &http.Client{Transport: tr}}
}

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// Node is a v2 key's node.
type Node struct {
	Key           string  `json:"key"`
	Value         string  `json:"value"`
	Dir           bool    `json:"dir,omitempty"`
	Nodes         []*Node `json:"nodes,omitempty"`
	ModifiedIndex uint64  `json:"modifiedIndex"`
	CreatedIndex  uint64  `json:"createdIndex"`
}

// Response is a successful /v2/keys answer.
type Response struct {
	Action   string `json:"action"`
	Node     *Node  `json:"node"`
	PrevNode *Node  `json:"prevNode,omitempty"`
	// RaftIndex is the X-Raft-Index header: the member's applied index.
	RaftIndex uint64 `json:"-"`
	// EtcdIndex is the X-Etcd-Index header: the store's index.
	EtcdIndex uint64 `json:"-"`
}

// EtcdError is an error answer of the v2 API: the server decided.
type EtcdError struct {
	Status    int    `json:"-"`
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

func (e *EtcdError) Error() string {
	return fmt.Sprintf("%d %s (%s) [%d]", e.ErrorCode, e.Message, e.Cause, e.Index)
}

// Definite reports whether the error is a decision about the request
// itself (a failed comparison, a missing key, a bad form: codes below 300)
// rather than raft trouble (300, 301) after which a write may or may not
// have been applied.
func (e *EtcdError) Definite() bool { return e.ErrorCode < 300 }

// Code is err's etcd error code, or 0 when err is not an *EtcdError.
func Code(err error) int {
	if e, ok := err.(*EtcdError); ok {
		return e.ErrorCode
	}
	return 0
}

// Get reads key on the member at base (a client URL); quorum asks for a
// linearizable read.
func (c *Client) Get(ctx context.Context, base, key string, quorum bool) (*Response, error) {
	q := ""
	if quorum {
		q = "?quorum=true"
	}
	return c.keys(ctx, http.MethodGet, base+"/v2/keys"+key+q, nil)
}

// Set writes key unconditionally.
func (c *Client) Set(ctx context.Context, base, key, value string) (*Response, error) {
	return c.keys(ctx, http.MethodPut, base+"/v2/keys"+key, url.Values{"value": {value}})
}

// CompareAndSwap writes key if its current value is prev.
func (c *Client) CompareAndSwap(ctx context.Context, base, key, value, prev string) (*Response, error) {
	return c.keys(ctx, http.MethodPut, base+"/v2/keys"+key, url.Values{"value": {value}, "prevValue": {prev}})
}

// Delete removes key.
func (c *Client) Delete(ctx context.Context, base, key string) (*Response, error) {
	return c.keys(ctx, http.MethodDelete, base+"/v2/keys"+key, nil)
}

func (c *Client) keys(ctx context.Context, method, u string, form url.Values) (*Response, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if resp.StatusCode >= 300 {
		e := &EtcdError{Status: resp.StatusCode}
		if err := json.Unmarshal(b, e); err != nil || e.ErrorCode == 0 {
			return nil, fmt.Errorf("%s %s: %s: %q", method, u, resp.Status, b)
		}
		return nil, e
	}
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s %s: decoding %q: %w", method, u, b, err)
	}
	fmt.Sscan(resp.Header.Get("X-Raft-Index"), &r.RaftIndex)
	fmt.Sscan(resp.Header.Get("X-Etcd-Index"), &r.EtcdIndex)
	return &r, nil
}

// Watch streams the events of key and everything below it from the store
// index since on (wait=true&recursive=true&stream=true&waitIndex=since),
// calling fn for each, until ctx ends, the stream breaks or fn fails. An
// index older than the member's event history is the *EtcdError 401.
func (c *Client) Watch(ctx context.Context, base, key string, since uint64, fn func(*Response) error) error {
	u := fmt.Sprintf("%s/v2/keys%s?wait=true&recursive=true&stream=true&waitIndex=%d", base, key, since)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	if resp.StatusCode >= 300 {
		e := &EtcdError{Status: resp.StatusCode}
		if err := dec.Decode(e); err != nil || e.ErrorCode == 0 {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return e
	}
	for {
		var r Response
		if err := dec.Decode(&r); err != nil {
			return fmt.Errorf("watching %s on %s: %w", key, base, err)
		}
		if r.Node == nil {
			return fmt.Errorf("watching %s on %s: an event without a node", key, base)
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
}

// MemberInfo is one entry of /v2/members.
type MemberInfo struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

// Members lists the cluster's members as the member at base knows them.
func (c *Client) Members(ctx context.Context, base string) ([]MemberInfo, error) {
	var out struct {
		Members []MemberInfo `json:"members"`
	}
	err := c.call(ctx, http.MethodGet, base+"/v2/members", nil, http.StatusOK, &out)
	return out.Members, err
}

// AddMember adds a member with the given peer URL through the member at base.
func (c *Client) AddMember(ctx context.Context, base, peerURL string) (MemberInfo, error) {
	var m MemberInfo
	body, _ := json.Marshal(map[string][]string{"peerURLs": {peerURL}})
	err := c.call(ctx, http.MethodPost, base+"/v2/members", body, http.StatusCreated, &m)
	return m, err
}

// RemoveMember removes the member with id through the member at base.
func (c *Client) RemoveMember(ctx context.Context, base, id string) error {
	return c.call(ctx, http.MethodDelete, base+"/v2/members/"+id, nil, http.StatusNoContent, nil)
}

// SelfStats is the part of /v2/stats/self the tests read.
type SelfStats struct {
	Name       string `json:"name"`
	ID         string `json:"id"`
	State      string `json:"state"` // StateLeader or StateFollower
	LeaderInfo struct {
		Leader string `json:"leader"`
	} `json:"leaderInfo"`
}

// Self returns the member's /v2/stats/self.
func (c *Client) Self(ctx context.Context, base string) (SelfStats, error) {
	var st SelfStats
	err := c.call(ctx, http.MethodGet, base+"/v2/stats/self", nil, http.StatusOK, &st)
	return st, err
}

func (c *Client) call(ctx context.Context, method, u string, body []byte, want int, out any) error {
	var r io.Reader
	if body != nil {
		r = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decoding %q: %w", method, u, b, err)
	}
	return nil
}
