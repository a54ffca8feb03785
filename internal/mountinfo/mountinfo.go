// Package mountinfo parses /proc/PID/mountinfo, the kernel's table of a
// mount namespace, for the packages that look at mounts (cgroup
// hierarchies, overlay layers in use, a pod's mounts to detach). It only
// reads; it mounts nothing.
package mountinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Mount is one line of mountinfo. Paths are unescaped.
type Mount struct {
	Root       string // the mounted directory of the source file system
	MountPoint string
	Options    string // per-mount options
	FSType     string
	Source     string
	// SuperOptions are the file system's own options (for overlay, its
	// lowerdir, upperdir and workdir; for a cgroup v1 hierarchy, its
	// controllers).
	SuperOptions string
}

// Parse parses the text of a mountinfo file:
//
//	id parent major:minor root mountpoint options [optional…] - fstype source superoptions
func Parse(b []byte) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo line %d %q: no \" - \" separator", n, line)
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 6 || len(g) < 2 {
			return nil, fmt.Errorf("mountinfo line %d %q: too few fields", n, line)
		}
		m := Mount{Root: Unescape(f[3]), MountPoint: Unescape(f[4]), Options: f[5], FSType: g[0], Source: Unescape(g[1])}
		if len(g) > 2 {
			m.SuperOptions = g[2]
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}
	return out, nil
}

// Self reads and parses /proc/self/mountinfo.
func Self() ([]Mount, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Unescape undoes the kernel's octal escapes (\040 for a space, \134 for
// a backslash…); anything else is kept as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }
