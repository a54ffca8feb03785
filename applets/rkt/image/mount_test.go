package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMountOverlayWhiteouts(t *testing.T) {
	needRoot(t)
	s := openStore(t)
	got, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, whiteoutImage(t), "v1"), FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	layers, err := s.Layers(got.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The top layer holds overlayfs' own whiteouts and opaque marker.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(layers[2], "a/x"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("a/x in the top layer is not a 0:0 whiteout: mode %o rdev %d, %v", st.Mode, st.Rdev, err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(layers[2], "o"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("o in the top layer: %s = %q, %v", opaqueXattr, buf[:n], err)
	}

	pods := t.TempDir()
	pod1, pod2 := filepath.Join(pods, "pod1"), filepath.Join(pods, "pod2")
	root1, err := s.Mount(got.ID, pod1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Unmount(pod1) })
	root2, err := s.Mount("localhost/layout:v1", pod2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Unmount(pod2) })

	checkMerged(t, root1)
	checkMerged(t, root2)

	// A real program runs in the mounted rootfs and sees the same.
	out, err := exec.Command("chroot", root1, "/bin/sh", "-c", "cat /etc/hello; ls /o; test -e /a/x || echo gone").CombinedOutput()
	if err != nil {
		t.Fatalf("chroot: %v: %s", err, out)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != "hello 2 sub gone" {
		t.Errorf("in the container: %q", out)
	}

	// Writes go to the pod's upper directory, not to the shared layers.
	if err := os.WriteFile(filepath.Join(root1, "etc/hello"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root1, "a/y")); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(root2, "etc/hello")); string(data) != "hello\n" {
		t.Errorf("pod2 sees pod1's write: %q", data)
	}
	if data, _ := os.ReadFile(filepath.Join(layers[0], "etc/hello")); string(data) != "hello\n" {
		t.Errorf("the shared layer was written: %q", data)
	}
	if _, err := os.Stat(filepath.Join(root2, "a/y")); err != nil {
		t.Errorf("pod2 lost a/y: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(pod1, "upper/etc/hello")); string(data) != "changed\n" {
		t.Errorf("upper/etc/hello = %q", data)
	}

	// Both mounts use the same layer directories.
	mounted, err := s.mountedLayers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		if !mounted[l] {
			t.Errorf("layer %s is not a lowerdir of the mounts (%v)", l, mounted)
		}
	}
	entries, _ := os.ReadDir(s.path("layers", "sha256"))
	if len(entries) != 3 {
		t.Errorf("%d unpacked layers for two mounts of a 3-layer image", len(entries))
	}

	// GC that drops the image keeps the layers mounted pods use.
	res, err := s.GC(func(Image) bool { return false })
	if err != nil {
		t.Fatal(err)
	}
	if res.Layers != 0 || len(res.Images) != 1 {
		t.Errorf("gc while mounted: %+v", res)
	}
	for _, l := range layers {
		if !exists(l) {
			t.Errorf("gc removed mounted layer %s", l)
		}
	}
	if err := s.Unmount(pod1); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount(pod2); err != nil {
		t.Fatal(err)
	}
	if err := s.Unmount(pod2); err != nil {
		t.Errorf("second unmount: %v", err)
	}
	res, err = s.GC(nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Layers != 3 {
		t.Errorf("gc after unmount removed %d layers, want 3", res.Layers)
	}
}

func TestMountRefusesBadPodDir(t *testing.T) {
	needRoot(t)
	s := openStore(t)
	got, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, ociImage(t, layer(t, file("a", "a"))), "v1"), FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount(got.ID, filepath.Join(t.TempDir(), "a,upperdir=x")); err == nil || !strings.Contains(err.Error(), "overlayfs options") {
		t.Errorf("pod dir with a comma: %v", err)
	}
	if _, err := s.Mount("nosuch", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no such image") {
		t.Errorf("unknown image: %v", err)
	}
}

func TestLayersUnpacksMissing(t *testing.T) {
	s := openStore(t)
	got, err := s.Fetch(context.Background(), "oci-layout:"+writeLayout(t, ociImage(t, layer(t, file("a", "a"))), "v1"), FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := s.Layers(got.ID)
	if err := os.RemoveAll(layers[0]); err != nil {
		t.Fatal(err)
	}
	again, err := s.Layers(got.ID)
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(again[0], "a")); err != nil || string(data) != "a" {
		t.Errorf("re-unpacked layer: %q, %v", data, err)
	}
}
