package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// FetchOptions are the knobs of Fetch; the zero value fetches over HTTPS
// for the machine's platform, silently.
type FetchOptions struct {
	// Insecure allows a plain-HTTP registry.
	Insecure bool
	// Progress receives a progress bar while layers download, when it is
	// a terminal; otherwise nothing is written to it.
	Progress io.Writer
	// Name, when set, is recorded as the image's name instead of the
	// name(s) the source gives.
	Name string
	// Platform picks the image from a multi-platform index; the default
	// is linux on the running architecture.
	Platform *v1.Platform
	// Parallel is how many layers are fetched and unpacked at once
	// (default 3).
	Parallel int
}

// Fetch brings image ref (see ParseSource) into the store: every blob is
// verified against its digest, every layer unpacked once (and its diffID
// verified) and the image recorded under its name(s). Fetching an image
// the store already has only refreshes its names and fetch time.
// Nothing is left behind when it fails.
func (s *Store) Fetch(ctx context.Context, ref string, opts FetchOptions) (Image, error) {
	src, err := ParseSource(ref, opts.Insecure)
	if err != nil {
		return Image{}, err
	}
	var names []string
	if opts.Name != "" {
		n, err := NormalizeName(opts.Name)
		if err != nil {
			return Image{}, err
		}
		names = []string{n}
	}
	platform := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	id, err := s.fetch(ctx, src, platform, names, opts)
	if err != nil {
		// Blobs and layers this fetch stored before failing belong to no
		// image: sweep them (once no other fetch is running).
		if _, serr := s.GC(nil); serr != nil {
			s.log.Warn("cleaning up after a failed fetch", "ref", ref, "err", serr)
		}
		return Image{}, fmt.Errorf("fetch %s: %w", ref, err)
	}
	s.log.Info("image fetched", "ref", ref, "id", id.String())
	return s.image(id.String())
}

// fetch does Fetch's work under the shared store lock.
func (s *Store) fetch(ctx context.Context, src Source, platform v1.Platform, names []string, opts FetchOptions) (v1.Hash, error) {
	gc, err := s.lock("lock", false)
	if err != nil {
		return v1.Hash{}, err
	}
	defer gc.unlock()
	img, srcNames, cleanup, err := s.openSource(ctx, src, platform)
	if err != nil {
		return v1.Hash{}, err
	}
	defer cleanup()
	if names == nil {
		names = srcNames
	}
	id, err := s.storeImage(ctx, img, src.String(), opts)
	if err != nil {
		return v1.Hash{}, err
	}
	return id, s.record(id, names, src.String())
}

// openSource returns the image src names, the names it gives it and a
// function that releases what opening it took.
func (s *Store) openSource(ctx context.Context, src Source, platform v1.Platform) (v1.Image, []string, func(), error) {
	nothing := func() {}
	switch src.Kind {
	case Registry:
		img, err := remote.Image(src.Ref, remote.WithContext(ctx), remote.WithPlatform(platform),
			remote.WithAuthFromKeychain(authn.DefaultKeychain))
		if err != nil {
			return nil, nil, nothing, err
		}
		var names []string
		if _, ok := src.Ref.(name.Tag); ok {
			names = []string{canonicalName(src.Ref)}
		}
		return img, names, nothing, nil
	case OCILayout:
		img, names, err := fromLayout(src.Path, src.Path, src.Tag, platform)
		return img, names, nothing, err
	case OCIArchive:
		dir, err := os.MkdirTemp(s.path("tmp"), "oci-archive-")
		if err != nil {
			return nil, nil, nothing, err
		}
		cleanup := func() { os.RemoveAll(dir) }
		if err := unpackLayoutArchive(ctx, src.Path, dir); err != nil {
			cleanup()
			return nil, nil, nothing, err
		}
		img, names, err := fromLayout(dir, src.Path, src.Tag, platform)
		if err != nil {
			cleanup()
			return nil, nil, nothing, err
		}
		return img, names, cleanup, nil
	case DockerArchive:
		img, names, err := fromDockerArchive(src.Path, src.Tag)
		return img, names, nothing, err
	}
	return nil, nil, nothing, fmt.Errorf("unknown source kind %v", src.Kind)
}

