package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// errEmptyBody is a 200 answer without a body: a watch that etcd ended
// without an event.
var errEmptyBody = errors.New("etcd client: empty answer")

// decodeKeys turns a keys API answer into a Response (200, 201) or an error:
// an *Error when the body is etcd's error JSON, a plain error otherwise.
// With wantNode, a success without a node is an error, so that callers may
// use Response.Node without checking it.
func decodeKeys(status int, header http.Header, body []byte, wantNode bool) (*Response, error) {
	if status != http.StatusOK && status != http.StatusCreated {
		return nil, decodeError(status, body)
	}
	if len(body) == 0 {
		return nil, errEmptyBody
	}
	var resp Response
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("etcd client: decoding a %d answer: %w", status, err)
	}
	if wantNode && resp.Node == nil {
		return nil, fmt.Errorf("etcd client: a %d answer without a node: %s", status, excerpt(body))
	}
	var err error
	if resp.Index, err = headerUint(header, "X-Etcd-Index"); err != nil {
		return nil, err
	}
	if resp.RaftIndex, err = headerUint(header, "X-Raft-Index"); err != nil {
		return nil, err
	}
	if resp.RaftTerm, err = headerUint(header, "X-Raft-Term"); err != nil {
		return nil, err
	}
	resp.ClusterID = header.Get("X-Etcd-Cluster-Id")
	return &resp, nil
}

// decodeError turns a failed answer into an *Error, or into a plain error
// when the body is not etcd's error JSON.
func decodeError(status int, body []byte) error {
	var e Error
	if err := json.Unmarshal(body, &e); err != nil || e.Code == 0 {
		return fmt.Errorf("etcd client: unexpected answer %d %s: %s", status, http.StatusText(status), excerpt(body))
	}
	return &e
}

// headerUint reads an optional unsigned header.
func headerUint(h http.Header, name string) (uint64, error) {
	v := h.Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("etcd client: header %s: %w", name, err)
	}
	return n, nil
}

// excerpt quotes the start of a body for an error message.
func excerpt(body []byte) string {
	const max = 200
	if len(body) > max {
		return strconv.Quote(string(body[:max])) + "…"
	}
	return strconv.Quote(string(body))
}
