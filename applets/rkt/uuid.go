package rkt

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// newUUID returns a random (version 4) UUID in its text form.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return short)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// checkUUIDPrefix validates what a user typed to name a pod: a UUID or a
// prefix of one, dashes optional. It returns the prefix without dashes, lower
// case.
func checkUUIDPrefix(s string) (string, error) {
	p := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if p == "" {
		return "", fmt.Errorf("empty pod UUID")
	}
	if len(p) > 32 {
		return "", fmt.Errorf("pod UUID %q: longer than a UUID", s)
	}
	if strings.Trim(p, "0123456789abcdef") != "" {
		return "", fmt.Errorf("pod UUID %q: not hexadecimal", s)
	}
	return p, nil
}

// isUUID reports whether s is a UUID in canonical text form (how pod
// directories are named).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}
