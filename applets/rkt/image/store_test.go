package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestFetchSources(t *testing.T) {
	img := ociImage(t, busyboxLayer(t), layer(t, file("etc/second", "2\n")))
	id := imageID(t, img)
	host := startRegistry(t)
	push(t, img, host+"/test/busybox:v1")
	layoutDir := writeLayout(t, img, "v1")
	named := writeLayout(t, img, "quay.io/corebox/busybox:2")

	cases := []struct {
		ref       string
		names     []string
		sameID    bool // docker archives get a manifest recomputed by the reader
		wantLayer int
	}{
		{ref: "docker://" + host + "/test/busybox:v1", names: []string{host + "/test/busybox:v1"}, sameID: true},
		{ref: "docker://" + host + "/test/busybox@" + id, sameID: true},
		{ref: "oci-layout:" + layoutDir, names: []string{"localhost/layout:v1"}, sameID: true},
		{ref: "oci-layout:" + layoutDir + ":v1", names: []string{"localhost/layout:v1"}, sameID: true},
		{ref: "oci-layout:" + named, names: []string{"quay.io/corebox/busybox:2"}, sameID: true},
		{ref: "oci-archive:" + tarDir(t, layoutDir), names: []string{"localhost/layout:v1"}, sameID: true},
		{ref: "docker-archive:" + writeDockerArchive(t, img, "busybox:1.36"), names: []string{"docker.io/library/busybox:1.36"}},
		{ref: "docker-archive:" + writeDockerArchive(t, img, "busybox:1.36") + ":busybox:1.36", names: []string{"docker.io/library/busybox:1.36"}},
	}
	for _, c := range cases {
		t.Run(strings.SplitN(c.ref, ":", 2)[0], func(t *testing.T) {
			s := openStore(t)
			got, err := s.Fetch(context.Background(), c.ref, FetchOptions{Insecure: true})
			if err != nil {
				t.Fatal(err)
			}
			if c.sameID && got.ID != id {
				t.Errorf("ID %s, want %s", got.ID, id)
			}
			if !slices.Equal(got.Names, c.names) {
				t.Errorf("names %q, want %q", got.Names, c.names)
			}
			layers, err := s.Layers(got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(layers) != 2 {
				t.Fatalf("%d layers, want 2", len(layers))
			}
			if data, err := os.ReadFile(filepath.Join(layers[0], "etc/hello")); err != nil || string(data) != "hello\n" {
				t.Errorf("layer 0 etc/hello: %q, %v", data, err)
			}
			if _, err := os.Stat(filepath.Join(layers[1], "etc/second")); err != nil {
				t.Error(err)
			}
			cfg, err := s.Config(got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Config.Cmd, []string{"/bin/sh"}) {
				t.Errorf("config cmd %q", cfg.Config.Cmd)
			}
			if left := treeOf(t, s.path("tmp")); len(left) != 0 {
				t.Errorf("tmp not empty after fetch: %q", left)
			}
		})
	}
}

func TestFetchTwiceReusesLayers(t *testing.T) {
	img := ociImage(t, busyboxLayer(t))
	dir := writeLayout(t, img, "v1")
	s := openStore(t)
	a, err := s.Fetch(context.Background(), "oci-layout:"+dir, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l1, _ := s.Layers(a.ID)
	st1, err := os.Stat(filepath.Join(l1[0], "bin/busybox"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Fetch(context.Background(), "oci-layout:"+dir, FetchOptions{Name: "other:1"})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != b.ID || !slices.Equal(b.Names, []string{"docker.io/library/other:1", "localhost/layout:v1"}) {
		t.Errorf("second fetch: %+v", b)
	}
	st2, err := os.Stat(filepath.Join(l1[0], "bin/busybox"))
	if err != nil || !os.SameFile(st1, st2) {
		t.Errorf("layer was unpacked again (%v)", err)
	}
}

func TestResolve(t *testing.T) {
	s := openStore(t)
	base := busyboxLayer(t)
	// Fetch images until two IDs share their first hex digit (at most 17).
	byFirst := map[byte][]string{}
	var collide byte
	for i := 0; collide == 0; i++ {
		img := ociImage(t, base, layer(t, file("n", fmt.Sprint(i))))
		got, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, img, "v1"), FetchOptions{Name: fmt.Sprintf("img%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		c := got.ID[len("sha256:")]
		byFirst[c] = append(byFirst[c], got.ID)
		if len(byFirst[c]) == 2 {
			collide = c
		}
	}
	one := byFirst[collide][0]
	cases := []struct {
		ref     string
		want    string
		wantErr string
	}{
		{ref: "img0", want: "docker.io/library/img0:latest"},
		{ref: "img0:latest", want: "docker.io/library/img0:latest"},
		{ref: "docker.io/library/img1", want: "docker.io/library/img1:latest"},
		{ref: "index.docker.io/library/img1:latest", want: "docker.io/library/img1:latest"},
		{ref: one, want: one},
		{ref: one[:20], want: one},
		{ref: strings.TrimPrefix(one, "sha256:")[:12], want: one},
		{ref: "img0@" + one, want: one},
		{ref: "sha256:" + string(collide), wantErr: "ambiguous"},
		{ref: "nosuch", wantErr: "no such image"},
		{ref: "sha256:", wantErr: "no such image"},
		{ref: "Bad Name", wantErr: "no such image"},
	}
	for _, c := range cases {
		got, err := s.Resolve(c.ref)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Resolve(%q) = %v, %v; want error with %q", c.ref, got.ID, err, c.wantErr)
			}
			if c.wantErr == "ambiguous" && err != nil {
				for _, id := range byFirst[collide] {
					if !strings.Contains(err.Error(), id) {
						t.Errorf("ambiguity error %q does not list %s", err, id)
					}
				}
			}
			continue
		}
		if err != nil {
			t.Errorf("Resolve(%q): %v", c.ref, err)
			continue
		}
		if got.ID != c.want && !slices.Contains(got.Names, c.want) {
			t.Errorf("Resolve(%q) = %s %q, want %s", c.ref, got.ID, got.Names, c.want)
		}
	}
}

func TestNameMovesToNewImage(t *testing.T) {
	s := openStore(t)
	base := busyboxLayer(t)
	a, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, ociImage(t, base), "v1"), FetchOptions{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, ociImage(t, base, layer(t, file("v", "2"))), "v1"), FetchOptions{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve("app")
	if err != nil || got.ID != b.ID {
		t.Fatalf("app resolves to %v, %v; want %s", got.ID, err, b.ID)
	}
	old, err := s.Resolve(a.ID)
	if err != nil || len(old.Names) != 0 {
		t.Fatalf("old image: %+v, %v; want it kept, unnamed", old, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List: %d images, %v", len(list), err)
	}
}

func TestListRemoveGC(t *testing.T) {
	s := openStore(t)
	base := busyboxLayer(t)
	imgA := ociImage(t, base, layer(t, file("a", "a")))
	imgB := ociImage(t, base, layer(t, file("b", "b")))
	a, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, imgA, "v1"), FetchOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, imgB, "v1"), FetchOptions{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Fatalf("List: %+v", list)
	}
	if list[0].Size < 1<<20 {
		t.Errorf("size %d does not count the busybox layer", list[0].Size)
	}
	if n := len(treeOf(t, s.path("layers", "sha256"))); n < 3 {
		t.Fatalf("%d layer entries", n)
	}
	layersA, _ := s.Layers(a.ID)
	layersB, _ := s.Layers(b.ID)
	if layersA[0] != layersB[0] {
		t.Errorf("the shared base layer is unpacked twice: %s, %s", layersA[0], layersB[0])
	}

	// GC keeping b drops a and a's own layer, not the shared one.
	res, err := s.GC(func(img Image) bool { return img.ID == b.ID })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Images[0].ID != a.ID || res.Layers != 1 || res.Blobs != 3 {
		t.Errorf("GC result %+v; want image a, 1 layer, 3 blobs", res)
	}
	if _, err := s.Resolve("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a after gc: %v", err)
	}
	for _, l := range layersB {
		if !exists(l) {
			t.Errorf("layer %s of kept image b removed", l)
		}
	}
	if exists(layersA[1]) {
		t.Errorf("layer %s of removed image a kept", layersA[1])
	}

	res, err = s.Remove("b")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 1 || res.Layers != 2 {
		t.Errorf("Remove result %+v", res)
	}
	if left := treeOf(t, s.path("blobs", "sha256")); len(left) != 0 {
		t.Errorf("blobs left: %q", left)
	}
	if left := treeOf(t, s.path("layers", "sha256")); len(left) != 0 {
		t.Errorf("layers left: %q", left)
	}
	if _, err := s.Remove("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing b twice: %v", err)
	}
}

