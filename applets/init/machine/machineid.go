package machine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MachineIDFile is the name of the machine id file in its directory.
const MachineIDFile = "machine-id"

// MachineID returns the machine id stored in dir/machine-id, creating it
// when the file does not exist: 128 bits from rand, marked as a version 4
// UUID, written as systemd does (32 lowercase hex digits and a newline,
// mode 0444). Creation is atomic (a temporary file is written, synced and
// renamed into place, and dir is synced), so a crash leaves either no file
// or a whole one; it assumes no other process creates the file at the same
// time. dir is created if missing. created reports whether the id is new.
//
// A file that exists but does not hold a valid id is an error, never
// replaced: a machine's identity must not change behind its back.
func MachineID(dir string, rand io.Reader) (id string, created bool, err error) {
	path := filepath.Join(dir, MachineIDFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, err := parseMachineID(data)
		if err != nil {
			return "", false, fmt.Errorf("machine id %s: %w", path, err)
		}
		return id, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", false, fmt.Errorf("machine id: %w", err)
	}

	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", false, fmt.Errorf("machine id: reading random bytes: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 1 (RFC 4122)
	id = hex.EncodeToString(b[:])
	if err := writeAtomic(dir, MachineIDFile, []byte(id+"\n"), 0o444); err != nil {
		return "", false, fmt.Errorf("machine id %s: %w", path, err)
	}
	return id, true, nil
}

// parseMachineID accepts systemd's format: 32 lowercase hex digits, an
// optional trailing newline, not all zeros.
func parseMachineID(data []byte) (string, error) {
	s := strings.TrimSuffix(string(data), "\n")
	bad := len(s) != 32
	for i := 0; !bad && i < len(s); i++ {
		c := s[i]
		bad = !('0' <= c && c <= '9' || 'a' <= c && c <= 'f')
	}
	if bad {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return "", fmt.Errorf("%q is not 32 lowercase hex digits", s)
	}
	if s == strings.Repeat("0", 32) {
		return "", errors.New("is all zeros")
	}
	return s, nil
}

// writeAtomic puts data in dir/name through a synced temporary file and a
// rename, then syncs dir so that the rename lasts.
func writeAtomic(dir, name string, data []byte, perm os.FileMode) (err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
