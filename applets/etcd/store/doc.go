// Package store is the registry's data model: the etcd v2 key space exactly
// as etcd 3.4 serves it on /v2/keys — keys and directories, TTLs, hidden
// and in-order keys, compare-and-swap and compare-and-delete, the etcd
// index, the watcher hub with its 1000-event history, etcd's v2 error codes
// and the /v2/stats/store counters.
//
// It owns the semantics and nothing around them. It has no HTTP: the
// server translates requests into a Command or a Get/Watch call and writes
// the returned Event, Node and Error as JSON (their JSON tags are etcd's).
// It has no raft: a Command is marshalled by the proposer, replicated by
// the raft layer and handed to Apply on every member in log order; Apply is
// deterministic, so every member ends with the same store. It reads no
// clock: every time it needs comes in a Command (absolute expirations,
// the proposer's time) or as the now argument of Get and Expired, and keys
// expire only when the leader proposes the "expire" commands Expired
// returns.
//
// The key space is the one behind /v2/keys: the root "/" is etcd's "/1"
// (read only, key "" in JSON); etcd's internal "/0" namespace is not here.
package store