func TestExportRoundTrip(t *testing.T) {
	img := ociImage(t, busyboxLayer(t), layer(t, file("etc/x", "x")))
	src := openStore(t)
	got, err := src.Fetch(context.Background(), "oci-layout:"+writeLayout(t, img, "v1"), FetchOptions{Name: "corebox/rt:1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		format    ExportFormat
		transport string
	}{{OCIArchiveFormat, "oci-archive:"}, {DockerArchiveFormat, "docker-archive:"}} {
		var buf bytes.Buffer
		if err := src.Export("corebox/rt:1", c.format, &buf); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "export.tar")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		dst := openStore(t)
		back, err := dst.Fetch(context.Background(), c.transport+p, FetchOptions{})
		if err != nil {
			t.Fatalf("%s re-fetch: %v", c.transport, err)
		}
		if !slices.Equal(back.Names, []string{"docker.io/corebox/rt:1"}) {
			t.Errorf("%s names %q", c.transport, back.Names)
		}
		if c.format == OCIArchiveFormat && back.ID != got.ID {
			t.Errorf("OCI round trip changed the ID: %s → %s", got.ID, back.ID)
		}
		c1, _ := src.RawConfig(got.ID)
		c2, _ := dst.RawConfig(back.ID)
		if !bytes.Equal(c1, c2) {
			t.Errorf("%s round trip changed the config", c.transport)
		}
	}
}

