package image

import (
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// GCResult says what GC (or Remove) deleted.
type GCResult struct {
	// Images are the images removed from the index.
	Images []Image
	// Blobs and BlobBytes count the deleted blobs (manifests, configs,
	// compressed layers) and their size.
	Blobs     int
	BlobBytes int64
	// Layers counts the deleted unpacked layer directories.
	Layers int
}

// Remove deletes image ref (all its names) from the store, with the blobs
// and unpacked layers no other image uses. Layers that a mounted overlay
// still uses stay until a later GC.
func (s *Store) Remove(ref string) (GCResult, error) {
	gc, err := s.lock("lock", true)
	if err != nil {
		return GCResult{}, err
	}
	defer gc.unlock()
	img, err := s.Resolve(ref)
	if err != nil {
		return GCResult{}, err
	}
	res, err := s.dropImages(func(i Image) bool { return i.ID != img.ID })
	if err != nil {
		return res, fmt.Errorf("remove %s: %w", img.ID, err)
	}
	return res, nil
}

// GC deletes the images keep says no to (keep is called once per image;
// nil keeps them all), then every blob and unpacked layer no remaining
// image uses, except layers a mounted overlay uses, and leftovers of
// interrupted fetches. It waits for running fetches to finish.
func (s *Store) GC(keep func(Image) bool) (GCResult, error) {
	gc, err := s.lock("lock", true)
	if err != nil {
		return GCResult{}, err
	}
	defer gc.unlock()
	if keep == nil {
		keep = func(Image) bool { return true }
	}
	res, err := s.dropImages(keep)
	if err != nil {
		return res, fmt.Errorf("image gc: %w", err)
	}
	return res, nil
}

// dropImages removes from the index the images keep rejects and sweeps
// the store. The caller holds the exclusive store lock.
func (s *Store) dropImages(keep func(Image) bool) (GCResult, error) {
	var res GCResult
	err := s.updateIndex(func(idx *v1.IndexManifest) error {
		dropped := map[v1.Hash]bool{}
		for _, img := range images(idx) {
			if !keep(img) {
				res.Images = append(res.Images, img)
				h, err := v1.NewHash(img.ID)
				if err != nil {
					return err
				}
				dropped[h] = true
			}
		}
		var rest []v1.Descriptor
		for _, d := range idx.Manifests {
			if !dropped[d.Digest] {
				rest = append(rest, d)
			}
		}
		if rest == nil {
			rest = []v1.Descriptor{}
		}
		idx.Manifests = rest
		return nil
	})
	if err != nil {
		return res, err
	}
	for _, img := range res.Images {
		s.log.Info("image removed", "id", img.ID, "names", img.Names)
	}
	return res, s.sweep(&res)
}

// sweep deletes unreferenced blobs and layers and the tmp directory's
// contents. The caller holds the exclusive store lock.
func (s *Store) sweep(res *GCResult) error {
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	blobs, layers := map[string]bool{}, map[string]bool{}
	for _, img := range images(idx) {
		blobs[s.path("blobs", "sha256", img.ID[len("sha256:"):])] = true
		m, err := s.manifest(img.ID)
		if err != nil {
			return err
		}
		blobs[s.blobPath(m.Config.Digest)] = true
		for _, l := range m.Layers {
			blobs[s.blobPath(l.Digest)] = true
		}
		cfg, err := s.Config(img.ID)
		if err != nil {
			return err
		}
		for _, d := range cfg.RootFS.DiffIDs {
			layers[s.layerPath(d)] = true
		}
	}
	mounted, err := s.mountedLayers()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := s.path("blobs", "sha256", e.Name())
		if blobs[p] {
			continue
		}
		if info, err := e.Info(); err == nil {
			res.BlobBytes += info.Size()
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		res.Blobs++
	}
	entries, err = os.ReadDir(s.path("layers", "sha256"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := s.path("layers", "sha256", e.Name())
		if layers[p] {
			continue
		}
		if mounted[p] {
			s.log.Info("image gc: layer kept, a mount uses it", "layer", p)
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		res.Layers++
	}
	// No fetch is running (the caller holds the store lock exclusively), so
	// tmp holds only leftovers of interrupted ones and no layer lock is held.
	for _, d := range []string{"tmp", "locks"} {
		entries, err = os.ReadDir(s.path(d))
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := os.RemoveAll(s.path(d, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
