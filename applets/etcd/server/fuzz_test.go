package server

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/corebox/corebox/applets/etcd/store"
)

// FuzzParseKeysRequest feeds arbitrary paths, queries and form bodies to
// the /v2/keys request parser: it must never panic, every refusal must be
// an etcd error, and an accepted request must make a command that encodes.
func FuzzParseKeysRequest(f *testing.F) {
	f.Add("PUT", "/v2/keys/a", "", "value=1&ttl=5")
	f.Add("PUT", "/v2/keys/a/b", "prevExist=false", "value=x&prevValue=y&prevIndex=3")
	f.Add("GET", "/v2/keys/", "recursive=true&sorted=true&quorum=true", "")
	f.Add("GET", "/v2/keys/q", "wait=true&waitIndex=7&stream=true", "")
	f.Add("DELETE", "/v2/keys/d", "dir=true&recursive=true", "")
	f.Add("POST", "/v2/keys/queue", "", "value=v&ttl=")
	f.Add("PUT", "/v2/keys/r", "refresh=true&ttl=10", "")
	f.Add("PUT", "/v2/keys/%2e%2e/x", "ttl=-1", "value=%zz")
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		u := &url.URL{Path: path, RawQuery: query}
		r, err := http.NewRequest(method, u.String(), strings.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		now := time.Unix(1700000000, 0)
		kr, err := parseKeysRequest(r, DefaultMaxRequestBytes, now)
		if err != nil {
			var se *store.Error
			if !errors.As(err, &se) {
				t.Fatalf("a refusal that is not an etcd error: %T %v", err, err)
			}
			return
		}
		if _, err := kr.command(now).Marshal(); err != nil {
			t.Fatalf("an accepted request made a command that does not encode: %v", err)
		}
	})
}

// FuzzDecodeBatch feeds arbitrary entry bodies to the batch decoder: it
// must never panic, and what it accepts must survive an encode and decode.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(encodeBatch([][]byte{{entryCommand, 1, 2}, {entryRemove, 'x'}})[1:])
	f.Add([]byte{1, 0})
	f.Add([]byte{2, 1, 'c', 200})
	f.Fuzz(func(t *testing.T, body []byte) {
		entries, err := decodeBatch(body)
		if err != nil {
			return
		}
		again, err := decodeBatch(encodeBatch(entries)[1:])
		if err != nil || len(again) != len(entries) {
			t.Fatalf("re-encoded batch: %d entries, err %v; want %d", len(again), err, len(entries))
		}
		for i := range entries {
			if !bytes.Equal(again[i], entries[i]) {
				t.Fatalf("entry %d changed: %x → %x", i, entries[i], again[i])
			}
		}
	})
}

// FuzzDecodeOutcome feeds arbitrary replies to the decoder of a forwarded
// proposal's outcome: it must never panic, and a decoded applied outcome
// must encode back to one that decodes the same.
func FuzzDecodeOutcome(f *testing.F) {
	ev := &store.Event{Action: "set", EtcdIndex: 7, Node: &store.Node{Key: "/a", ModifiedIndex: 7, CreatedIndex: 7}}
	f.Add(encodeOutcome(proposed{index: 12, res: result{Event: ev}}))
	f.Add(encodeOutcome(proposed{index: 3, res: result{Err: store.NewError(store.EcodeKeyNotFound, "/x", 5)}}))
	f.Add(encodeOutcome(proposed{err: errLeaderElection()}))
	f.Add(encodeOutcome(proposed{err: errors.New("boom")}))
	f.Add([]byte{'a', 1, 3, 200, 1, 2, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, index, err := decodeOutcome(b)
		if err != nil || r.rendered == nil {
			return
		}
		if r.rendered.status < 100 || r.rendered.status > 599 {
			t.Fatalf("accepted status %d", r.rendered.status)
		}
		again, index2, err := decodeOutcome(encodeOutcome(proposed{index: index, res: result{Event: nil, Err: r.Err}}))
		if err != nil || index2 != index || (r.Err == nil) != (again.Err == nil) {
			t.Fatalf("re-encoded outcome: index %d→%d, err %v", index, index2, err)
		}
	})
}

// FuzzDecodeReadIndex: arbitrary read-index replies never panic, and a
// decoded number survives an encode and decode.
func FuzzDecodeReadIndex(f *testing.F) {
	f.Add(encodeReadIndex(42, nil))
	f.Add(encodeReadIndex(0, store.NewError(store.EcodeLeaderElect, "", 0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := decodeReadIndex(b)
		if err != nil {
			return
		}
		if again, err := decodeReadIndex(encodeReadIndex(idx, nil)); err != nil || again != idx {
			t.Fatalf("%x decoded to %d, which comes back as %d (%v)", b, idx, again, err)
		}
	})
}