// fromLayout picks the image tagged tag (any, if there is only one) from
// the OCI layout in dir; origin names the layout for names and messages.
func fromLayout(dir, origin, tag string, platform v1.Platform) (v1.Image, []string, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("OCI layout %s: %w", origin, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("OCI layout %s: %w", origin, err)
	}
	var picked []v1.Descriptor
	var refNames []string
	for _, d := range im.Manifests {
		rn := d.Annotations[ocispec.AnnotationRefName]
		if rn != "" {
			refNames = append(refNames, rn)
		}
		if tag == "" || rn == tag || (rn != "" && sameName(rn, tag)) {
			picked = append(picked, d)
		}
	}
	switch {
	case len(picked) == 0 && tag != "":
		return nil, nil, fmt.Errorf("OCI layout %s: no image tagged %q (it has %s)", origin, tag, listOrNone(refNames))
	case len(picked) == 0:
		return nil, nil, fmt.Errorf("OCI layout %s: no images", origin)
	}
	for _, d := range picked[1:] {
		if d.Digest != picked[0].Digest {
			return nil, nil, fmt.Errorf("OCI layout %s holds several images (%s): name one with :TAG", origin, listOrNone(refNames))
		}
	}
	var names []string
	for _, d := range picked {
		if rn := d.Annotations[ocispec.AnnotationRefName]; rn != "" {
			n := layoutName(origin, rn)
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	d := picked[0]
	switch d.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, nil, fmt.Errorf("OCI layout %s: %w", origin, err)
		}
		img, err := platformImage(child, platform)
		if err != nil {
			return nil, nil, fmt.Errorf("OCI layout %s: %w", origin, err)
		}
		return img, names, nil
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return nil, nil, fmt.Errorf("OCI layout %s: %w", origin, err)
	}
	return img, names, nil
}

// platformImage picks platform's image from an index.
func platformImage(idx v1.ImageIndex, platform v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		have = append(have, d.Platform.String())
		if d.Platform.Satisfies(platform) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s in the index (it has %s)", platform.String(), listOrNone(have))
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// sameName says whether two image names mean the same after normalising.
func sameName(a, b string) bool {
	na, err1 := NormalizeName(a)
	nb, err2 := NormalizeName(b)
	return err1 == nil && err2 == nil && na == nb
}

// layoutName is the name recorded for ref.name annotation rn of a layout
// at origin: a full name (with '/' or ':') is normalised, a bare tag
// becomes localhost/BASENAME:TAG.
func layoutName(origin, rn string) string {
	if strings.ContainsAny(rn, "/:@") {
		if n, err := NormalizeName(rn); err == nil {
			return n
		}
	}
	return localName(origin, rn)
}

// fromDockerArchive opens the image tagged tag (any, if only one) in a
// `docker save` tarball.
func fromDockerArchive(p, tag string) (v1.Image, []string, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(p) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, nil, fmt.Errorf("docker archive %s: %w", p, err)
	}
	var entry *tarball.Descriptor
	var all []string
	for i := range m {
		all = append(all, m[i].RepoTags...)
		if tag == "" {
			continue
		}
		for _, t := range m[i].RepoTags {
			if sameName(t, tag) && entry == nil {
				entry = &m[i]
			}
		}
	}
	switch {
	case tag != "" && entry == nil:
		return nil, nil, fmt.Errorf("docker archive %s: no image tagged %q (it has %s)", p, tag, listOrNone(all))
	case tag == "" && len(m) == 1:
		entry = &m[0]
	case tag == "":
		return nil, nil, fmt.Errorf("docker archive %s holds %d images (%s): name one with :NAME:TAG", p, len(m), listOrNone(all))
	}
	var sel *name.Tag
	if len(m) > 1 {
		t, err := name.NewTag(entry.RepoTags[0])
		if err != nil {
			return nil, nil, fmt.Errorf("docker archive %s: %w", p, err)
		}
		sel = &t
	}
	img, err := tarball.Image(opener, sel)
	if err != nil {
		return nil, nil, fmt.Errorf("docker archive %s: %w", p, err)
	}
	var names []string
	for _, t := range entry.RepoTags {
		n, err := NormalizeName(t)
		if err != nil {
			return nil, nil, fmt.Errorf("docker archive %s: %w", p, err)
		}
		names = append(names, n)
	}
	return img, names, nil
}

// manifestTypes are the manifests the store takes.
var manifestTypes = []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2}

