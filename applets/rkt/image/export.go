package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ExportFormat is the tar format Export writes.
type ExportFormat int

const (
	// OCIArchiveFormat is an OCI image layout in a tar (what oci-archive: reads).
	OCIArchiveFormat ExportFormat = iota
	// DockerArchiveFormat is what `docker save` writes and `docker load` reads.
	DockerArchiveFormat
)

// Export writes image ref, with its names, to w as a tar in format.
func (s *Store) Export(ref string, format ExportFormat, w io.Writer) error {
	gc, err := s.lock("lock", false)
	if err != nil {
		return err
	}
	defer gc.unlock()
	img, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	switch format {
	case OCIArchiveFormat:
		err = s.exportOCI(img, w)
	case DockerArchiveFormat:
		err = s.exportDocker(img, w)
	default:
		err = fmt.Errorf("unknown export format %d", format)
	}
	if err != nil {
		return fmt.Errorf("export %s: %w", img.ID, err)
	}
	return nil
}

func (s *Store) exportOCI(img Image, w io.Writer) error {
	m, err := s.manifest(img.ID)
	if err != nil {
		return err
	}
	raw, err := s.Manifest(img.ID)
	if err != nil {
		return err
	}
	id, err := v1.NewHash(img.ID)
	if err != nil {
		return err
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, n := range img.Names {
		idx.Manifests = append(idx.Manifests, v1.Descriptor{MediaType: mt, Digest: id, Size: int64(len(raw)),
			Annotations: map[string]string{ocispec.AnnotationRefName: n}})
	}
	if len(img.Names) == 0 {
		idx.Manifests = []v1.Descriptor{{MediaType: mt, Digest: id, Size: int64(len(raw))}}
	}
	index, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	epoch := time.Unix(0, 0)
	tw := tar.NewWriter(w)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	small := []struct {
		name string
		data []byte
	}{{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)}, {"index.json", index}}
	for _, f := range small {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: 0o644, Size: int64(len(f.data)), ModTime: epoch}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	blobs := append([]v1.Hash{id, m.Config.Digest}, layerDigests(m)...)
	seen := map[v1.Hash]bool{}
	for _, h := range blobs {
		if seen[h] {
			continue
		}
		seen[h] = true
		if err := copyBlobToTar(tw, s.blobPath(h), "blobs/"+h.Algorithm+"/"+h.Hex, epoch); err != nil {
			return err
		}
	}
	return tw.Close()
}

func layerDigests(m *v1.Manifest) []v1.Hash {
	out := make([]v1.Hash, len(m.Layers))
	for i, l := range m.Layers {
		out[i] = l.Digest
	}
	return out
}

func copyBlobToTar(tw *tar.Writer, src, name string, mtime time.Time) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("blob %s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: st.Size(), ModTime: mtime}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

func (s *Store) exportDocker(img Image, w io.Writer) error {
	id, err := v1.NewHash(img.ID)
	if err != nil {
		return err
	}
	vimg, err := layout.Path(s.root).Image(id)
	if err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, n := range img.Names {
		r, err := name.ParseReference(n)
		if err != nil {
			return err
		}
		refs[r] = vimg
	}
	if len(refs) == 0 {
		r, err := name.NewDigest("localhost/image@" + img.ID)
		if err != nil {
			return err
		}
		refs[r] = vimg
	}
	return tarball.MultiRefWrite(refs, w)
}

// Extract writes the flattened root file system of image ref (its layers
// applied in order, whiteouts deleting) into dir, which must not exist or
// be empty. The tree is built beside dir and renamed into place, so dir
// is either complete or untouched.
func (s *Store) Extract(ref, dir string) error {
	gc, err := s.lock("lock", false)
	if err != nil {
		return err
	}
	defer gc.unlock()
	img, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	if err := s.extract(context.Background(), img, dir); err != nil {
		return fmt.Errorf("extract %s into %s: %w", img.ID, dir, err)
	}
	return nil
}

func (s *Store) extract(ctx context.Context, img Image, dir string) (err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	m, err := s.manifest(img.ID)
	if err != nil {
		return err
	}
	cfg, err := s.Config(img.ID)
	if err != nil {
		return err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("the manifest lists %d layers, the config %d diffIDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".extract-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for i, desc := range m.Layers {
		if err := s.applyLayer(ctx, desc, cfg.RootFS.DiffIDs[i], tmp); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dir)
}

// applyLayer applies stored layer blob desc onto the tree in dir.
func (s *Store) applyLayer(ctx context.Context, desc v1.Descriptor, diffID v1.Hash, dir string) error {
	f, err := os.Open(s.blobPath(desc.Digest))
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer f.Close()
	uncompressed := sha256.New()
	stream, closeStream, err := decompress(&countingReader{ctx: ctx, r: f, bar: newProgressBar(nil, "")})
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer closeStream()
	if err := unpackLayer(io.TeeReader(stream, uncompressed), dir, flattened, s.log); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if got := hashOf(uncompressed); got != diffID {
		return fmt.Errorf("layer %s: uncompressed content has digest %s, the config says diffID %s: %w", desc.Digest, got, diffID, ErrDigestMismatch)
	}
	return nil
}
