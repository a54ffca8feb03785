package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// hostileTars are layer tars that must be refused; outside is a directory
// beside the one unpacked into, which none of them may touch.
func hostileTars(outside string) []struct {
	name    string
	entries []entry
	wantErr string
} {
	return []struct {
		name    string
		entries []entry
		wantErr string
	}{
		{"dotdot", []entry{file("../escaped", "x")}, "escapes the layer"},
		{"dotdot-deep", []entry{dir("a/"), file("a/../../escaped", "x")}, "escapes the layer"},
		{"absolute", []entry{file(outside+"/escaped", "x")}, "absolute name"},
		{"absolute-symlink-parent", []entry{symlink("evil", outside), file("evil/escaped", "x")}, "through a symlink"},
		{"relative-symlink-parent", []entry{dir("a/"), symlink("a/evil", "../../outside"), file("a/evil/escaped", "x")}, "through a symlink"},
		{"symlink-chain", []entry{symlink("one", "two"), symlink("two", "/"), file("one/escaped", "x")}, "through a symlink"},
		{"symlink-dir-entry", []entry{symlink("evil", outside), dir("evil/sub/")}, "through a symlink"},
		{"symlink-whiteout", []entry{symlink("evil", outside), file("evil/.wh.keep", "")}, "through a symlink"},
		{"symlink-opaque", []entry{symlink("evil", outside), file("evil/.wh..wh..opq", "")}, "through a symlink"},
		{"char-device", []entry{dir("dev/"), {name: "dev/mem", typ: tar.TypeChar, major: 1, mode: 0o666}}, "device nodes are not allowed"},
		{"block-device", []entry{{name: "sda", typ: tar.TypeBlock, major: 8, mode: 0o666}}, "device nodes are not allowed"},
		{"hardlink-outside", []entry{hardlink("passwd", "../outside/keep")}, "escapes the layer"},
		{"hardlink-absolute", []entry{hardlink("passwd", "/etc/passwd")}, "absolute name"},
		{"hardlink-later", []entry{hardlink("early", "later"), file("later", "x")}, "not a file written earlier"},
		{"hardlink-through-symlink", []entry{symlink("evil", outside), hardlink("h", "evil/keep")}, "not a file written earlier"},
		{"hardlink-dir", []entry{dir("d/"), hardlink("h", "d")}, "not a file written earlier"},
		{"whiteout-dotdot", []entry{file(".wh...", "")}, "bad whiteout target"},
	}
}

// sandbox is a parent directory holding the directory unpacked into and
// an outside directory with one file in it, which must stay as it is.
func sandbox(t *testing.T) (parent, target, outside string) {
	parent = t.TempDir()
	target, outside = filepath.Join(parent, "layer"), filepath.Join(parent, "outside")
	for _, d := range []string{target, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	return parent, target, outside
}

func checkOutside(t testing.TB, parent, outside string) {
	t.Helper()
	if got := treeOf(t, outside); len(got) != 1 || got[0] != "keep" {
		t.Errorf("outside directory changed: %q", got)
	}
	if data, err := os.ReadFile(filepath.Join(outside, "keep")); err != nil || string(data) != "keep" {
		t.Errorf("outside/keep changed: %q, %v", data, err)
	}
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.Name() != "layer" && e.Name() != "outside" && e.Name() != "rkt" {
			t.Errorf("%s appeared beside the layer", e.Name())
		}
	}
	if _, err := os.Lstat("/escaped"); err == nil {
		t.Errorf("/escaped exists")
	}
}

func TestUnpackRefusesHostileTars(t *testing.T) {
	for _, mode := range []unpackMode{overlayLayer, flattened} {
		_, _, outside0 := sandbox(t)
		for _, c := range hostileTars(outside0) {
			t.Run(c.name, func(t *testing.T) {
				parent, target, outside := sandbox(t)
				// Re-point absolute names at this sandbox's outside.
				entries := make([]entry, len(c.entries))
				for i, e := range c.entries {
					e.name = strings.Replace(e.name, outside0, outside, 1)
					e.link = strings.Replace(e.link, outside0, outside, 1)
					entries[i] = e
				}
				err := unpackLayer(bytes.NewReader(tarBytes(t, entries...)), target, mode, testLogger(t))
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("mode %d: error %v, want one with %q", mode, err, c.wantErr)
				}
				checkOutside(t, parent, outside)
			})
		}
	}
}