// storeImage writes img's manifest, config and layers (blobs and unpacked)
// into the store and returns its ID.
func (s *Store) storeImage(ctx context.Context, img v1.Image, source string, opts FetchOptions) (v1.Hash, error) {
	raw, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("manifest: %w", err)
	}
	id, _, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("manifest %s: %w", id, err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	if !slices.Contains(manifestTypes, mt) {
		return v1.Hash{}, fmt.Errorf("manifest %s: media type %q is not an image manifest", id, mt)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if err := checkBlob(m.Config, rawCfg); err != nil {
		return v1.Hash{}, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return v1.Hash{}, fmt.Errorf("image %s: the manifest lists %d layers, the config %d diffIDs", id, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range m.Layers {
		if l.Digest.Algorithm != "sha256" || cfg.RootFS.DiffIDs[i].Algorithm != "sha256" {
			return v1.Hash{}, fmt.Errorf("image %s: layer %d: only sha256 digests are supported", id, i)
		}
	}

	bar := newProgressBar(opts.Progress, source)
	for _, l := range m.Layers {
		bar.total += l.Size
	}
	parallel := opts.Parallel
	if parallel <= 0 {
		parallel = 3
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, parallel)
	)
	for i, desc := range m.Layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := s.fetchLayer(ctx, img, desc, cfg.RootFS.DiffIDs[i], bar); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	bar.finish()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	if first != nil {
		return v1.Hash{}, first
	}
	// The manifest last: a manifest blob in the store means a complete image.
	if err := s.writeBlob(m.Config, rawCfg); err != nil {
		return v1.Hash{}, err
	}
	if err := s.writeBlob(v1.Descriptor{Digest: id, Size: int64(len(raw))}, raw); err != nil {
		return v1.Hash{}, err
	}
	return id, nil
}

// checkBlob checks data against the digest and size in desc.
func checkBlob(desc v1.Descriptor, data []byte) error {
	h, n, err := v1.SHA256(bytes.NewReader(data))
	if err != nil {
		return err
	}
	if h != desc.Digest || n != desc.Size {
		return fmt.Errorf("blob %s: content has digest %s and size %d, want size %d: %w", desc.Digest, h, n, desc.Size, ErrDigestMismatch)
	}
	return nil
}

// writeBlob stores data as blob desc after checking its digest and size.
func (s *Store) writeBlob(desc v1.Descriptor, data []byte) error {
	if err := checkBlob(desc, data); err != nil {
		return err
	}
	p := s.blobPath(desc.Digest)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := writeAtomic(p, data); err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return nil
}

// ErrDigestMismatch is wrapped by errors for content that does not match
// the digest (or size) that names it.
var ErrDigestMismatch = errors.New("digest mismatch")

// fetchLayer makes sure the compressed blob desc and its unpacked layer
// (diffID) are in the store, streaming the blob once: into the blob file,
// through its digest, through the decompressor and the unpacker.
func (s *Store) fetchLayer(ctx context.Context, img v1.Image, desc v1.Descriptor, diffID v1.Hash, bar *progressBar) error {
	blobPath, layerPath := s.blobPath(desc.Digest), s.layerPath(diffID)
	if exists(blobPath) && exists(layerPath) {
		bar.add(desc.Size)
		return nil
	}
	l, err := s.lock(filepath.Join("locks", "layer-"+diffID.Hex), true)
	if err != nil {
		return err
	}
	defer l.unlock()
	haveBlob, haveLayer := exists(blobPath), exists(layerPath)
	if haveBlob && haveLayer {
		bar.add(desc.Size)
		return nil
	}
	var rc io.ReadCloser
	if haveBlob {
		rc, err = os.Open(blobPath)
	} else {
		var layer v1.Layer
		layer, err = img.LayerByDigest(desc.Digest)
		if err == nil {
			rc, err = layer.Compressed()
		}
	}
	if err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	return s.writeLayer(ctx, rc, desc, diffID, !haveBlob, !haveLayer, bar)
}

// writeLayer reads compressed layer blob desc from r, keeping the blob
// (keepBlob) and unpacking it (unpack); both land in the store only once
// the blob's digest and size and the layer's diffID are verified.
func (s *Store) writeLayer(ctx context.Context, r io.Reader, desc v1.Descriptor, diffID v1.Hash, keepBlob, unpack bool, bar *progressBar) (err error) {
	compressed := sha256.New()
	counted := &countingReader{ctx: ctx, r: r, bar: bar}
	var sink io.Writer = compressed
	var blobFile *os.File
	if keepBlob {
		blobFile, err = os.CreateTemp(s.path("tmp"), "blob-"+desc.Digest.Hex+"-")
		if err != nil {
			return err
		}
		defer func() {
			blobFile.Close()
			if err != nil {
				os.Remove(blobFile.Name())
			}
		}()
		sink = io.MultiWriter(blobFile, compressed)
	}
	stream := io.TeeReader(counted, sink)
	var layerDir string
	if unpack {
		layerDir, err = os.MkdirTemp(s.path("tmp"), "layer-"+diffID.Hex+"-")
		if err != nil {
			return err
		}
		defer func() {
			if err != nil {
				os.RemoveAll(layerDir)
			}
		}()
		if err := os.Chmod(layerDir, 0o755); err != nil {
			return err
		}
		uncompressed := sha256.New()
		tarStream, closeTar, err := decompress(stream)
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		err = unpackLayer(io.TeeReader(tarStream, uncompressed), layerDir, overlayLayer, s.log)
		closeTar()
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		if got := hashOf(uncompressed); got != diffID {
			return fmt.Errorf("layer %s: uncompressed content has digest %s, the config says diffID %s: %w", desc.Digest, got, diffID, ErrDigestMismatch)
		}
	}
	if _, err := io.Copy(io.Discard, stream); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if got := hashOf(compressed); got != desc.Digest || counted.n != desc.Size {
		return fmt.Errorf("layer %s: blob has digest %s and size %d, want size %d: %w", desc.Digest, got, counted.n, desc.Size, ErrDigestMismatch)
	}
	if keepBlob {
		if err := blobFile.Sync(); err != nil {
			return err
		}
		if err := os.Rename(blobFile.Name(), s.blobPath(desc.Digest)); err != nil {
			return err
		}
	}
	if unpack {
		// One syncfs instead of an fsync per file: the layer is durable
		// before it is visible.
		if err := syncfs(layerDir); err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		if err := os.Rename(layerDir, s.layerPath(diffID)); err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
	}
	return nil
}

func syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// decompress sniffs r's compression (gzip, zstd or none) and returns the
// tar stream and a function releasing the decompressor.
func decompress(r io.Reader) (io.Reader, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, func() {}, err
	}
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, func() {}, fmt.Errorf("gzip: %w", err)
		}
		return gz, func() { gz.Close() }, nil
	case len(magic) == 4 && bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, func() {}, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// countingReader counts bytes for the digest size check and the progress
// bar, and stops when ctx is done.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
	bar *progressBar
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.bar.add(int64(n))
	return n, err
}

