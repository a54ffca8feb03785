package image

import (
	"archive/tar"
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnpackPreservesMetadata(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	entries := []entry{
		{name: "d/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1001},
		{name: "d/suid", typ: tar.TypeReg, body: "s", mode: 0o4755, uid: 0, gid: 0},
		{name: "d/owned", typ: tar.TypeReg, body: "o", mode: 0o640, uid: 1234, gid: 5678,
			xattrs: map[string]string{"user.corebox": "yes", "trusted.overlay.opaque": "y", "security.selinux": "x"}},
		hardlink("d/owned-link", "d/owned"),
		symlink("d/abs", "/etc/passwd"),
		{name: "d/rel", typ: tar.TypeSymlink, link: "../d/owned", uid: 7, gid: 8},
		{name: "d/fifo", typ: tar.TypeFifo, mode: 0o600},
		{name: "implicit/parent/file", typ: tar.TypeReg, body: "p", mode: 0o600},
		file("replaced", "old"),
		symlink("replaced", "d/owned"),
	}
	if err := unpackLayer(bytes.NewReader(tarBytes(t, entries...)), dir, overlayLayer, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	lstat := func(p string) unix.Stat_t {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, c := range []struct {
		path          string
		typ, mode     uint32
		uid, gid      uint32
		checkModeTime bool
	}{
		{"d", unix.S_IFDIR, 0o750, 1000, 1001, true},
		{"d/suid", unix.S_IFREG, 0o4755, 0, 0, true},
		{"d/owned", unix.S_IFREG, 0o640, 1234, 5678, true},
		{"d/abs", unix.S_IFLNK, 0, 0, 0, true},
		{"d/rel", unix.S_IFLNK, 0, 7, 8, true},
		{"d/fifo", unix.S_IFIFO, 0o600, 0, 0, true},
		{"implicit/parent", unix.S_IFDIR, 0o755, 0, 0, false},
		{"replaced", unix.S_IFLNK, 0, 0, 0, true},
	} {
		st := lstat(c.path)
		if st.Mode&unix.S_IFMT != c.typ {
			t.Errorf("%s: type %o, want %o", c.path, st.Mode&unix.S_IFMT, c.typ)
		}
		if c.typ != unix.S_IFLNK && st.Mode&0o7777 != c.mode {
			t.Errorf("%s: mode %o, want %o", c.path, st.Mode&0o7777, c.mode)
		}
		if st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", c.path, st.Uid, st.Gid, c.uid, c.gid)
		}
		if c.checkModeTime && st.Mtim.Sec != testTime.Unix() {
			t.Errorf("%s: mtime %d, want %d", c.path, st.Mtim.Sec, testTime.Unix())
		}
	}
	if a, b := lstat("d/owned"), lstat("d/owned-link"); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard link: inodes %d, %d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	if target, _ := os.Readlink(filepath.Join(dir, "d/abs")); target != "/etc/passwd" {
		t.Errorf("symlink target %q", target)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(dir, "d/owned"), "user.corebox", buf); err != nil || string(buf[:n]) != "yes" {
		t.Errorf("user xattr: %q, %v", buf[:n], err)
	}
	for _, attr := range []string{"trusted.overlay.opaque", "security.selinux"} {
		if _, err := unix.Lgetxattr(filepath.Join(dir, "d/owned"), attr, buf); err == nil {
			t.Errorf("xattr %s from the layer was applied", attr)
		}
	}
}

func TestUnpackMergesAndReplaces(t *testing.T) {
	root := t.TempDir()
	layers := [][]entry{
		{dir("a/"), file("a/keep", "1"), file("a/file-then-dir", "f"), dir("b/"), file("b/x", "x"), symlink("lnk", "a")},
		{dir("a/"), dir("a/file-then-dir/"), file("a/file-then-dir/inner", "i"), file("b/.wh..wh..opq", ""), file("b/y", "y"),
			file(".wh.lnk", ""), file("a/.wh.nonexistent", ""), file("gone/.wh.x", "")},
	}
	for _, l := range layers {
		if err := unpackLayer(bytes.NewReader(tarBytes(t, l...)), root, flattened, testLogger(t)); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(treeOf(t, root), " ")
	if want := "a a/file-then-dir a/file-then-dir/inner a/keep b b/y"; got != want {
		t.Errorf("tree %q, want %q", got, want)
	}
}

func FuzzUnpackLayer(f *testing.F) {
	for _, c := range hostileTars("/tmp/corebox-fuzz-outside") {
		f.Add(tarBytes(f, c.entries...), false)
	}
	f.Add(tarBytes(f, dir("a/"), file("a/b", "b"), symlink("a/c", "../a/b"), hardlink("d", "a/b"), file("a/.wh.b", "")), true)
	f.Add(tarBytes(f, file("o/.wh..wh..opq", ""), symlink("s", "."), file("s/s/s/f", "f")), false)
	f.Add([]byte("not a tar at all"), true)
	f.Fuzz(func(t *testing.T, data []byte, flatten bool) {
		parent := t.TempDir()
		target, outside := filepath.Join(parent, "layer"), filepath.Join(parent, "outside")
		for _, d := range []string{target, outside} {
			if err := os.Mkdir(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		mode := overlayLayer
		if flatten {
			mode = flattened
		}
		_ = unpackLayer(bytes.NewReader(data), target, mode, slog.New(slog.DiscardHandler)) // errors are fine; escapes are not
		checkOutside(t, parent, outside)
		// Nothing in the layer is a device other than an overlay whiteout.
		filepath.Walk(target, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			if info.Mode()&(os.ModeDevice|os.ModeCharDevice) != 0 {
				var st unix.Stat_t
				if unix.Lstat(p, &st) == nil && st.Rdev != 0 {
					t.Errorf("device %s (rdev %d) unpacked", p, st.Rdev)
				}
			}
			return nil
		})
	})
}
