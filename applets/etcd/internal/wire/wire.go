// Package wire is the binary encoding the registry writes itself: unsigned
// and signed varints, bytes, and length-prefixed byte strings, read by a
// decoder whose first error sticks. The store's commands and snapshots
// and the peer protocol's frames are built from it; what the values mean
// stays with them.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrTruncated is the error of a read past the end of the input.
var ErrTruncated = errors.New("truncated")

// Encoder appends values to B.
type Encoder struct{ B []byte }

func (e *Encoder) Byte(v byte)      { e.B = append(e.B, v) }
func (e *Encoder) Uvarint(v uint64) { e.B = binary.AppendUvarint(e.B, v) }
func (e *Encoder) Varint(v int64)   { e.B = binary.AppendVarint(e.B, v) }

// Bytes appends p with its length before it.
func (e *Encoder) Bytes(p []byte) {
	e.Uvarint(uint64(len(p)))
	e.B = append(e.B, p...)
}

// String appends s with its length before it.
func (e *Encoder) String(s string) {
	e.Uvarint(uint64(len(s)))
	e.B = append(e.B, s...)
}

// Decoder reads values from B until its first error, which sticks in Err;
// after it every read returns the zero value.
type Decoder struct {
	B   []byte
	Err error
}

// Fail records err unless an error is recorded already.
func (d *Decoder) Fail(err error) {
	if d.Err == nil {
		d.Err = err
	}
}

func (d *Decoder) Byte() byte {
	if d.Err != nil {
		return 0
	}
	if len(d.B) == 0 {
		d.Fail(ErrTruncated)
		return 0
	}
	v := d.B[0]
	d.B = d.B[1:]
	return v
}

func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Fail(errors.New("bad unsigned varint"))
		return 0
	}
	d.B = d.B[n:]
	return v
}

func (d *Decoder) Varint() int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Fail(errors.New("bad varint"))
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Bytes reads a length-prefixed byte string; the result aliases B.
func (d *Decoder) Bytes() []byte {
	n := d.Uvarint()
	if d.Err != nil {
		return nil
	}
	if n > uint64(len(d.B)) {
		d.Fail(ErrTruncated)
		return nil
	}
	p := d.B[:n]
	d.B = d.B[n:]
	return p
}

// String reads a length-prefixed string.
func (d *Decoder) String() string { return string(d.Bytes()) }

// End records an error if bytes are left, and returns the error.
func (d *Decoder) End() error {
	if d.Err == nil && len(d.B) != 0 {
		d.Fail(fmt.Errorf("%d trailing bytes", len(d.B)))
	}
	return d.Err
}