// record points names at image id (taking them from any other image) and
// stamps the fetch.
func (s *Store) record(id v1.Hash, names []string, source string) error {
	m, err := s.manifest(id.String())
	if err != nil {
		return err
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.OCIManifestSchema1
	}
	data, err := s.Manifest(id.String())
	if err != nil {
		return err
	}
	now := time.Now().UTC().Format(time.RFC3339Nano)
	desc := func(n string) v1.Descriptor {
		a := map[string]string{annotationSource: source, annotationFetchedAt: now}
		if n != "" {
			a[ocispec.AnnotationRefName] = n
		}
		return v1.Descriptor{MediaType: mt, Digest: id, Size: int64(len(data)), Annotations: a}
	}
	return s.updateIndex(func(idx *v1.IndexManifest) error {
		if len(names) == 0 {
			// Keep the names the image has; refresh its entries.
			found := false
			for i, d := range idx.Manifests {
				if d.Digest == id {
					found = true
					if d.Annotations == nil {
						idx.Manifests[i].Annotations = map[string]string{}
					}
					idx.Manifests[i].Annotations[annotationSource] = source
					idx.Manifests[i].Annotations[annotationFetchedAt] = now
				}
			}
			if !found {
				idx.Manifests = append(idx.Manifests, desc(""))
			}
			return nil
		}
		var keep []v1.Descriptor
		lost := map[v1.Hash]v1.Descriptor{} // images that may lose their last name
		for _, d := range idx.Manifests {
			n := d.Annotations[ocispec.AnnotationRefName]
			if d.Digest == id && n == "" {
				continue // the unnamed entry gives way to named ones
			}
			if n != "" && slices.Contains(names, n) {
				if d.Digest != id {
					lost[d.Digest] = d
				}
				continue
			}
			keep = append(keep, d)
		}
		for h, d := range lost {
			if !slices.ContainsFunc(keep, func(k v1.Descriptor) bool { return k.Digest == h }) {
				d.Annotations = maps.Clone(d.Annotations)
				delete(d.Annotations, ocispec.AnnotationRefName)
				keep = append(keep, d) // still in the store, now unnamed
			}
		}
		for _, n := range names {
			keep = append(keep, desc(n))
		}
		idx.Manifests = keep
		return nil
	})
}
