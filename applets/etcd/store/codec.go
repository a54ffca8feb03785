package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/corebox/corebox/applets/etcd/internal/wire"
)

// Commands and snapshots are written with package wire (varints and
// length-prefixed strings) and times as below. Decoders are strict by
// re-encoding what they decoded and requiring the very same bytes, so
// every value has exactly one encoding.

// encodeTime writes t as a presence byte, then Unix seconds and
// nanoseconds.
func encodeTime(e *wire.Encoder, t time.Time) {
	if t.IsZero() {
		e.Byte(0)
		return
	}
	e.Byte(1)
	e.Varint(t.Unix())
	e.Uvarint(uint64(t.Nanosecond()))
}

// decodeTime reads what encodeTime wrote.
func decodeTime(d *wire.Decoder) time.Time {
	switch d.Byte() {
	case 0:
		return time.Time{}
	case 1:
	default:
		d.Fail(errors.New("bad time presence byte"))
		return time.Time{}
	}
	sec := d.Varint()
	nsec := d.Uvarint()
	if d.Err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		d.Fail(fmt.Errorf("time nanoseconds %d out of range", nsec))
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if err := checkTime(t); err != nil {
		d.Fail(err)
	}
	return t
}

// checkTime accepts the zero time (none) and times of years 1 to 9999.
func checkTime(t time.Time) error {
	if t.IsZero() {
		return nil
	}
	if y := t.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("time %v out of range (years 1 to 9999)", t)
	}
	return nil
}
