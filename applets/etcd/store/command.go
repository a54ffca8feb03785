package store

import (
	"bytes"
	"fmt"
	"time"

	"github.com/corebox/corebox/applets/etcd/internal/wire"
)

// Command is one mutation as it travels in the raft log. Every input of
// the apply is in it — absolute expiration times and the proposer's clock
// are computed by the proposer — so that applying the same commands in the
// same order gives the same store on every member, whatever the clocks say.
type Command struct {
	// Op is one of the mutating actions: "set" (PUT), "create",
	// "update", "compareAndSwap", "delete", "compareAndDelete", "expire".
	// "set" is refined as etcd's applier does: with PrevExist true it is
	// an update (or a compareAndSwap if PrevValue or PrevIndex is given),
	// with PrevExist false a create, else with PrevValue or PrevIndex a
	// compareAndSwap. "delete" with PrevValue or PrevIndex is a
	// compareAndDelete.
	Op    string
	Key   string // cleaned as etcd does (path.Clean of "/"+Key)
	Value string
	Dir   bool
	// Expiration is the absolute time the node expires; zero (or before
	// 2000, as etcd) means permanent. For "expire" it is the expiration
	// the node must still have for the expire to happen.
	Expiration time.Time
	Refresh    bool // only the TTL changes; the event goes to the history, not to watchers
	PrevValue  string
	PrevIndex  uint64
	PrevExist  *bool // PUT prevExist=true|false, for Op "set"
	Recursive  bool  // delete: remove a directory and its content
	Unique     bool  // create: an in-order key named by the new index (%020d) inside Key
	// Time is the proposer's clock at the proposal: the TTLs in the
	// returned event are the remaining seconds at Time.
	Time time.Time
}

// The Op codes on the wire.
var opCodes = map[string]byte{
	ActionSet:              1,
	ActionCreate:           2,
	ActionUpdate:           3,
	ActionCompareAndSwap:   4,
	ActionDelete:           5,
	ActionCompareAndDelete: 6,
	ActionExpire:           7,
}

var opNames = func() map[byte]string {
	m := map[byte]string{}
	for name, code := range opCodes {
		m[code] = name
	}
	return m
}()

const commandVersion = 1

const (
	flagDir byte = 1 << iota
	flagRefresh
	flagRecursive
	flagUnique
	flagPrevExistSet
	flagPrevExist
)

// validate is what Apply and Marshal require of a command beyond the etcd
// semantics: a known Op and times that can be encoded.
func (c *Command) validate() error {
	if _, ok := opCodes[c.Op]; !ok {
		return fmt.Errorf("store: command for %q: unknown op %q", c.Key, c.Op)
	}
	if err := checkTime(c.Expiration); err != nil {
		return fmt.Errorf("store: command %s %q: expiration: %w", c.Op, c.Key, err)
	}
	if err := checkTime(c.Time); err != nil {
		return fmt.Errorf("store: command %s %q: time: %w", c.Op, c.Key, err)
	}
	if c.Op == ActionExpire && (c.Expiration.IsZero() || c.Expiration.After(c.Time)) {
		return fmt.Errorf("store: expire %q: expiration %v is not at or before the command's time %v", c.Key, c.Expiration, c.Time)
	}
	return nil
}

// Marshal encodes the command: a version byte, then a compact binary form
// that keeps every byte of keys and values.
func (c Command) Marshal() ([]byte, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c.encode(), nil
}

func (c *Command) encode() []byte {
	flags := flagIf(c.Dir, flagDir) | flagIf(c.Refresh, flagRefresh) | flagIf(c.Recursive, flagRecursive) |
		flagIf(c.Unique, flagUnique) | flagIf(c.PrevExist != nil, flagPrevExistSet) | flagIf(c.PrevExist != nil && *c.PrevExist, flagPrevExist)
	e := wire.Encoder{B: make([]byte, 0, 32+len(c.Key)+len(c.Value)+len(c.PrevValue))}
	e.Byte(commandVersion)
	e.Byte(opCodes[c.Op])
	e.Byte(flags)
	e.String(c.Key)
	e.String(c.Value)
	e.String(c.PrevValue)
	e.Uvarint(c.PrevIndex)
	encodeTime(&e, c.Expiration)
	encodeTime(&e, c.Time)
	return e.B
}

func flagIf(set bool, flag byte) byte {
	if set {
		return flag
	}
	return 0
}

// UnmarshalCommand decodes what Marshal encoded, and nothing else: an
// unknown version, op or flag, a non-canonical or truncated field, or a
// trailing byte is an error.
func UnmarshalCommand(b []byte) (Command, error) {
	d := wire.Decoder{B: b}
	var c Command
	if v := d.Byte(); d.Err == nil && v != commandVersion {
		return Command{}, fmt.Errorf("store: command: unknown version %d", v)
	}
	code := d.Byte()
	flags := d.Byte()
	c.Key = d.String()
	c.Value = d.String()
	c.PrevValue = d.String()
	c.PrevIndex = d.Uvarint()
	c.Expiration = decodeTime(&d)
	c.Time = decodeTime(&d)
	if err := d.End(); err != nil {
		return Command{}, fmt.Errorf("store: command: %w", err)
	}
	op, ok := opNames[code]
	if !ok {
		return Command{}, fmt.Errorf("store: command: unknown op code %d", code)
	}
	c.Op = op
	c.Dir = flags&flagDir != 0
	c.Refresh = flags&flagRefresh != 0
	c.Recursive = flags&flagRecursive != 0
	c.Unique = flags&flagUnique != 0
	if flags&flagPrevExistSet != 0 {
		pe := flags&flagPrevExist != 0
		c.PrevExist = &pe
	}
	if err := c.validate(); err != nil {
		return Command{}, err
	}
	if !bytes.Equal(c.encode(), b) {
		return Command{}, fmt.Errorf("store: command: not in canonical form")
	}
	return c, nil
}
