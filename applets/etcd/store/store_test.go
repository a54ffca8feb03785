package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// t0 is the proposers' clock in these tests.
var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func toJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// result is an Apply or Get outcome as etcd's JSON: the event, or the error.
func result(t testing.TB, e *Event, err error) string {
	t.Helper()
	if err != nil {
		var se *Error
		if !errors.As(err, &se) {
			t.Fatalf("not an etcd error: %v", err)
		}
		return toJSON(t, se)
	}
	if e == nil {
		return "no-op"
	}
	return toJSON(t, e)
}

func mustApply(t *testing.T, s *Store, cs ...Command) {
	t.Helper()
	for _, c := range cs {
		if c.Time.IsZero() {
			c.Time = t0
		}
		if _, err := s.Apply(c); err != nil {
			t.Fatalf("apply %+v: %v", c, err)
		}
	}
}

func set(key, value string) Command { return Command{Op: ActionSet, Key: key, Value: value, Time: t0} }
func mkdir(key string) Command      { return Command{Op: ActionSet, Key: key, Dir: true, Time: t0} }

// TestApply runs each etcd v2 API case (named after the etcd v2 API
// document's sections) on a fresh store after its setup, and compares the
// answer with what etcd 3.4 answers on /v2/keys.
func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		setup []Command
		c     Command
		want  string
	}{
		{
			name: "Setting the value of a key",
			c:    set("/message", "Hello world"),
			want: `{"action":"set","node":{"key":"/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Changing the value of a key",
			setup: []Command{set("/message", "Hello world")},
			c:     set("/message", "Hello etcd"),
			want:  `{"action":"set","node":{"key":"/message","value":"Hello etcd","modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/message","value":"Hello world","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Deleting a key",
			setup: []Command{set("/message", "Hello etcd")},
			c:     Command{Op: ActionDelete, Key: "/message"},
			want:  `{"action":"delete","node":{"key":"/message","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/message","value":"Hello etcd","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name: "Using key TTL",
			c:    Command{Op: ActionSet, Key: "/foo", Value: "bar", Expiration: at(5 * time.Second), Time: t0},
			want: `{"action":"set","node":{"key":"/foo","value":"bar","expiration":"2024-01-01T00:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name: "Using key TTL: TTL rounded up at the proposer's time",
			c:    Command{Op: ActionSet, Key: "/foo", Value: "bar", Expiration: at(5 * time.Second), Time: at(100 * time.Millisecond)},
			want: `{"action":"set","node":{"key":"/foo","value":"bar","expiration":"2024-01-01T00:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Using key TTL: unset TTL with prevExist=true",
			setup: []Command{{Op: ActionSet, Key: "/foo", Value: "bar", Expiration: at(5 * time.Second)}},
			c:     Command{Op: ActionSet, Key: "/foo", Value: "bar", PrevExist: yes(), Time: at(time.Second)},
			want:  `{"action":"update","node":{"key":"/foo","value":"bar","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"bar","expiration":"2024-01-01T00:00:05Z","ttl":4,"modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Refreshing key TTL",
			setup: []Command{{Op: ActionSet, Key: "/foo", Value: "bar", Expiration: at(5 * time.Second)}},
			c:     Command{Op: ActionSet, Key: "/foo", Refresh: true, PrevExist: yes(), Expiration: at(35 * time.Second), Time: at(5 * time.Second)},
			want:  `{"action":"update","node":{"key":"/foo","value":"bar","expiration":"2024-01-01T00:00:35Z","ttl":30,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"bar","expiration":"2024-01-01T00:00:05Z","modifiedIndex":1,"createdIndex":1},"refresh":true}`,
		},
		{
			name:  "Refreshing key TTL: refresh without prevExist replaces the node",
			setup: []Command{{Op: ActionSet, Key: "/foo", Value: "bar", Expiration: at(5 * time.Second)}},
			c:     Command{Op: ActionSet, Key: "/foo", Refresh: true, Expiration: at(10 * time.Second), Time: t0},
			want:  `{"action":"set","node":{"key":"/foo","value":"bar","expiration":"2024-01-01T00:00:10Z","ttl":10,"modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/foo","value":"bar","expiration":"2024-01-01T00:00:05Z","ttl":5,"modifiedIndex":1,"createdIndex":1},"refresh":true}`,
		},
		{
			name: "Refreshing key TTL: missing key",
			c:    Command{Op: ActionSet, Key: "/foo", Refresh: true, Expiration: at(10 * time.Second), Time: t0},
			want: `{"errorCode":100,"message":"Key not found","cause":"/foo","index":0}`,
		},
		{
			name:  "Refreshing key TTL: compareAndSwap keeps the value",
			setup: []Command{set("/foo", "bar")},
			c:     Command{Op: ActionSet, Key: "/foo", PrevValue: "bar", Refresh: true, Expiration: at(10 * time.Second), Time: t0},
			want:  `{"action":"compareAndSwap","node":{"key":"/foo","value":"bar","expiration":"2024-01-01T00:00:10Z","ttl":10,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"bar","modifiedIndex":1,"createdIndex":1},"refresh":true}`,
		},
		{
			name:  "Creating Directories: intermediate directories",
			setup: []Command{set("/a/b/c", "v")},
			c:     set("/a/b/d", "w"),
			want:  `{"action":"set","node":{"key":"/a/b/d","value":"w","modifiedIndex":2,"createdIndex":2}}`,
		},
		{
			name: "Creating Directories",
			c:    mkdir("/dir"),
			want: `{"action":"set","node":{"key":"/dir","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Creating Directories: set on a directory",
			setup: []Command{mkdir("/dir")},
			c:     set("/dir", "x"),
			want:  `{"errorCode":102,"message":"Not a file","cause":"/dir","index":1}`,
		},
		{
			name:  "Creating Directories: a directory again",
			setup: []Command{mkdir("/dir")},
			c:     mkdir("/dir"),
			want:  `{"errorCode":102,"message":"Not a file","cause":"/dir","index":1}`,
		},
		{
			name:  "Creating Directories: set dir=true replaces a key",
			setup: []Command{set("/k", "v")},
			c:     mkdir("/k"),
			want:  `{"action":"set","node":{"key":"/k","dir":true,"modifiedIndex":2,"createdIndex":2},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Creating Directories: a key under a key",
			setup: []Command{set("/file", "v")},
			c:     set("/file/child", "w"),
			want:  `{"errorCode":104,"message":"Not a directory","cause":"/file","index":1}`,
		},
		{
			name:  "Creating Directories: create under a key",
			setup: []Command{set("/file", "v")},
			c:     Command{Op: ActionCreate, Key: "/file/a/b", Value: "w", Time: t0},
			want:  `{"errorCode":104,"message":"Not a directory","cause":"/file","index":1}`,
		},
		{
			name: "Atomically Creating In-Order Keys",
			c:    Command{Op: ActionCreate, Key: "/queue", Value: "Job1", Unique: true, Time: t0},
			want: `{"action":"create","node":{"key":"/queue/00000000000000000001","value":"Job1","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Atomically Creating In-Order Keys: the next one",
			setup: []Command{{Op: ActionCreate, Key: "/queue", Value: "Job1", Unique: true}, set("/other", "x")},
			c:     Command{Op: ActionCreate, Key: "/queue", Value: "Job2", Unique: true, Time: t0},
			want:  `{"action":"create","node":{"key":"/queue/00000000000000000003","value":"Job2","modifiedIndex":3,"createdIndex":3}}`,
		},
		{
			name: "Atomically Creating In-Order Keys: at the root",
			c:    Command{Op: ActionCreate, Key: "/", Value: "x", Unique: true, Time: t0},
			want: `{"action":"create","node":{"key":"/00000000000000000001","value":"x","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Atomically Creating In-Order Keys: in-order directory",
			setup: []Command{set("/x", "y")},
			c:     Command{Op: ActionCreate, Key: "/queue", Dir: true, Unique: true, Time: t0},
			want:  `{"action":"create","node":{"key":"/queue/00000000000000000002","dir":true,"modifiedIndex":2,"createdIndex":2}}`,
		},
		{
			name: "Atomic Compare-and-Swap: prevExist=false creates",
			c:    Command{Op: ActionSet, Key: "/foo", Value: "three", PrevExist: no(), Time: t0},
			want: `{"action":"create","node":{"key":"/foo","value":"three","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Atomic Compare-and-Swap: prevExist=false on an existing key",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionSet, Key: "/foo", Value: "three", PrevExist: no(), Time: t0},
			want:  `{"errorCode":105,"message":"Key already exists","cause":"/foo","index":1}`,
		},
		{
			name:  "Atomic Compare-and-Swap: create on an existing directory",
			setup: []Command{mkdir("/dir")},
			c:     Command{Op: ActionCreate, Key: "/dir", Dir: true, Time: t0},
			want:  `{"errorCode":105,"message":"Key already exists","cause":"/dir","index":1}`,
		},
		{
			name:  "Atomic Compare-and-Swap: prevExist=true updates",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionSet, Key: "/foo", Value: "two", PrevExist: yes(), Time: t0},
			want:  `{"action":"update","node":{"key":"/foo","value":"two","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"one","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name: "Atomic Compare-and-Swap: prevExist=true on a missing key",
			c:    Command{Op: ActionSet, Key: "/foo", Value: "two", PrevExist: yes(), Time: t0},
			want: `{"errorCode":100,"message":"Key not found","cause":"/foo","index":0}`,
		},
		{
			name:  "Atomic Compare-and-Swap: update names the first missing element",
			setup: []Command{set("/x", "y")},
			c:     Command{Op: ActionUpdate, Key: "/a/b/c", Value: "two", Time: t0},
			want:  `{"errorCode":100,"message":"Key not found","cause":"/a","index":1}`,
		},
		{
			name:  "Atomic Compare-and-Swap: prevValue mismatch",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionSet, Key: "/foo", Value: "three", PrevValue: "two", Time: t0},
			want:  `{"errorCode":101,"message":"Compare failed","cause":"[two != one]","index":1}`,
		},
		{
			name:  "Atomic Compare-and-Swap: prevIndex mismatch",
			setup: []Command{set("/x", "y"), set("/foo", "one")},
			c:     Command{Op: ActionSet, Key: "/foo", Value: "three", PrevIndex: 1, Time: t0},
			want:  `{"errorCode":101,"message":"Compare failed","cause":"[1 != 2]","index":2}`,
		},
		{
			name:  "Atomic Compare-and-Swap: both mismatch",
			setup: []Command{set("/x", "y"), set("/foo", "one")},
			c:     Command{Op: ActionCompareAndSwap, Key: "/foo", Value: "three", PrevValue: "two", PrevIndex: 1, Time: t0},
			want:  `{"errorCode":101,"message":"Compare failed","cause":"[two != one] [1 != 2]","index":2}`,
		},
		{
			name:  "Atomic Compare-and-Swap: prevIndex matches, prevValue does not",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionCompareAndSwap, Key: "/foo", Value: "three", PrevValue: "two", PrevIndex: 1, Time: t0},
			want:  `{"errorCode":101,"message":"Compare failed","cause":"[two != one]","index":1}`,
		},
		{
			name:  "Atomic Compare-and-Swap: success",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionSet, Key: "/foo", Value: "two", PrevValue: "one", Time: t0},
			want:  `{"action":"compareAndSwap","node":{"key":"/foo","value":"two","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"one","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Atomic Compare-and-Swap: prevExist=true with prevIndex",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionSet, Key: "/foo", Value: "two", PrevExist: yes(), PrevIndex: 1, Expiration: at(3 * time.Second), Time: t0},
			want:  `{"action":"compareAndSwap","node":{"key":"/foo","value":"two","expiration":"2024-01-01T00:00:03Z","ttl":3,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"one","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Atomic Compare-and-Swap: on a directory",
			setup: []Command{mkdir("/dir")},
			c:     Command{Op: ActionSet, Key: "/dir", Value: "two", PrevValue: "one", Time: t0},
			want:  `{"errorCode":102,"message":"Not a file","cause":"/dir","index":1}`,
		},
		{
			name: "Atomic Compare-and-Swap: missing key",
			c:    Command{Op: ActionSet, Key: "/foo", Value: "two", PrevValue: "one", Time: t0},
			want: `{"errorCode":100,"message":"Key not found","cause":"/foo","index":0}`,
		},
		{
			name:  "Atomic Compare-and-Delete: prevValue mismatch",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionDelete, Key: "/foo", PrevValue: "two", Time: t0},
			want:  `{"errorCode":101,"message":"Compare failed","cause":"[two != one]","index":1}`,
		},
		{
			name:  "Atomic Compare-and-Delete: prevIndex mismatch",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionDelete, Key: "/foo", PrevIndex: 2, Time: t0},
			want:  `{"errorCode":101,"message":"Compare failed","cause":"[2 != 1]","index":1}`,
		},
		{
			name:  "Atomic Compare-and-Delete: success",
			setup: []Command{set("/foo", "one")},
			c:     Command{Op: ActionDelete, Key: "/foo", PrevIndex: 1, Time: t0},
			want:  `{"action":"compareAndDelete","node":{"key":"/foo","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/foo","value":"one","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Atomic Compare-and-Delete: on a directory",
			setup: []Command{mkdir("/dir")},
			c:     Command{Op: ActionCompareAndDelete, Key: "/dir", PrevValue: "x", Time: t0},
			want:  `{"errorCode":102,"message":"Not a file","cause":"/dir","index":1}`,
		},
		{
			name: "Atomic Compare-and-Delete: the root (etcd's cause is its trimmed \"/1\")",
			c:    Command{Op: ActionCompareAndDelete, Key: "/", PrevValue: "x", Time: t0},
			want: `{"errorCode":102,"message":"Not a file","index":0}`,
		},
		{
			name:  "Deleting a Directory: without dir=true",
			setup: []Command{mkdir("/dir")},
			c:     Command{Op: ActionDelete, Key: "/dir", Time: t0},
			want:  `{"errorCode":102,"message":"Not a file","cause":"/dir","index":1}`,
		},
		{
			name:  "Deleting a Directory: empty, dir=true",
			setup: []Command{mkdir("/dir")},
			c:     Command{Op: ActionDelete, Key: "/dir", Dir: true, Time: t0},
			want:  `{"action":"delete","node":{"key":"/dir","dir":true,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/dir","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Deleting a Directory: not empty, dir=true",
			setup: []Command{set("/dir/a", "x")},
			c:     Command{Op: ActionDelete, Key: "/dir", Dir: true, Time: t0},
			want:  `{"errorCode":108,"message":"Directory not empty","cause":"/dir","index":1}`,
		},
		{
			name:  "Deleting a Directory: recursive=true",
			setup: []Command{set("/dir/a/b", "x"), set("/dir/c", "y")},
			c:     Command{Op: ActionDelete, Key: "/dir", Recursive: true, Time: t0},
			want:  `{"action":"delete","node":{"key":"/dir","dir":true,"modifiedIndex":3,"createdIndex":1},"prevNode":{"key":"/dir","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Deleting a Directory: dir=true deletes a key too",
			setup: []Command{set("/k", "v")},
			c:     Command{Op: ActionDelete, Key: "/k", Dir: true, Time: t0},
			want:  `{"action":"delete","node":{"key":"/k","modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/k","value":"v","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Deleting a key: missing, below a missing directory",
			setup: []Command{set("/k", "v")},
			c:     Command{Op: ActionDelete, Key: "/nope/deeper", Time: t0},
			want:  `{"errorCode":100,"message":"Key not found","cause":"/nope","index":1}`,
		},
		{
			name:  "Using a directory TTL",
			setup: []Command{mkdir("/dir")},
			c:     Command{Op: ActionSet, Key: "/dir", Dir: true, PrevExist: yes(), Expiration: at(30 * time.Second), Time: t0},
			want:  `{"action":"update","node":{"key":"/dir","dir":true,"expiration":"2024-01-01T00:00:30Z","ttl":30,"modifiedIndex":2,"createdIndex":1},"prevNode":{"key":"/dir","dir":true,"modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name:  "Using a directory TTL: a directory has no value",
			setup: []Command{mkdir("/dir")},
			c:     Command{Op: ActionUpdate, Key: "/dir", Value: "x", Time: t0},
			want:  `{"errorCode":102,"message":"Not a file","cause":"/dir","index":1}`,
		},
		{
			name: "Root is read only: set",
			c:    set("/", "x"),
			want: `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
		},
		{
			name: "Root is read only: create",
			c:    Command{Op: ActionCreate, Key: "", Dir: true, Time: t0},
			want: `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
		},
		{
			name: "Root is read only: update",
			c:    Command{Op: ActionUpdate, Key: "/", Time: t0},
			want: `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
		},
		{
			name: "Root is read only: compareAndSwap",
			c:    Command{Op: ActionCompareAndSwap, Key: "/", PrevValue: "x", Time: t0},
			want: `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
		},
		{
			name: "Root is read only: delete",
			c:    Command{Op: ActionDelete, Key: "/", Recursive: true, Time: t0},
			want: `{"errorCode":107,"message":"Root is read only","cause":"/","index":0}`,
		},
		{
			name: "Keys are cleaned as etcd cleans them",
			c:    set("foo//bar/", "x"),
			want: `{"action":"set","node":{"key":"/foo/bar","value":"x","modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name: "Expirations before 2000 are permanent, as in etcd",
			c:    Command{Op: ActionSet, Key: "/foo", Value: "x", Expiration: time.Unix(1, 0), Time: t0},
			want: `{"action":"set","node":{"key":"/foo","value":"x","modifiedIndex":1,"createdIndex":1}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			mustApply(t, s, tt.setup...)
			before := s.Index()
			e, err := s.Apply(tt.c)
			got := result(t, e, err)
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if strings.Contains(tt.want, `"errorCode"`) && s.Index() != before {
				t.Errorf("a failed command moved the index from %d to %d", before, s.Index())
			}
		})
	}
}

// state is the snapshot of s without its counters.
func state(s *Store) []byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return encodeSnapshot(s.index, [numCounters]uint64{}, s.root, s.history.events())
}

// TestApplyFailureChangesNothing: an etcd error leaves the tree, index and
// history as they were; only its failure counter moves.
func TestApplyFailureChangesNothing(t *testing.T) {
	s := New()
	mustApply(t, s, set("/a/b", "1"), mkdir("/d"), set("/f", "x"))
	for _, c := range []Command{
		set("/d", "x"),
		{Op: ActionCreate, Key: "/f", Time: t0},
		{Op: ActionSet, Key: "/f/g/h", Value: "x", Time: t0},
		{Op: ActionCompareAndSwap, Key: "/f", PrevValue: "nope", Value: "y", Time: t0},
		{Op: ActionDelete, Key: "/a", Dir: true, Time: t0},
		{Op: ActionDelete, Key: "/", Time: t0},
		{Op: ActionUpdate, Key: "/nope", Time: t0},
	} {
		before, stats := state(s), s.Stats()
		if _, err := s.Apply(c); err == nil {
			t.Fatalf("%+v: no error", c)
		}
		if !bytes.Equal(before, state(s)) {
			t.Errorf("%+v: the store changed", c)
		}
		if stats == s.Stats() {
			t.Errorf("%+v: no failure counted", c)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	tests := []struct {
		code   int
		msg    string
		status int
	}{
		{EcodeKeyNotFound, "Key not found", 404},
		{EcodeTestFailed, "Compare failed", 412},
		{EcodeNotFile, "Not a file", 403},
		{EcodeNoMorePeer, "Reached the max number of peers in the cluster", 400},
		{EcodeNotDir, "Not a directory", 400},
		{EcodeNodeExist, "Key already exists", 412},
		{EcodeKeyIsPreserved, "The prefix of given key is a keyword in etcd", 400},
		{EcodeRootROnly, "Root is read only", 400},
		{EcodeDirNotEmpty, "Directory not empty", 403},
		{EcodeExistingPeerAddr, "Peer address has existed", 400},
		{EcodeUnauthorized, "The request requires user authentication", 401},
		{EcodeValueRequired, "Value is Required in POST form", 400},
		{EcodePrevValueRequired, "PrevValue is Required in POST form", 400},
		{EcodeTTLNaN, "The given TTL in POST form is not a number", 400},
		{EcodeIndexNaN, "The given index in POST form is not a number", 400},
		{EcodeValueOrTTLRequired, "Value or TTL is required in POST form", 400},
		{EcodeTimeoutNaN, "The given timeout in POST form is not a number", 400},
		{EcodeNameRequired, "Name is required in POST form", 400},
		{EcodeIndexOrValueRequired, "Index or value is required", 400},
		{EcodeIndexValueMutex, "Index and value cannot both be specified", 400},
		{EcodeInvalidField, "Invalid field", 400},
		{EcodeInvalidForm, "Invalid POST form", 400},
		{EcodeRefreshValue, "Value provided on refresh", 400},
		{EcodeRefreshTTLRequired, "A TTL must be provided on refresh", 400},
		{EcodeRaftInternal, "Raft Internal Error", 500},
		{EcodeLeaderElect, "During Leader Election", 500},
		{EcodeWatcherCleared, "watcher is cleared due to etcd recovery", 400},
		{EcodeEventIndexCleared, "The event in requested index is outdated and cleared", 400},
		{EcodeStandbyInternal, "Standby Internal Error", 400},
		{EcodeInvalidActiveSize, "Invalid active size", 400},
		{EcodeInvalidRemoveDelay, "Standby remove delay", 400},
		{EcodeClientInternal, "Client Internal Error", 400},
	}
	if len(tests) != len(errorMessages) {
		t.Fatalf("%d codes tested, %d known", len(tests), len(errorMessages))
	}
	for _, tt := range tests {
		e := NewError(tt.code, "/foo", 7)
		if e.Message != tt.msg || e.StatusCode() != tt.status {
			t.Errorf("%d: %q %d, want %q %d", tt.code, e.Message, e.StatusCode(), tt.msg, tt.status)
		}
		if got, want := e.Error(), tt.msg+" (/foo)"; got != want {
			t.Errorf("%d: Error() = %q, want %q", tt.code, got, want)
		}
	}
	if got, want := toJSON(t, NewError(EcodeTestFailed, "", 3)), `{"errorCode":101,"message":"Compare failed","index":3}`; got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
}

func TestGet(t *testing.T) {
	s := New()
	mustApply(t, s,
		set("/dir/b", "2"),
		set("/dir/a", "1"),
		set("/dir/_hidden", "h"),
		set("/dir/sub/c", "3"),
		set("/dir/sub/_h/d", "4"),
		set("/_top", "t"),
		Command{Op: ActionSet, Key: "/dir/ttl", Value: "x", Expiration: at(10 * time.Second)},
	)
	tests := []struct {
		name              string
		key               string
		recursive, sorted bool
		now               time.Time
		want              string
	}{
		{
			name: "Get the value of a key",
			key:  "/dir/a",
			want: `{"action":"get","node":{"key":"/dir/a","value":"1","modifiedIndex":2,"createdIndex":2}}`,
		},
		{
			name: "Listing a directory: sorted, hidden keys left out, one level",
			key:  "/dir", sorted: true,
			want: `{"action":"get","node":{"key":"/dir","dir":true,"nodes":[` +
				`{"key":"/dir/a","value":"1","modifiedIndex":2,"createdIndex":2},` +
				`{"key":"/dir/b","value":"2","modifiedIndex":1,"createdIndex":1},` +
				`{"key":"/dir/sub","dir":true,"modifiedIndex":4,"createdIndex":4},` +
				`{"key":"/dir/ttl","value":"x","expiration":"2024-01-01T00:00:10Z","ttl":10,"modifiedIndex":7,"createdIndex":7}],` +
				`"modifiedIndex":1,"createdIndex":1}}`,
		},
		{
			name: "Listing a directory: recursive",
			key:  "/dir/sub", sorted: true, recursive: true,
			want: `{"action":"get","node":{"key":"/dir/sub","dir":true,"nodes":[{"key":"/dir/sub/c","value":"3","modifiedIndex":4,"createdIndex":4}],"modifiedIndex":4,"createdIndex":4}}`,
		},
		{
			name: "Creating a hidden node: gettable directly",
			key:  "/dir/_hidden",
			want: `{"action":"get","node":{"key":"/dir/_hidden","value":"h","modifiedIndex":3,"createdIndex":3}}`,
		},
		{
			name: "Creating a hidden node: listing its hidden directory",
			key:  "/dir/sub/_h",
			want: `{"action":"get","node":{"key":"/dir/sub/_h","dir":true,"nodes":[{"key":"/dir/sub/_h/d","value":"4","modifiedIndex":5,"createdIndex":5}],"modifiedIndex":5,"createdIndex":5}}`,
		},
		{
			name: "the root",
			key:  "/", sorted: true,
			want: `{"action":"get","node":{"dir":true,"nodes":[{"key":"/dir","dir":true,"modifiedIndex":1,"createdIndex":1}]}}`,
		},
		{
			name: "TTL rounds up",
			key:  "/dir/ttl", now: at(8*time.Second + time.Millisecond),
			want: `{"action":"get","node":{"key":"/dir/ttl","value":"x","expiration":"2024-01-01T00:00:10Z","ttl":2,"modifiedIndex":7,"createdIndex":7}}`,
		},
		{
			name: "TTL is 1 just before expiry",
			key:  "/dir/ttl", now: at(10*time.Second - time.Nanosecond),
			want: `{"action":"get","node":{"key":"/dir/ttl","value":"x","expiration":"2024-01-01T00:00:10Z","ttl":1,"modifiedIndex":7,"createdIndex":7}}`,
		},
		{
			name: "TTL of an expired key not yet removed",
			key:  "/dir/ttl", now: at(12 * time.Second),
			want: `{"action":"get","node":{"key":"/dir/ttl","value":"x","expiration":"2024-01-01T00:00:10Z","ttl":-2,"modifiedIndex":7,"createdIndex":7}}`,
		},
		{
			name: "missing",
			key:  "/dir/nope/x",
			want: `{"errorCode":100,"message":"Key not found","cause":"/dir/nope","index":7}`,
		},
		{
			name: "below a key",
			key:  "/dir/a/x",
			want: `{"errorCode":104,"message":"Not a directory","cause":"/dir/a","index":7}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := tt.now
			if now.IsZero() {
				now = t0
			}
			e, err := s.Get(tt.key, tt.recursive, tt.sorted, now)
			if got := result(t, e, err); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if err == nil && e.EtcdIndex != 7 {
				t.Errorf("EtcdIndex %d, want 7", e.EtcdIndex)
			}
		})
	}
	e, _ := s.Get("/dir", true, true, t0)
	if n := e.Node.Nodes[2]; n.Key != "/dir/sub" || len(n.Nodes) != 1 || n.Nodes[0].Key != "/dir/sub/c" {
		t.Errorf("recursive get does not nest: %s", toJSON(t, e))
	}
	st := s.Stats()
	if st.GetsSuccess != 10 || st.GetsFail != 2 {
		t.Errorf("gets %d/%d, want 10/2", st.GetsSuccess, st.GetsFail)
	}
}

func TestExpire(t *testing.T) {
	s := New()
	mustApply(t, s,
		Command{Op: ActionSet, Key: "/dir", Dir: true, Expiration: at(10 * time.Second)},
		set("/dir/a", "1"),
		Command{Op: ActionSet, Key: "/dir/b", Value: "2", Expiration: at(20 * time.Second)},
		Command{Op: ActionSet, Key: "/dir/c", Value: "3", Expiration: at(5 * time.Second)},
		Command{Op: ActionSet, Key: "/k", Value: "v", Expiration: at(10 * time.Second)},
		Command{Op: ActionSet, Key: "/later", Value: "v", Expiration: at(time.Hour)},
	)
	if cs := s.Expired(at(4 * time.Second)); len(cs) != 0 {
		t.Fatalf("expired before time: %+v", cs)
	}
	now := at(30 * time.Second)
	cs := s.Expired(now)
	want := []Command{
		{Op: ActionExpire, Key: "/dir/c", Expiration: at(5 * time.Second), Time: now},
		{Op: ActionExpire, Key: "/dir", Expiration: at(10 * time.Second), Time: now},
		{Op: ActionExpire, Key: "/k", Expiration: at(10 * time.Second), Time: now},
	}
	if toJSON(t, cs) != toJSON(t, want) {
		t.Fatalf("Expired:\n got %+v\nwant %+v", cs, want)
	}
	for i := 0; i < 5; i++ {
		if again := s.Expired(now); toJSON(t, again) != toJSON(t, cs) {
			t.Fatalf("Expired is not deterministic: %+v", again)
		}
	}
	w, err := s.Watch("/dir/a", false, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		c, err := UnmarshalCommand(b)
		if err != nil {
			t.Fatal(err)
		}
		e, err := s.Apply(c)
		got = append(got, result(t, e, err))
	}
	wantEvents := []string{
		`{"action":"expire","node":{"key":"/dir/c","modifiedIndex":7,"createdIndex":4},"prevNode":{"key":"/dir/c","value":"3","expiration":"2024-01-01T00:00:05Z","ttl":-25,"modifiedIndex":4,"createdIndex":4}}`,
		`{"action":"expire","node":{"key":"/dir","dir":true,"modifiedIndex":8,"createdIndex":1},"prevNode":{"key":"/dir","dir":true,"expiration":"2024-01-01T00:00:10Z","ttl":-20,"modifiedIndex":1,"createdIndex":1}}`,
		`{"action":"expire","node":{"key":"/k","modifiedIndex":9,"createdIndex":5},"prevNode":{"key":"/k","value":"v","expiration":"2024-01-01T00:00:10Z","ttl":-20,"modifiedIndex":5,"createdIndex":5}}`,
	}
	if strings.Join(got, "\n") != strings.Join(wantEvents, "\n") {
		t.Errorf("expire events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantEvents, "\n"))
	}
	if e := <-w.EventChan(); e.Action != ActionExpire || e.Node.Key != "/dir" {
		t.Errorf("watcher of a key in an expired directory got %s", toJSON(t, e))
	}
	if _, err := s.Get("/dir/b", false, false, now); err == nil {
		t.Error("/dir/b outlived its expired directory")
	}
	if cs := s.Expired(now); len(cs) != 0 {
		t.Errorf("still expired after the expiry: %+v", cs)
	}
	if st := s.Stats(); st.ExpireCount != 3 {
		t.Errorf("expireCount %d, want 3", st.ExpireCount)
	}
	e, _ := s.Get("/later", false, false, now)
	if e.Node.TTL != 3570 {
		t.Errorf("/later ttl %d", e.Node.TTL)
	}
}

// TestExpireOfChangedNode: an expire proposed before a refresh, a
// replacement or a deletion is applied after it: nothing happens.
func TestExpireOfChangedNode(t *testing.T) {
	for _, change := range []Command{
		{Op: ActionSet, Key: "/k", Refresh: true, PrevExist: yes(), Expiration: at(time.Minute)},
		{Op: ActionSet, Key: "/k", Value: "new", Expiration: at(time.Minute)},
		{Op: ActionSet, Key: "/k", Value: "permanent", PrevExist: yes()},
		{Op: ActionDelete, Key: "/k"},
		{Op: ActionSet, Key: "/k", Value: "same expiry, new node", Expiration: at(5 * time.Second)},
	} {
		s := New()
		mustApply(t, s, Command{Op: ActionSet, Key: "/k", Value: "v", Expiration: at(5 * time.Second)})
		cs := s.Expired(at(6 * time.Second))
		if len(cs) != 1 {
			t.Fatalf("Expired: %+v", cs)
		}
		mustApply(t, s, change)
		before := state(s)
		e, err := s.Apply(cs[0])
		if change.Expiration.Equal(at(5*time.Second)) && change.Op == ActionSet && !change.Refresh {
			// The new node expires at the same time: it goes.
			if err != nil || e == nil || e.Action != ActionExpire {
				t.Errorf("%+v: expire of a node with the same expiration: %v %v", change, e, err)
			}
			continue
		}
		if e != nil || err != nil {
			t.Errorf("%+v: expire after the change: %v, %v", change, e, err)
		}
		if !bytes.Equal(before, state(s)) {
			t.Errorf("%+v: a no-op expire changed the store", change)
		}
	}
}

func TestApplyRejects(t *testing.T) {
	s := New()
	for _, c := range []Command{
		{Op: "get", Key: "/a"},
		{Op: "", Key: "/a"},
		{Op: ActionSet, Key: "/a", Expiration: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Op: ActionSet, Key: "/a", Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Op: ActionExpire, Key: "/a", Time: t0},
		{Op: ActionExpire, Key: "/a", Expiration: at(time.Second), Time: t0},
	} {
		e, err := s.Apply(c)
		var se *Error
		if err == nil || errors.As(err, &se) || e != nil {
			t.Errorf("%+v: %v, %v; want a plain error", c, e, err)
		}
		if _, err := c.Marshal(); err == nil {
			t.Errorf("%+v: marshalled", c)
		}
	}
	if s.Index() != 0 || s.Stats() != (Stats{}) {
		t.Errorf("rejected commands changed the store")
	}
}

func TestStats(t *testing.T) {
	s := New()
	mustApply(t, s, set("/a", "1"), mkdir("/d"), set("/b", "1"))
	for _, c := range []Command{
		set("/d", "x"), // setsFail
		{Op: ActionCreate, Key: "/c", Value: "1", Time: t0},                // createSuccess
		{Op: ActionCreate, Key: "/c", Value: "1", Time: t0},                // createFail
		{Op: ActionCreate, Key: "/a/x", Value: "1", Time: t0},              // createFail and, as etcd, setsFail
		{Op: ActionSet, Key: "/a", Value: "2", PrevExist: yes(), Time: t0}, // updateSuccess
		{Op: ActionUpdate, Key: "/nope", Time: t0},                         // updateFail
		{Op: ActionSet, Key: "/a", Value: "3", PrevValue: "2", Time: t0},   // compareAndSwapSuccess
		{Op: ActionSet, Key: "/a", Value: "3", PrevValue: "2", Time: t0},   // compareAndSwapFail
		{Op: ActionDelete, Key: "/b", PrevValue: "1", Time: t0},            // compareAndDeleteSuccess
		{Op: ActionCompareAndDelete, Key: "/a", PrevIndex: 1, Time: t0},    // a failed compare: compareAndDeleteSuccess, as etcd counts it
		{Op: ActionCompareAndDelete, Key: "/zz", PrevIndex: 1, Time: t0},   // compareAndDeleteFail
		{Op: ActionDelete, Key: "/c", Time: t0},                            // deleteSuccess
		{Op: ActionDelete, Key: "/c", Time: t0},                            // deleteFail
	} {
		s.Apply(c)
	}
	s.Get("/a", false, false, t0)
	s.Get("/zz", false, false, t0)
	w, _ := s.Watch("/a", false, false, 0)
	got := toJSON(t, s.Stats())
	want := `{"getsSuccess":1,"getsFail":1,"setsSuccess":3,"setsFail":2,"deleteSuccess":1,"deleteFail":1,"updateSuccess":1,"updateFail":1,"createSuccess":1,"createFail":2,"compareAndSwapSuccess":1,"compareAndSwapFail":1,"compareAndDeleteSuccess":2,"compareAndDeleteFail":1,"expireCount":0,"watchers":1}`
	if got != want {
		t.Errorf("stats\n got %s\nwant %s", got, want)
	}
	w.Remove()
	if s.Stats().Watchers != 0 {
		t.Error("a removed watcher still counts")
	}
}

func TestCleanKey(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"", "/"},
		{"/", "/"},
		{"//", "/"},
		{"foo", "/foo"},
		{"/foo//bar/", "/foo/bar"},
		{"/a/./b", "/a/b"},
		{"/a/../b", "/b"},
		{"/a/b/..", "/a"},
		{"/_hidden/x", "/_hidden/x"},
		{"/a b/%2F", "/a b/%2F"},
		{"/..", ""},
		{"..", ""},
		{"/a/../../b", ""},
		{"/a/../..", ""},
	}
	for _, tt := range tests {
		got, err := CleanKey(tt.raw)
		if tt.want == "" {
			if err == nil {
				t.Errorf("CleanKey(%q) = %q, want an error", tt.raw, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CleanKey(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}
