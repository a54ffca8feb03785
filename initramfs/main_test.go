package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

func testSpec(t *testing.T) spec {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "corebox")
	os.WriteFile(bin, []byte("\x7fELF not really"), 0o755)
	rootfs := filepath.Join(dir, "rootfs")
	os.MkdirAll(filepath.Join(rootfs, "usr/lib/corebox/units"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "usr/lib/corebox/units/a.service"), []byte("[Service]\nExecStart=/bin/true\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "usr/lib/corebox/config.json"), []byte("{}\n"), 0o644)
	return spec{binary: bin, applets: []string{"init", "sh", "systemctl"}, rootfs: rootfs, version: "1.2.3"}
}

func pack(t *testing.T, s spec) []byte {
	t.Helper()
	recs, err := s.records()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := write(&buf, recs); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReproducible(t *testing.T) {
	s := testSpec(t)
	a := pack(t, s)
	// Touch every input: times must not leak into the archive.
	filepath.Walk(s.rootfs, func(p string, _ os.FileInfo, _ error) error {
		os.Chtimes(p, testTime, testTime)
		return nil
	})
	os.Chtimes(s.binary, testTime, testTime)
	b := pack(t, s)
	if !bytes.Equal(a, b) {
		t.Fatal("the same inputs gave different archives")
	}
}

func TestContents(t *testing.T) {
	s := testSpec(t)
	zr, err := gzip.NewReader(bytes.NewReader(pack(t, s)))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(readerAt(t, zr)))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cpio.Record{}
	var names []string
	for _, r := range recs {
		byName[r.Name] = r
		names = append(names, r.Name)
	}
	for i := 1; i < len(names); i++ {
		if names[i-1] >= names[i] {
			t.Fatalf("entries not sorted: %q before %q", names[i-1], names[i])
		}
	}
	links := map[string]string{"init": "bin/corebox", "bin/sh": "corebox", "bin/systemctl": "corebox", "bin/init": "corebox", "sbin": "bin"}
	for name, target := range links {
		r, ok := byName[name]
		if !ok {
			t.Fatalf("no %s in the archive", name)
		}
		if got := readAll(t, r); got != target {
			t.Errorf("%s -> %q, want %q", name, got, target)
		}
	}
	for _, name := range []string{"bin/corebox", "dev/console", "dev/null", "etc/os-release", "usr/lib/corebox/units/a.service", "usr/lib/corebox/config.json", "proc", "sys", "run", "tmp"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("no %s in the archive", name)
		}
	}
	if c := byName["dev/console"]; c.Rmajor != 5 || c.Rminor != 1 {
		t.Errorf("dev/console is %d:%d, want 5:1", c.Rmajor, c.Rminor)
	}
	if got := readAll(t, byName["etc/os-release"]); !bytes.Contains([]byte(got), []byte(`VERSION_ID="1.2.3"`)) {
		t.Errorf("os-release: %q", got)
	}
	for _, r := range recs {
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want all 0", r.Name, r.MTime, r.UID, r.GID)
		}
	}
}

func TestBadApplet(t *testing.T) {
	s := testSpec(t)
	s.applets = []string{"ok", "bad/name"}
	if _, err := s.records(); err == nil {
		t.Fatal("an applet name with a slash was accepted")
	}
}

var testTime = mustTime("2001-02-03T04:05:06Z")
