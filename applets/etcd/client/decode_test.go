package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"
)

// Answers as etcd 3.4 gives them.
var decodeSeeds = []struct {
	status int
	index  string
	body   string
}{
	{201, "14", `{"action":"set","node":{"key":"/a","value":"1","modifiedIndex":14,"createdIndex":14}}`},
	{200, "16", `{"action":"update","node":{"key":"/t","value":"1","expiration":"2026-11-26T03:10:34.467702046Z","ttl":200,"modifiedIndex":16,"createdIndex":15},"prevNode":{"key":"/t","value":"1","expiration":"2026-11-26T03:08:54.455654092Z","ttl":100,"modifiedIndex":15,"createdIndex":15}}`},
	{200, "14", `{"action":"get","node":{"dir":true,"nodes":[{"key":"/wd","dir":true,"modifiedIndex":5,"createdIndex":5},{"key":"/ai","value":"5","modifiedIndex":13,"createdIndex":13}]}}`},
	{201, "14", `{"action":"set"}`},
	{200, "3", ``},
	{404, "14", `{"errorCode":100,"message":"Key not found","cause":"/nope","index":14}`},
	{412, "44", `{"errorCode":101,"message":"Compare failed","cause":"[1 != 44]","index":44}`},
	{400, "1009", `{"errorCode":401,"message":"The event in requested index is outdated and cleared","cause":"the requested history has been cleared [10/5]","index":1009}`},
	{400, "0", `{"errorCode":211,"message":"Value provided on refresh","cause":"A value was provided on a refresh","index":0}`},
	{404, "", `404 page not found`},
	{200, "x", `{"action":"get","node":{"key":"/a"}}`},
	{200, "1", `{"action":"get","node":null}`},
	{200, "1", `{"action":"get","node":{"key":"/a","expiration":"yesterday"}}`},
}

func TestDecodeKeys(t *testing.T) {
	r, err := decodeKeys(200, header("16", "18", "2", "48276a8f75b6a87"), []byte(decodeSeeds[1].body), true)
	if err != nil {
		t.Fatal(err)
	}
	if r.Action != "update" || r.Node.TTL != 200 || r.Node.Expiration == nil || r.Node.Expiration.Nanosecond() != 467702046 ||
		r.PrevNode.ModifiedIndex != 15 || r.Index != 16 || r.RaftIndex != 18 || r.RaftTerm != 2 || r.ClusterID != "48276a8f75b6a87" {
		t.Fatalf("decoded %+v node %+v", r, r.Node)
	}
	_, err = decodeKeys(404, header("14", "", "", ""), []byte(decodeSeeds[5].body), true)
	var e *Error
	if !errors.As(err, &e) || *e != (Error{Code: 100, Message: "Key not found", Cause: "/nope", Index: 14}) {
		t.Fatalf("decoded error %#v", err)
	}
	if err.Error() != "100: Key not found (/nope) [14]" {
		t.Fatalf("Error() = %q", err)
	}
	for _, bad := range []struct {
		status int
		index  string
		body   string
	}{decodeSeeds[9], decodeSeeds[10], decodeSeeds[11], decodeSeeds[12], {500, "", `{"errorCode":0}`}} {
		_, err := decodeKeys(bad.status, header(bad.index, "", "", ""), []byte(bad.body), true)
		if err == nil || ErrorCode(err) != 0 {
			t.Errorf("%d %q: %v, want a plain error", bad.status, bad.body, err)
		}
	}
	if r, err := decodeKeys(201, nil, []byte(`{"action":"set"}`), false); err != nil || r.Node != nil {
		t.Fatalf("an answer without node (noValueOnSuccess): %+v, %v", r, err)
	}
	if _, err := decodeKeys(200, nil, nil, true); !errors.Is(err, errEmptyBody) {
		t.Fatalf("empty body: %v", err)
	}
}

func header(index, raftIndex, raftTerm, cluster string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{"X-Etcd-Index": index, "X-Raft-Index": raftIndex, "X-Raft-Term": raftTerm, "X-Etcd-Cluster-Id": cluster} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// FuzzDecodeKeys checks the decoder's contract on any answer: a Response
// with a node, an *Error whose JSON and text say what it holds, or another
// error; never a panic.
func FuzzDecodeKeys(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add(s.status, s.index, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, index string, body []byte) {
		r, err := decodeKeys(status, header(index, "", "", ""), body, true)
		if err == nil {
			if r == nil || r.Node == nil {
				t.Fatalf("success without a node: %+v", r)
			}
			if status != 200 && status != 201 {
				t.Fatalf("status %d decoded as a success", status)
			}
			if n, perr := strconv.ParseUint(index, 10, 64); (perr == nil) != (index != "") || (perr == nil && n != r.Index) {
				t.Fatalf("index header %q gave %d", index, r.Index)
			}
			if _, err := json.Marshal(r); err != nil {
				t.Fatalf("a decoded response does not marshal: %v", err)
			}
			return
		}
		if r != nil {
			t.Fatalf("both a response and an error: %v", err)
		}
		var e *Error
		if errors.As(err, &e) {
			if e.Code == 0 || status == 200 || status == 201 {
				t.Fatalf("status %d gave etcd error %+v", status, e)
			}
			b, _ := json.Marshal(e)
			if again := decodeError(status, b); again.Error() != e.Error() {
				t.Fatalf("error does not round-trip: %q, then %q", e, again)
			}
		}
	})
}

// FuzzDecodeMembers checks that any member list decodes or fails cleanly.
func FuzzDecodeMembers(f *testing.F) {
	f.Add([]byte(`{"members":[{"id":"2e1259d415f2a040","name":"t","peerURLs":["http://127.0.0.1:23800"],"clientURLs":["http://127.0.0.1:23790"]}]}`))
	f.Add([]byte(`{"members":[{"id":"a74b141f0e31f11d","name":"","peerURLs":["http://127.0.0.1:9"],"clientURLs":[]}]}`))
	f.Add([]byte(`{"members":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ms, err := decodeMembers(body)
		if err != nil && ms != nil {
			t.Fatalf("both members and an error: %v", err)
		}
	})
}
