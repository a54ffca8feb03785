package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/corebox/corebox/internal/mountinfo"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// Layers returns the unpacked layer directories of image id (a full ID, or
// anything Resolve takes), lowest first, unpacking any that are missing
// from the store's blobs. They are shared: callers must not write to them.
// A directory returned here is only protected from GC while an overlay
// mount uses it (or the image is kept), so prefer Mount.
func (s *Store) Layers(id string) ([]string, error) {
	gc, err := s.lock("lock", false)
	if err != nil {
		return nil, err
	}
	defer gc.unlock()
	return s.layers(context.Background(), id)
}

func (s *Store) layers(ctx context.Context, ref string) ([]string, error) {
	img, err := s.Resolve(ref)
	if err != nil {
		return nil, err
	}
	m, err := s.manifest(img.ID)
	if err != nil {
		return nil, err
	}
	cfg, err := s.Config(img.ID)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: the manifest lists %d layers, the config %d diffIDs", img.ID, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	dirs := make([]string, len(m.Layers))
	for i, desc := range m.Layers {
		diffID := cfg.RootFS.DiffIDs[i]
		dirs[i] = s.layerPath(diffID)
		if exists(dirs[i]) {
			continue
		}
		s.log.Info("unpacking missing layer", "image", img.ID, "layer", desc.Digest.String())
		if err := s.unpackStored(ctx, desc, diffID); err != nil {
			return nil, fmt.Errorf("image %s: %w", img.ID, err)
		}
	}
	return dirs, nil
}

// unpackStored unpacks layer blob desc, already in the store, as diffID.
func (s *Store) unpackStored(ctx context.Context, desc v1.Descriptor, diffID v1.Hash) error {
	l, err := s.lock(filepath.Join("locks", "layer-"+diffID.Hex), true)
	if err != nil {
		return err
	}
	defer l.unlock()
	if exists(s.layerPath(diffID)) {
		return nil
	}
	f, err := os.Open(s.blobPath(desc.Digest))
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer f.Close()
	return s.writeLayer(ctx, f, desc, diffID, false, true, newProgressBar(nil, ""))
}

// Mount mounts image ref's root file system at podDir/rootfs: an overlayfs
// whose lower layers are the image's shared layer directories and whose
// upper and work directories are podDir/upper and podDir/work. podDir
// belongs to the caller (one per mounted rootfs); Unmount undoes Mount.
// Needs root.
func (s *Store) Mount(ref, podDir string) (string, error) {
	gc, err := s.lock("lock", false)
	if err != nil {
		return "", err
	}
	defer gc.unlock()
	layers, err := s.layers(context.Background(), ref)
	if err != nil {
		return "", err
	}
	if len(layers) == 0 {
		empty := s.path("layers", "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return "", err
		}
		layers = []string{empty}
	}
	podDir, err = filepath.Abs(podDir)
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(podDir, ",:\\") {
		return "", fmt.Errorf("mount %s: pod directory %q holds a character overlayfs options cannot carry (',', ':' or '\\')", ref, podDir)
	}
	rootfs := filepath.Join(podDir, "rootfs")
	upper, work := filepath.Join(podDir, "upper"), filepath.Join(podDir, "work")
	for _, d := range []string{rootfs, upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("mount %s: %w", ref, err)
		}
	}
	// overlayfs takes the topmost lower layer first.
	lower := slices.Clone(layers)
	slices.Reverse(lower)
	opts := "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(opts) >= os.Getpagesize() {
		return "", fmt.Errorf("mount %s: %d layers make overlayfs options of %d bytes, more than the kernel's %d", ref, len(layers), len(opts), os.Getpagesize()-1)
	}
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("mount %s at %s: overlay: %w", ref, rootfs, err)
	}
	s.log.Debug("image mounted", "image", ref, "rootfs", rootfs, "layers", len(layers))
	return rootfs, nil
}

// Unmount unmounts podDir/rootfs (mounted by Mount) and removes the work
// directory; the upper directory (the pod's changes) stays for the caller.
// An rootfs that is not mounted is not an error.
func (s *Store) Unmount(podDir string) error {
	rootfs := filepath.Join(podDir, "rootfs")
	err := unix.Unmount(rootfs, 0)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(rootfs, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", rootfs, err)
	}
	if err := os.RemoveAll(filepath.Join(podDir, "work")); err != nil {
		return fmt.Errorf("unmount %s: %w", rootfs, err)
	}
	return nil
}

// mountedLayers returns the store's layer directories that overlay mounts
// in this mount namespace use as lower layers (from /proc/self/mountinfo).
func (s *Store) mountedLayers() (map[string]bool, error) {
	mounts, err := mountinfo.Self()
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	prefix := s.path("layers") + "/"
	for _, m := range mounts {
		if m.FSType != "overlay" {
			continue
		}
		for _, opt := range strings.Split(m.SuperOptions, ",") {
			lower, ok := strings.CutPrefix(opt, "lowerdir=")
			if !ok {
				// Mounts made with fsconfig list one layer per lowerdir+.
				if lower, ok = strings.CutPrefix(opt, "lowerdir+="); !ok {
					continue
				}
			}
			for _, l := range strings.Split(lower, ":") {
				l = mountinfo.Unescape(l)
				if strings.HasPrefix(l, prefix) {
					used[l] = true
				}
			}
		}
	}
	return used, nil
}
