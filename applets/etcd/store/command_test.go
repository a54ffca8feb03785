package store

import (
	"bytes"
	"reflect"
	"testing"
	"time"
)

var commandCases = []Command{
	{Op: ActionSet, Key: "/message", Value: "Hello world", Time: t0},
	{Op: ActionCreate, Key: "/queue", Value: "job", Unique: true, Expiration: at(time.Minute), Time: t0.Add(123 * time.Nanosecond)},
	{Op: ActionSet, Key: "/foo", PrevExist: no(), Time: t0},
	{Op: ActionSet, Key: "/foo", PrevExist: yes(), Refresh: true, Expiration: at(time.Second), Time: t0},
	{Op: ActionCompareAndSwap, Key: "/foo", Value: "\xff\x00binary", PrevValue: "\x80", PrevIndex: 1 << 60, Time: t0},
	{Op: ActionDelete, Key: "/dir", Dir: true, Recursive: true},
	{Op: ActionCompareAndDelete, Key: "/foo", PrevIndex: 3},
	{Op: ActionExpire, Key: "/foo", Expiration: at(time.Second), Time: at(2 * time.Second)},
	{Op: ActionSet, Key: "/old", Expiration: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC), Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range commandCases {
		b, err := c.Marshal()
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if b[0] != commandVersion {
			t.Errorf("version byte %d", b[0])
		}
		got, err := UnmarshalCommand(b)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if !got.Expiration.Equal(c.Expiration) || !got.Time.Equal(c.Time) {
			t.Errorf("times: %+v, want %+v", got, c)
		}
		got.Expiration, got.Time = c.Expiration, c.Time
		if !reflect.DeepEqual(got, c) {
			t.Errorf("got %+v, want %+v", got, c)
		}
	}
	// Location and monotonic clock do not matter.
	c := Command{Op: ActionSet, Key: "/k", Time: time.Now().In(time.FixedZone("X", 3600))}
	b1, _ := c.Marshal()
	c.Time = c.Time.UTC().Round(0)
	b2, _ := c.Marshal()
	if !bytes.Equal(b1, b2) {
		t.Error("the encoding depends on the location")
	}
}

func TestUnmarshalCommandRejects(t *testing.T) {
	good, _ := commandCases[1].Marshal()
	bad := [][]byte{
		nil,
		{},
		{commandVersion},
		append(bytes.Clone(good), 0),
	}
	for i := range good {
		bad = append(bad, good[:i])
	}
	withByte := func(i int, v byte) []byte {
		b := bytes.Clone(good)
		b[i] = v
		return b
	}
	bad = append(bad,
		withByte(0, 2),    // version
		withByte(1, 0),    // op
		withByte(1, 8),    // op
		withByte(2, 0x40), // flag: prevExist value without prevExist
		withByte(2, 0x80), // unknown flag
	)
	// A non-minimal varint: the key length 6 as 0x86 0x00.
	nm := append([]byte{}, good[:3]...)
	nm = append(nm, good[3]|0x80, 0)
	nm = append(nm, good[4:]...)
	bad = append(bad, nm)
	for _, b := range bad {
		if c, err := UnmarshalCommand(b); err == nil {
			t.Errorf("%x: decoded %+v", b, c)
		}
	}
}
