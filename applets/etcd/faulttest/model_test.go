package faulttest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/anishathalye/porcupine"
)

// The history's model: each key is a register with compare-and-swap, as
// the v2 keys API offers it. A key is absent until set.

type opKind uint8

const (
	opGet    opKind = iota // GET ?quorum=true
	opSet                  // PUT value=
	opCAS                  // PUT value= &prevValue=
	opDelete               // DELETE
)

func (k opKind) String() string { return [...]string{"get", "set", "cas", "delete"}[k] }

type regInput struct {
	Kind  opKind
	Key   string
	Value string // set, cas: the new value
	Prev  string // cas: the expected value
}

type regOutput struct {
	// Unknown: the answer was lost (timeout, broken connection, raft
	// trouble), so the write may or may not have taken effect. Such an
	// operation's return time is after the whole history.
	Unknown bool
	// OK: a get found the key; a write took effect (false: the server
	// refused it: a failed comparison, a missing key).
	OK    bool
	Value string // get: the value found
}

type regState struct {
	Exists bool
	Value  string
}

// registerModel is the sequential specification, partitioned by key.
func registerModel() porcupine.Model {
	return porcupine.Model{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byKey := map[string][]porcupine.Operation{}
			var keys []string
			for _, op := range history {
				k := op.Input.(regInput).Key
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], op)
			}
			slices.Sort(keys)
			var out [][]porcupine.Operation
			for _, k := range keys {
				out = append(out, byKey[k])
			}
			return out
		},
		Init: func() any { return regState{} },
		Step: func(state, input, output any) (bool, any) {
			return step(state.(regState), input.(regInput), output.(regOutput))
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(regInput), output.(regOutput)
			var res string
			switch {
			case out.Unknown:
				res = "?"
			case in.Kind == opGet && out.OK:
				res = fmt.Sprintf("%q", out.Value)
			case in.Kind == opGet:
				res = "absent"
			case out.OK:
				res = "ok"
			default:
				res = "failed"
			}
			switch in.Kind {
			case opGet:
				return fmt.Sprintf("get(%s) → %s", in.Key, res)
			case opSet:
				return fmt.Sprintf("set(%s, %q) → %s", in.Key, in.Value, res)
			case opCAS:
				return fmt.Sprintf("cas(%s, %q→%q) → %s", in.Key, in.Prev, in.Value, res)
			default:
				return fmt.Sprintf("delete(%s) → %s", in.Key, res)
			}
		},
		DescribeState: func(state any) string {
			if st := state.(regState); st.Exists {
				return fmt.Sprintf("%q", st.Value)
			}
			return "absent"
		},
	}
}

// step applies one operation. An operation of unknown outcome takes
// effect here; since it returns after everything else, the checker may
// also place it after every other operation, which is the same as its
// never having taken effect.
func step(st regState, in regInput, out regOutput) (bool, regState) {
	switch in.Kind {
	case opGet:
		if out.OK {
			return st.Exists && st.Value == out.Value, st
		}
		return !st.Exists, st
	case opSet:
		if out.Unknown || out.OK {
			return true, regState{Exists: true, Value: in.Value}
		}
		return true, st
	case opCAS:
		match := st.Exists && st.Value == in.Prev
		switch {
		case out.Unknown && match, out.OK:
			return match, regState{Exists: true, Value: in.Value}
		case out.Unknown:
			return true, st
		default:
			return !match, st
		}
	case opDelete:
		switch {
		case out.Unknown:
			return true, regState{}
		case out.OK:
			return st.Exists, regState{}
		default:
			return !st.Exists, st
		}
	}
	return false, st
}

// TestRegisterModel checks the model on small histories, legal and not.
func TestRegisterModel(t *testing.T) {
	const never = 1 << 62 // the return time of an unknown outcome
	op := func(call, ret int64, in regInput, out regOutput) porcupine.Operation {
		return porcupine.Operation{Input: in, Output: out, Call: call, Return: ret}
	}
	get := regInput{Kind: opGet, Key: "k"}
	found := func(v string) regOutput { return regOutput{OK: true, Value: v} }
	setk := func(v string) regInput { return regInput{Kind: opSet, Key: "k", Value: v} }
	cas := func(prev, v string) regInput { return regInput{Kind: opCAS, Key: "k", Prev: prev, Value: v} }
	del := regInput{Kind: opDelete, Key: "k"}
	ok, failed, unknown := regOutput{OK: true}, regOutput{}, regOutput{Unknown: true}
	for _, tc := range []struct {
		name    string
		history []porcupine.Operation
		legal   bool
	}{
		{"read your write", []porcupine.Operation{op(0, 1, setk("a"), ok), op(2, 3, get, found("a"))}, true},
		{"stale read", []porcupine.Operation{op(0, 1, setk("a"), ok), op(2, 3, setk("b"), ok), op(4, 5, get, found("a"))}, false},
		{"absent at first", []porcupine.Operation{op(0, 1, get, regOutput{})}, true},
		{"cas on the current value", []porcupine.Operation{op(0, 1, setk("a"), ok), op(2, 3, cas("a", "b"), ok), op(4, 5, get, found("b"))}, true},
		{"cas on a stale value succeeds", []porcupine.Operation{op(0, 1, setk("a"), ok), op(2, 3, setk("b"), ok), op(4, 5, cas("a", "c"), ok)}, false},
		{"cas fails although it matches", []porcupine.Operation{op(0, 1, setk("a"), ok), op(2, 3, cas("a", "b"), failed)}, false},
		{"concurrent writes, either order", []porcupine.Operation{op(0, 3, setk("a"), ok), op(1, 4, setk("b"), ok), op(5, 6, get, found("a"))}, true},
		{"unknown write seen", []porcupine.Operation{op(0, never, setk("a"), unknown), op(5, 6, get, found("a"))}, true},
		{"unknown write never seen", []porcupine.Operation{op(0, never, setk("a"), unknown), op(5, 6, get, regOutput{})}, true},
		{"unknown write seen, then gone", []porcupine.Operation{op(0, never, setk("a"), unknown), op(5, 6, get, found("a")), op(7, 8, get, regOutput{})}, false},
		{"unknown cas that could not match", []porcupine.Operation{op(0, never, cas("x", "a"), unknown), op(5, 6, get, found("a"))}, false},
		{"delete of an absent key fails", []porcupine.Operation{op(0, 1, del, failed)}, true},
		{"delete of an absent key succeeds", []porcupine.Operation{op(0, 1, del, ok)}, false},
		{"unknown delete", []porcupine.Operation{op(0, 1, setk("a"), ok), op(2, never, del, unknown), op(3, 4, get, found("a")), op(5, 6, get, regOutput{})}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(registerModel(), tc.history); got != tc.legal {
				t.Errorf("linearizable: %v, want %v", got, tc.legal)
			}
		})
	}
}
