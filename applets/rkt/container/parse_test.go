package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseProcStat(t *testing.T) {
	st, err := parseProcStat([]byte("1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615"))
	if err != nil || st.state != 'S' || st.startTime != 987654 {
		t.Errorf("%+v, %v", st, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1", "1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 notanumber"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1234 (sh) S 1 1234 1234 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10"))
	f.Add([]byte("1 ((( ) Z 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseProcStat(b)
	})
}

func TestParseMountOptions(t *testing.T) {
	m, err := parseMountOptions([]string{"ro", "nosuid", "rw", "rbind", "rslave", "mode=755", "size=1k", "x-hint"})
	if err != nil {
		t.Fatal(err)
	}
	if m.flags&1 != 0 || !m.bind || !m.recursive || m.propagation == 0 || strings.Join(m.data, ",") != "mode=755,size=1k" {
		t.Errorf("%+v", m)
	}
	for _, bad := range []string{"idmap", "rro", "tmpcopyup", "remount"} {
		if _, err := parseMountOptions([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseMountOptions(f *testing.F) {
	f.Add("ro,nosuid,rbind,rslave,mode=755")
	f.Add("idmap")
	f.Fuzz(func(t *testing.T, s string) {
		parseMountOptions(strings.Split(s, ","))
	})
}

func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.2","root":{"path":"rootfs"},"process":{"args":["sh"],"cwd":"/"},"linux":{"namespaces":[{"type":"mount"}]}}`))
	f.Add([]byte(`{"ociVersion":"1.0.2","bogus":true}`))
	f.Add([]byte(`{"ociVersion":"1.0.2","process":{"args":["x"],"cwd":"rel","capabilities":{"bounding":["CAP_NOPE"]},"rlimits":[{"type":"RLIMIT_X","soft":2,"hard":1}]},"linux":{"sysctl":{"vm.x":"1"},"namespaces":[{"type":"user","path":"/proc/1/ns/user"}]}}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := ParseSpec(b)
		if err != nil {
			return
		}
		// Validation must not panic on anything that decodes.
		validate(spec, dir)
	})
}

// The last check before a mount: the resolved target must still be below
// the root (a target swapped for a symlink between resolution and mount
// is caught here, failing closed).
func TestCheckBelow(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	in, err := unix.Open(root, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	out, err := unix.Open(outside, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(out)
	if err := checkBelow(in, root); err != nil {
		t.Errorf("the root itself: %v", err)
	}
	if err := checkBelow(out, root); err == nil {
		t.Error("a target outside the root passed")
	}
	if err := checkBelow(out, outside[:len(outside)-1]); err == nil {
		t.Error("a sibling sharing the root's prefix passed")
	}
}

// Resolution inside the root follows symlinks, absolute ones too, without
// leaving it; a dangling one makes its target inside the root.
func TestMkdirAllInRoot(t *testing.T) {
	root := t.TempDir()
	host := t.TempDir()
	os.Symlink(host, filepath.Join(root, "abs"))
	os.Symlink("../../../..", filepath.Join(root, "up"))
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfd)
	for _, p := range []string{"/abs/x", "/up/y", "/a/b/c"} {
		fd, err := mkdirAllInRoot(rfd, p, 0o755)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if err := checkBelow(fd, root); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		unix.Close(fd)
	}
	if ents, _ := os.ReadDir(host); len(ents) != 0 {
		t.Errorf("made something in the host directory: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(root, host, "x")); err != nil {
		t.Errorf("the absolute symlink's target was not made inside the root: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "y")); err != nil {
		t.Errorf("the ../ symlink's target was not made at the root: %v", err)
	}
}