// fetchBad fetches img from an OCI layout into a fresh store and checks
// that it fails with wantErr and leaves nothing behind, in the store or
// outside it.
func fetchBad(t *testing.T, ref string, wantErr string, outside string) {
	t.Helper()
	s, err := Open(filepath.Join(filepath.Dir(outside), "rkt"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Fetch(context.Background(), ref, FetchOptions{Insecure: true})
	if err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("Fetch error %v, want one with %q", err, wantErr)
	}
	list, _ := s.List()
	if len(list) != 0 {
		t.Errorf("images after a failed fetch: %+v", list)
	}
	for _, d := range []string{"blobs/sha256", "layers/sha256", "tmp"} {
		if left := treeOf(t, s.path(d)); len(left) != 0 {
			t.Errorf("%s after a failed fetch: %q", d, left)
		}
	}
	checkOutside(t, filepath.Dir(outside), outside)
}

func TestFetchRefusesHostileLayers(t *testing.T) {
	good := layer(t, dir("etc/"), file("etc/ok", "ok"))
	_, _, outside0 := sandbox(t)
	for _, c := range hostileTars(outside0) {
		t.Run(c.name, func(t *testing.T) {
			parent, _, outside := sandbox(t)
			_ = parent
			entries := make([]entry, len(c.entries))
			for i, e := range c.entries {
				e.name = strings.Replace(e.name, outside0, outside, 1)
				e.link = strings.Replace(e.link, outside0, outside, 1)
				entries[i] = e
			}
			img := ociImage(t, good, layer(t, entries...))
			fetchBad(t, "oci-layout:"+writeLayout(t, img, "v1"), c.wantErr, outside)
		})
	}
}

func TestFetchRefusesCorruptGzip(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(tarBytes(t, file("a", strings.Repeat("corebox ", 4096))))
	zw.Close()
	data := buf.Bytes()
	data[len(data)/2] ^= 0xff // the blob's digest is of these bytes: only gzip notices
	img := ociImage(t, static.NewLayer(data, types.OCILayer))
	_, _, outside := sandbox(t)
	fetchBad(t, "oci-layout:"+writeLayout(t, img, "v1"), "layer", outside)
}

func TestFetchRefusesTamperedBlob(t *testing.T) {
	img := ociImage(t, layer(t, file("a", strings.Repeat("a", 10000))))
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layerDigest := m.Layers[0].Digest

	t.Run("oci-layout", func(t *testing.T) {
		dir := writeLayout(t, img, "v1")
		blob := filepath.Join(dir, "blobs", "sha256", layerDigest.Hex)
		other := layerBlob(t, layer(t, file("a", strings.Repeat("b", 10000))))
		if err := os.WriteFile(blob, other, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, outside := sandbox(t)
		fetchBad(t, "oci-layout:"+dir, "digest", outside)
	})
	t.Run("config", func(t *testing.T) {
		dir := writeLayout(t, img, "v1")
		blob := filepath.Join(dir, "blobs", "sha256", m.Config.Digest.Hex)
		cfg, _ := os.ReadFile(blob)
		if err := os.WriteFile(blob, bytes.Replace(cfg, []byte("/bin/sh"), []byte("/bin/xx"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, outside := sandbox(t)
		fetchBad(t, "oci-layout:"+dir, "digest mismatch", outside)
	})
	t.Run("registry", func(t *testing.T) {
		host := startRegistry(t, registry.WithBlobHandler(&tamperingBlobs{BlobHandler: registry.NewInMemoryBlobHandler(), target: layerDigest}))
		push(t, img, host+"/test/tampered:v1")
		_, _, outside := sandbox(t)
		fetchBad(t, "docker://"+host+"/test/tampered:v1", "sha256", outside)
	})
	t.Run("diffid", func(t *testing.T) {
		cfg, _ := img.ConfigFile()
		cfg = cfg.DeepCopy()
		cfg.RootFS.DiffIDs[0] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
		bad, err := mutate.ConfigFile(img, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _, outside := sandbox(t)
		fetchBad(t, "oci-layout:"+writeLayout(t, bad, "v1"), "diffID", outside)
	})
	t.Run("missing-blob", func(t *testing.T) {
		dir := writeLayout(t, img, "v1")
		if err := os.Remove(filepath.Join(dir, "blobs", "sha256", layerDigest.Hex)); err != nil {
			t.Fatal(err)
		}
		_, _, outside := sandbox(t)
		fetchBad(t, "oci-layout:"+dir, "no such file", outside)
	})
	t.Run("missing-registry-blob", func(t *testing.T) {
		handler := &tamperingBlobs{BlobHandler: registry.NewInMemoryBlobHandler(), target: layerDigest, drop: true}
		host := startRegistry(t, registry.WithBlobHandler(handler))
		push(t, img, host+"/test/missing:v1")
		_, _, outside := sandbox(t)
		fetchBad(t, "docker://"+host+"/test/missing:v1", "layer", outside)
	})
}

func layerBlob(t *testing.T, l v1.Layer) []byte {
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// tamperingBlobs serves blob target with one byte changed (or not at all).
type tamperingBlobs struct {
	registry.BlobHandler
	target v1.Hash
	drop   bool
}

func (b *tamperingBlobs) Get(ctx context.Context, repo string, h v1.Hash) (io.ReadCloser, error) {
	rc, err := b.BlobHandler.Get(ctx, repo, h)
	if err != nil || h != b.target {
		return rc, err
	}
	if b.drop {
		rc.Close()
		return nil, registry.RedirectError{Location: "http://127.0.0.1:1/nowhere", Code: http.StatusTemporaryRedirect}
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, err
	}
	data[len(data)-10] ^= 0x01
	return io.NopCloser(bytes.NewReader(data)), nil
}

// Stat is needed for the push to find the blob; Put and Delete pass through.
func (b *tamperingBlobs) Stat(ctx context.Context, repo string, h v1.Hash) (int64, error) {
	if s, ok := b.BlobHandler.(registry.BlobStatHandler); ok {
		return s.Stat(ctx, repo, h)
	}
	return 0, errors.ErrUnsupported
}

func (b *tamperingBlobs) Put(ctx context.Context, repo string, h v1.Hash, rc io.ReadCloser) error {
	return b.BlobHandler.(registry.BlobPutHandler).Put(ctx, repo, h, rc)
}
