package client

import (
	"errors"
	"fmt"
	"strings"
)

// The v2 API's error codes (etcd's error/error.go).
const (
	ErrorCodeKeyNotFound  = 100
	ErrorCodeTestFailed   = 101 // compare failed: prevValue or prevIndex differ
	ErrorCodeNotFile      = 102
	ErrorCodeNotDir       = 104
	ErrorCodeNodeExist    = 105
	ErrorCodeRootROnly    = 107
	ErrorCodeDirNotEmpty  = 108
	ErrorCodeUnauthorized = 110

	ErrorCodeValueRequired        = 200
	ErrorCodePrevValueRequired    = 201
	ErrorCodeTTLNaN               = 202
	ErrorCodeIndexNaN             = 203
	ErrorCodeValueOrTTLRequired   = 204
	ErrorCodeTimeoutNaN           = 205
	ErrorCodeNameRequired         = 206
	ErrorCodeIndexOrValueRequired = 207
	ErrorCodeIndexValueMutex      = 208
	ErrorCodeInvalidField         = 209
	ErrorCodeInvalidForm          = 210
	ErrorCodeRefreshValue         = 211
	ErrorCodeRefreshTTLRequired   = 212

	ErrorCodeRaftInternal = 300
	ErrorCodeLeaderElect  = 301

	ErrorCodeWatcherCleared    = 400
	ErrorCodeEventIndexCleared = 401 // the watched index is older than the kept history
)

// Error is an error answered by etcd: the JSON body of a failed keys request.
type Error struct {
	Code    int    `json:"errorCode"`
	Message string `json:"message"`
	Cause   string `json:"cause"`
	Index   uint64 `json:"index"` // the store's index when the request failed
}

// Error formats e as etcdctl prints it: "100: Key not found (/foo) [12]".
func (e *Error) Error() string {
	return fmt.Sprintf("%d: %s (%s) [%d]", e.Code, e.Message, e.Cause, e.Index)
}

// ErrorCode returns the etcd error code carried by err, or 0 when err is not
// (or does not wrap) an *Error.
func ErrorCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// IsKeyNotFound reports whether err is etcd's 100 "Key not found".
func IsKeyNotFound(err error) bool { return ErrorCode(err) == ErrorCodeKeyNotFound }

// IsCompareFailed reports whether err is etcd's 101 "Compare failed": a
// compare-and-swap or compare-and-delete lost.
func IsCompareFailed(err error) bool { return ErrorCode(err) == ErrorCodeTestFailed }

// IsNodeExist reports whether err is etcd's 105 "Key already exists".
func IsNodeExist(err error) bool { return ErrorCode(err) == ErrorCodeNodeExist }

// IsEventIndexCleared reports whether err is etcd's 401: a watch asked for
// an index older than the history etcd keeps (the last 1000 events). The
// watcher's caller must read the current state again and watch from there.
func IsEventIndexCleared(err error) bool { return ErrorCode(err) == ErrorCodeEventIndexCleared }

// ClusterError is the error of a call for which every attempt failed. Errors
// holds each attempt's error in order.
type ClusterError struct {
	Errors []error
}

// Error formats e as etcd's Go client does, which etcdctl prints.
func (e *ClusterError) Error() string {
	var b strings.Builder
	b.WriteString("client: etcd cluster is unavailable or misconfigured")
	for i, err := range e.Errors {
		fmt.Fprintf(&b, "; error #%d: %s\n", i, err)
	}
	return b.String()
}

// Detail lists the attempts' errors one per line.
func (e *ClusterError) Detail() string {
	var b strings.Builder
	for i, err := range e.Errors {
		fmt.Fprintf(&b, "error #%d: %s\n", i, err)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As the attempts' errors.
func (e *ClusterError) Unwrap() []error { return e.Errors }

// ErrNoEndpoints is Sync's error when the cluster publishes no client URL.
var ErrNoEndpoints = errors.New("client: no endpoints available")

// ErrUnhealthy is Health's error when a member answers that it is unhealthy.
var ErrUnhealthy = errors.New("unhealthy")

// MemberError is the members API's refusal of a change (a 404 or 409 with
// a {"message": …} body), such as "membership: peerURL exists".
type MemberError struct {
	StatusCode int
	Message    string `json:"message"`
}

func (e *MemberError) Error() string { return e.Message }
