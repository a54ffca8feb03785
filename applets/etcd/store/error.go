package store

import "net/http"

// etcd's v2 error codes (etcdserver/api/v2error), all of them, including
// the ones etcd 3.4 no longer produces.
const (
	EcodeKeyNotFound      = 100
	EcodeTestFailed       = 101
	EcodeNotFile          = 102
	EcodeNoMorePeer       = 103
	EcodeNotDir           = 104
	EcodeNodeExist        = 105
	EcodeKeyIsPreserved   = 106
	EcodeRootROnly        = 107
	EcodeDirNotEmpty      = 108
	EcodeExistingPeerAddr = 109
	EcodeUnauthorized     = 110

	EcodeValueRequired        = 200
	EcodePrevValueRequired    = 201
	EcodeTTLNaN               = 202
	EcodeIndexNaN             = 203
	EcodeValueOrTTLRequired   = 204
	EcodeTimeoutNaN           = 205
	EcodeNameRequired         = 206
	EcodeIndexOrValueRequired = 207
	EcodeIndexValueMutex      = 208
	EcodeInvalidField         = 209
	EcodeInvalidForm          = 210
	EcodeRefreshValue         = 211
	EcodeRefreshTTLRequired   = 212

	EcodeRaftInternal = 300
	EcodeLeaderElect  = 301

	EcodeWatcherCleared     = 400
	EcodeEventIndexCleared  = 401
	EcodeStandbyInternal    = 402
	EcodeInvalidActiveSize  = 403
	EcodeInvalidRemoveDelay = 404

	EcodeClientInternal = 500
)

var errorMessages = map[int]string{
	EcodeKeyNotFound:      "Key not found",
	EcodeTestFailed:       "Compare failed",
	EcodeNotFile:          "Not a file",
	EcodeNoMorePeer:       "Reached the max number of peers in the cluster",
	EcodeNotDir:           "Not a directory",
	EcodeNodeExist:        "Key already exists",
	EcodeKeyIsPreserved:   "The prefix of given key is a keyword in etcd",
	EcodeRootROnly:        "Root is read only",
	EcodeDirNotEmpty:      "Directory not empty",
	EcodeExistingPeerAddr: "Peer address has existed",
	EcodeUnauthorized:     "The request requires user authentication",

	EcodeValueRequired:        "Value is Required in POST form",
	EcodePrevValueRequired:    "PrevValue is Required in POST form",
	EcodeTTLNaN:               "The given TTL in POST form is not a number",
	EcodeIndexNaN:             "The given index in POST form is not a number",
	EcodeValueOrTTLRequired:   "Value or TTL is required in POST form",
	EcodeTimeoutNaN:           "The given timeout in POST form is not a number",
	EcodeNameRequired:         "Name is required in POST form",
	EcodeIndexOrValueRequired: "Index or value is required",
	EcodeIndexValueMutex:      "Index and value cannot both be specified",
	EcodeInvalidField:         "Invalid field",
	EcodeInvalidForm:          "Invalid POST form",
	EcodeRefreshValue:         "Value provided on refresh",
	EcodeRefreshTTLRequired:   "A TTL must be provided on refresh",

	EcodeRaftInternal: "Raft Internal Error",
	EcodeLeaderElect:  "During Leader Election",

	EcodeWatcherCleared:     "watcher is cleared due to etcd recovery",
	EcodeEventIndexCleared:  "The event in requested index is outdated and cleared",
	EcodeStandbyInternal:    "Standby Internal Error",
	EcodeInvalidActiveSize:  "Invalid active size",
	EcodeInvalidRemoveDelay: "Standby remove delay",

	EcodeClientInternal: "Client Internal Error",
}

// errorStatus is etcd's HTTP status per code; every other code is 400.
var errorStatus = map[int]int{
	EcodeKeyNotFound:  http.StatusNotFound,
	EcodeNotFile:      http.StatusForbidden,
	EcodeDirNotEmpty:  http.StatusForbidden,
	EcodeUnauthorized: http.StatusUnauthorized,
	EcodeTestFailed:   http.StatusPreconditionFailed,
	EcodeNodeExist:    http.StatusPreconditionFailed,
	EcodeRaftInternal: http.StatusInternalServerError,
	EcodeLeaderElect:  http.StatusInternalServerError,
}

// Error is an etcd v2 error, marshalled as etcd's error JSON. Index is the
// etcd index when the error happened (X-Etcd-Index of the error response).
type Error struct {
	ErrorCode int    `json:"errorCode"`
	Message   string `json:"message"`
	Cause     string `json:"cause,omitempty"`
	Index     uint64 `json:"index"`
}

// NewError returns the error with code's etcd message. An unknown code gets
// an empty message.
func NewError(code int, cause string, index uint64) *Error {
	return &Error{ErrorCode: code, Message: errorMessages[code], Cause: cause, Index: index}
}

// Error formats as etcd does: "Message (Cause)".
func (e *Error) Error() string {
	return e.Message + " (" + e.Cause + ")"
}

// StatusCode is the HTTP status etcd answers this error with.
func (e *Error) StatusCode() int {
	if s, ok := errorStatus[e.ErrorCode]; ok {
		return s
	}
	return http.StatusBadRequest
}
