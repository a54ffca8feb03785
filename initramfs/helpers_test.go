package main

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"
)

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func readerAt(t *testing.T, r io.Reader) io.ReaderAt {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

func readAll(t *testing.T, r cpio.Record) string {
	t.Helper()
	if r.ReaderAt == nil {
		return ""
	}
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
