package keypath

import (
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"":            "/",
		"/":           "/",
		"a":           "/a",
		"/v2/keys/a/": "/v2/keys/a/",
		"//a//b":      "/a/b",
		"/a/../b/":    "/b/",
		"/a/./b/.":    "/a/b",
		"/..":         "/",
		"/../":        "/",
	} {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzCanonical checks that a canonical path is absolute, stable and
// free of dot segments.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"", "/a/../b/", "//x//", "a/./b", "/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		c := Canonical(p)
		if !strings.HasPrefix(c, "/") || Canonical(c) != c {
			t.Fatalf("Canonical(%q) = %q: not absolute or not stable", p, c)
		}
		for _, seg := range strings.Split(c, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Canonical(%q) = %q keeps a dot segment", p, c)
			}
		}
	})
}
