package image

import (
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	cases := []struct {
		in       string
		insecure bool
		want     string // Source.String(), or the error's text
		kind     SourceKind
		path     string
		tag      string
	}{
		{in: "docker://busybox", want: "docker://busybox", kind: Registry},
		{in: "docker://127.0.0.1:5000/test/app:v1", want: "docker://127.0.0.1:5000/test/app:v1", kind: Registry},
		{in: "docker://quay.io/coreos/etcd@sha256:" + strings.Repeat("ab", 32), want: "docker://quay.io/coreos/etcd@sha256:" + strings.Repeat("ab", 32), kind: Registry},
		{in: "oci-layout:/srv/img", want: "oci-layout:/srv/img", kind: OCILayout, path: "/srv/img"},
		{in: "oci-layout:/srv/img:v2", want: "oci-layout:/srv/img:v2", kind: OCILayout, path: "/srv/img", tag: "v2"},
		{in: "oci:rel/dir:latest", want: "oci-layout:rel/dir:latest", kind: OCILayout, path: "rel/dir", tag: "latest"},
		{in: "oci-archive:/x.tar", want: "oci-archive:/x.tar", kind: OCIArchive, path: "/x.tar"},
		{in: "docker-archive:/x.tar:busybox:1.36", want: "docker-archive:/x.tar:busybox:1.36", kind: DockerArchive, path: "/x.tar", tag: "busybox:1.36"},
		{in: "busybox", want: "no transport"},
		{in: "docker:busybox", want: "want docker://"},
		{in: "docker://", want: "want docker://"},
		{in: "docker://UPPER/Case", want: "could not parse reference"},
		{in: "http://example.com/x", want: "unknown transport"},
		{in: "oci-layout:", want: "empty path"},
		{in: "oci-layout:/x:bad tag", want: "not a valid ref.name"},
		{in: "docker-archive:/x.tar:Bad Name", want: "not an image name"},
	}
	for _, c := range cases {
		src, err := ParseSource(c.in, c.insecure)
		if err != nil {
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.in) {
				t.Errorf("ParseSource(%q): %v, want an error with %q naming the input", c.in, err, c.want)
			}
			continue
		}
		if src.String() != c.want || src.Kind != c.kind || src.Path != c.path || src.Tag != c.tag {
			t.Errorf("ParseSource(%q) = %+v (%s), want %s kind %v path %q tag %q", c.in, src, src, c.want, c.kind, c.path, c.tag)
		}
	}
	if src, _ := ParseSource("docker://example.com/x", true); src.Ref.Context().Scheme() != "http" {
		t.Errorf("insecure registry scheme %s", src.Ref.Context().Scheme())
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                               "docker.io/library/busybox:latest",
		"busybox:1.36":                          "docker.io/library/busybox:1.36",
		"library/busybox":                       "docker.io/library/busybox:latest",
		"docker.io/library/busybox":             "docker.io/library/busybox:latest",
		"index.docker.io/library/busybox":       "docker.io/library/busybox:latest",
		"coreos/etcd:v3":                        "docker.io/coreos/etcd:v3",
		"quay.io/coreos/etcd":                   "quay.io/coreos/etcd:latest",
		"localhost:5000/app:1":                  "localhost:5000/app:1",
		"app@sha256:" + strings.Repeat("0", 64): "docker.io/library/app@sha256:" + strings.Repeat("0", 64),
	} {
		if got, err := NormalizeName(in); err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "UPPER", "a b", "x:", "@sha256:1"} {
		if got, err := NormalizeName(bad); err == nil {
			t.Errorf("NormalizeName(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"docker://busybox", "docker://127.0.0.1:5000/a/b:c", "oci-layout:/x:y", "oci-archive:/a.tar",
		"docker-archive:/a.tar:busybox:1", "docker://x@sha256:" + strings.Repeat("a", 64), "oci:", "::", "docker:///"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, in string, insecure bool) {
		src, err := ParseSource(in, insecure)
		if err != nil {
			return
		}
		// What parses prints back to something that parses the same.
		again, err := ParseSource(src.String(), insecure)
		if err != nil {
			t.Fatalf("ParseSource(%q) = %s, which does not parse: %v", in, src, err)
		}
		if again.String() != src.String() || again.Kind != src.Kind {
			t.Fatalf("round trip %q → %s → %s", in, src, again)
		}
		if src.Kind != Registry && (src.Path == "" || strings.ContainsRune(src.Path, 0)) {
			t.Fatalf("ParseSource(%q): bad path %q", in, src.Path)
		}
		if n, err := NormalizeName(in); err == nil {
			if again, err := NormalizeName(n); err != nil || again != n {
				t.Fatalf("NormalizeName not idempotent: %q → %q → %q, %v", in, n, again, err)
			}
		}
	})
}