// whiteoutImage is busybox plus a layer with a/x, a/y, f, o/1 and
// o/sub/deep, and a layer that deletes a/x and f and makes o opaque, with
// o/2 and o/sub/new in it.
func whiteoutImage(t testing.TB) v1.Image {
	return ociImage(t, busyboxLayer(t),
		layer(t, dir("a/"), file("a/x", "x"), file("a/y", "y"), file("f", "f"), dir("o/"), file("o/1", "1"), dir("o/sub/"), file("o/sub/deep", "d")),
		layer(t, file("a/.wh.x", ""), file(".wh.f", ""), dir("o/"), file("o/.wh..wh..opq", ""), file("o/2", "2"), dir("o/sub/"), file("o/sub/new", "n")))
}

func TestExtractAppliesWhiteouts(t *testing.T) {
	img := whiteoutImage(t)
	s := openStore(t)
	got, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, img, "v1"), FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rootfs")
	if err := s.Extract(got.ID, out); err != nil {
		t.Fatal(err)
	}
	checkMerged(t, out)
	if err := s.Extract(got.ID, out); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("extract into a non-empty dir: %v", err)
	}
}

// checkMerged checks the merged view of the whiteout image.
func checkMerged(t *testing.T, root string) {
	t.Helper()
	for p, want := range map[string]bool{
		"a/x": false, "a/y": true, "f": false, "o/1": false, "o/2": true,
		"o/sub/deep": false, "o/sub/new": true, "bin/busybox": true, "etc/hello": true,
	} {
		if _, err := os.Lstat(filepath.Join(root, p)); (err == nil) != want {
			t.Errorf("%s: present=%v, want %v", p, err == nil, want)
		}
	}
}

func TestConcurrentFetch(t *testing.T) {
	img := ociImage(t, busyboxLayer(t), layer(t, file("c", "c")))
	host := startRegistry(t)
	ref := "docker://" + host + "/test/concurrent:v1"
	push(t, img, strings.TrimPrefix(ref, "docker://"))
	root := filepath.Join(t.TempDir(), "rkt")

	// Two other processes and three goroutines fetch the same image into
	// the same store at once.
	var procs []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFetch$")
		cmd.Env = append(os.Environ(), "IMAGE_TEST_FETCH_ROOT="+root, "IMAGE_TEST_FETCH_REF="+ref)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		t.Cleanup(func() { t.Logf("helper output:\n%s", out.String()) })
	}
	var wg sync.WaitGroup
	ids := make([]string, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(root, testLogger(t))
			if err == nil {
				var got Image
				got, err = s.Fetch(context.Background(), ref, FetchOptions{Insecure: true})
				ids[i] = got.ID
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}
	for i := range 3 {
		if errs[i] != nil || ids[i] != imageID(t, img) {
			t.Errorf("goroutine %d: %s, %v", i, ids[i], errs[i])
		}
	}
	s, _ := Open(root, testLogger(t))
	list, err := s.List()
	if err != nil || len(list) != 1 {
		t.Fatalf("List: %+v, %v", list, err)
	}
	if n := len(treeOf(t, s.path("layers", "sha256"))); n == 0 {
		t.Fatal("no layers")
	}
	entries, _ := os.ReadDir(s.path("layers", "sha256"))
	if len(entries) != 2 {
		t.Errorf("%d unpacked layers, want 2", len(entries))
	}
	layers, err := s.Layers(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(layers[1], "c")); err != nil || string(data) != "c" {
		t.Errorf("layer content %q, %v", data, err)
	}
}

// TestHelperFetch is TestConcurrentFetch's other process.
func TestHelperFetch(t *testing.T) {
	root := os.Getenv("IMAGE_TEST_FETCH_ROOT")
	if root == "" {
		t.Skip("helper process for TestConcurrentFetch")
	}
	s, err := Open(root, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(context.Background(), os.Getenv("IMAGE_TEST_FETCH_REF"), FetchOptions{Insecure: true}); err != nil {
		t.Fatal(err)
	}
}
