// Package imagetest builds container images for tests in other packages:
// a small real image from the host's busybox-static. It owns no store and
// no registry; callers write the image where they need it (an OCI layout,
// an in-process registry).
package imagetest

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Applets are linked to /bin/busybox in the image.
var Applets = []string{"sh", "true", "false", "sleep", "cat", "echo", "ls", "id", "hostname", "ping", "ip", "ps", "kill", "mkdir", "touch", "env", "wc", "head", "dd", "grep", "pwd", "mount", "nc", "sed", "seq", "tr", "cut"}

// Busybox returns a linux/amd64 image of one layer: Debian's busybox-static
// at /bin/busybox with its Applets linked in /bin, an /etc/passwd and
// /etc/group, and cfg as its config (PATH=/bin unless cfg sets Env). It
// skips t when /bin/busybox is missing.
func Busybox(t testing.TB, cfg v1.Config) v1.Image {
	t.Helper()
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("needs Debian's busybox-static at /bin/busybox: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"bin/", "etc/", "tmp/", "proc/", "sys/", "dev/", "root/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode})
	}
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	for _, a := range Applets {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	}
	for name, body := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\ncore:x:500:501:core:/:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\ncore:x:501:\nwheel:x:10:\n",
	} {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		io.WriteString(tw, body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Env == nil {
		cfg.Env = []string{"PATH=/bin"}
	}
	img, err = mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}
