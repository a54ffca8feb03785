package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var e Encoder
	e.Byte(7)
	e.Uvarint(300)
	e.Varint(-5)
	e.String("key")
	e.Bytes([]byte{1, 2})
	d := Decoder{B: e.B}
	if d.Byte() != 7 || d.Uvarint() != 300 || d.Varint() != -5 || d.String() != "key" || !bytes.Equal(d.Bytes(), []byte{1, 2}) || d.End() != nil {
		t.Fatalf("round trip failed: %v", d.Err)
	}
}

func TestErrorsStick(t *testing.T) {
	d := Decoder{B: []byte{5, 'a'}} // a string of 5 bytes, only 1 there
	if s := d.String(); s != "" || !errors.Is(d.Err, ErrTruncated) {
		t.Fatalf("String() = %q, err %v", s, d.Err)
	}
	if d.Byte() != 0 || d.Uvarint() != 0 || !errors.Is(d.End(), ErrTruncated) {
		t.Fatal("reads after an error must return zero values and keep the first error")
	}
	d = Decoder{B: []byte{1, 2}}
	d.Byte()
	if d.End() == nil {
		t.Fatal("End accepted a trailing byte")
	}
}

// FuzzDecoder reads arbitrary input as every kind of value: no panic, and
// a value read without error encodes back to the bytes it was read from.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{3, 'a', 'b', 'c'})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Decoder{B: b}
		p := d.Bytes()
		if d.Err != nil {
			return
		}
		var e Encoder
		e.Bytes(p)
		if used := len(b) - len(d.B); used == len(e.B) && !bytes.Equal(e.B, b[:used]) {
			t.Fatalf("%x read as %x, which encodes as %x", b[:used], p, e.B)
		}
		d.Byte()
		d.Varint()
		d.End()
	})
}
