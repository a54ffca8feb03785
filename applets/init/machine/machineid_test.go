package machine

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
)

func TestMachineIDCreateThenReread(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "var", "lib", "corebox") // created by MachineID
	id, created, err := MachineID(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for a new id")
	}
	// systemd's format, with the version 4 and variant 1 bits set.
	if !regexp.MustCompile(`^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`).MatchString(id) {
		t.Errorf("id %q is not a v4 id in systemd's format", id)
	}
	path := filepath.Join(dir, "machine-id")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != id+"\n" {
		t.Errorf("file holds %q, want %q", data, id+"\n")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o444 {
		t.Errorf("file mode %v, %v; want 0444", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only machine-id: no temporary file left", len(entries))
	}

	again, created, err := MachineID(dir, iotest.ErrReader(errors.New("must not be read")))
	if err != nil {
		t.Fatal(err)
	}
	if created || again != id {
		t.Errorf("second MachineID = %q, created %v; want %q, false", again, created, id)
	}
}

func TestMachineIDFromRand(t *testing.T) {
	dir := t.TempDir()
	id, _, err := MachineID(dir, bytes.NewReader(bytes.Repeat([]byte{0xff}, 16)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "ffffffffffff4fffbfffffffffffffff"; id != want {
		t.Errorf("id %q, want %q", id, want)
	}
	_, _, err = MachineID(t.TempDir(), bytes.NewReader(make([]byte, 15)))
	if err == nil || !strings.Contains(err.Error(), "reading random bytes") {
		t.Errorf("short rand: %v", err)
	}
}

func TestMachineIDExisting(t *testing.T) {
	tests := []struct {
		contents string
		want     string // error; "" for success with the id
	}{
		{"0123456789abcdef0123456789abcdef\n", ""},
		{"0123456789abcdef0123456789abcdef", ""},
		{"0123456789ABCDEF0123456789ABCDEF\n", `"0123456789ABCDEF0123456789ABCDEF" is not 32 lowercase hex digits`},
		{"0123456789abcdef0123456789abcde\n", `"0123456789abcdef0123456789abcde" is not 32 lowercase hex digits`},
		{"0123456789abcdef0123456789abcdef0\n", `"0123456789abcdef0123456789abcdef0" is not 32 lowercase hex digits`},
		{"0123456789abcdef0123456789abcdef\n\n", `"0123456789abcdef0123456789abcdef\n" is not 32 lowercase hex digits`},
		{"01234567-89ab-cdef-0123-456789abcdef\n", `"01234567-89ab-cdef-0123-456789abcdef" is not 32 lowercase hex digits`},
		{"", `"" is not 32 lowercase hex digits`},
		{"uninitialized\n", `"uninitialized" is not 32 lowercase hex digits`},
		{strings.Repeat("0", 32) + "\n", "is all zeros"},
		{strings.Repeat("x", 100), `"` + strings.Repeat("x", 40) + `…" is not 32 lowercase hex digits`},
	}
	for _, tt := range tests {
		dir := t.TempDir()
		path := filepath.Join(dir, "machine-id")
		if err := os.WriteFile(path, []byte(tt.contents), 0o444); err != nil {
			t.Fatal(err)
		}
		id, created, err := MachineID(dir, rand.Reader)
		if tt.want == "" {
			if err != nil || created || id != strings.TrimSpace(tt.contents) {
				t.Errorf("%q: MachineID = %q, %v, %v", tt.contents, id, created, err)
			}
			continue
		}
		if want := "machine id " + path + ": " + tt.want; err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %s", tt.contents, err, want)
		}
		// A corrupt file is reported, never replaced.
		if data, _ := os.ReadFile(path); string(data) != tt.contents {
			t.Errorf("%q: file changed to %q", tt.contents, data)
		}
	}
}

func TestMachineIDUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only directories")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	if _, _, err := MachineID(dir, rand.Reader); err == nil || !strings.HasPrefix(err.Error(), "machine id "+filepath.Join(dir, "machine-id")+": ") {
		t.Errorf("MachineID in a read-only dir: %v", err)
	}
}

func TestMachineIDUnreadable(t *testing.T) {
	// dir is a file.
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := MachineID(file, rand.Reader); err == nil || !strings.HasSuffix(err.Error(), "not a directory") {
		t.Errorf("MachineID under a file: %v", err)
	}
	// machine-id is a directory.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "machine-id"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, _, err := MachineID(dir, rand.Reader); err == nil || !strings.HasSuffix(err.Error(), "is a directory") {
		t.Errorf("MachineID with a directory for machine-id: %v", err)
	}
}
