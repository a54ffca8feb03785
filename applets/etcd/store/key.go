package store

import (
	"fmt"
	"path"
	"strings"
)

// CleanKey turns the part of a request path after /v2/keys into a store
// key as etcd does (path.Join onto its key namespace): "" and "/" are the
// root, "/foo//bar/" is "/foo/bar", "a/./b" is "/a/b", "a/../b" is "/b".
// A ".." that climbs above the root is an error: etcd never sees such a
// key (Go's HTTP mux redirects it out of /v2/keys, to a 404).
func CleanKey(raw string) (string, error) {
	depth := 0
	for el := range strings.SplitSeq(raw, "/") {
		switch el {
		case "", ".":
		case "..":
			if depth == 0 {
				return "", fmt.Errorf("store: key %q: \"..\" climbs above the root", raw)
			}
			depth--
		default:
			depth++
		}
	}
	return cleanPath(raw), nil
}

// cleanPath is the key etcd makes of any string: absolute and clean.
func cleanPath(p string) string {
	return path.Clean("/" + p)
}

// isBelow reports whether p is strictly inside the directory dir.
func isBelow(p, dir string) bool {
	if dir == "/" {
		return p != "/" && strings.HasPrefix(p, "/")
	}
	return len(p) > len(dir) && p[len(dir)] == '/' && strings.HasPrefix(p, dir)
}

// hiddenBelow reports whether p, inside dir, is hidden from dir: some
// element of p after dir starts with "_".
func hiddenBelow(p, dir string) bool {
	tail := p
	if dir != "/" {
		tail = p[len(dir):]
	}
	return strings.Contains(tail, "/_")
}
