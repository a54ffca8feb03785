package image

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// DefaultRoot is where rkt keeps its images.
const DefaultRoot = "/var/lib/rkt"

// Annotations the store keeps on its index.json descriptors.
const (
	annotationSource    = "io.corebox.rkt.source"
	annotationFetchedAt = "io.corebox.rkt.fetched-at"
)

// Store is an image store on disk. Its methods are safe for concurrent use
// by goroutines and by other processes opening the same root.
type Store struct {
	root string
	log  *slog.Logger
}

// Image is an image in the store.
type Image struct {
	// ID is the manifest digest, "sha256:…".
	ID string
	// Names are the normalised names that point at it
	// (docker.io/library/busybox:latest); none for an image fetched by digest.
	Names []string
	// Source is the reference it was last fetched from.
	Source string
	// FetchedAt is when it was last fetched.
	FetchedAt time.Time
	// Size is the sum of its manifest, config and compressed layer sizes.
	Size int64
}

// Open opens (creating it if needed) the store at root; "" means
// DefaultRoot. log receives the store's debug and info messages.
func Open(root string, log *slog.Logger) (*Store, error) {
	if root == "" {
		root = DefaultRoot
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	s := &Store{root: abs, log: log}
	for _, d := range []string{abs, s.path("blobs", "sha256"), s.path("layers", "sha256"), s.path("tmp"), s.path("locks")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("image store %s: %w", abs, err)
		}
	}
	if err := writeIfMissing(s.path("oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`+"\n")); err != nil {
		return nil, fmt.Errorf("image store %s: %w", abs, err)
	}
	empty, _ := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}})
	if err := writeIfMissing(s.path("index.json"), append(empty, '\n')); err != nil {
		return nil, fmt.Errorf("image store %s: %w", abs, err)
	}
	return s, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func (s *Store) blobPath(h v1.Hash) string { return s.path("blobs", h.Algorithm, h.Hex) }

func (s *Store) layerPath(diffID v1.Hash) string {
	return s.path("layers", diffID.Algorithm, diffID.Hex)
}

// writeIfMissing creates name with data atomically unless it exists.
func writeIfMissing(name string, data []byte) error {
	if _, err := os.Stat(name); err == nil {
		return nil
	}
	return writeAtomic(name, data)
}

// writeAtomic replaces name with data: a temporary file, fsync, rename.
func writeAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// flock is a held file lock.
type flock struct{ f *os.File }

// lock takes a lock on file name in the store: exclusive or shared. Locks
// are per open file, so they exclude goroutines as well as processes.
func (s *Store) lock(name string, exclusive bool) (*flock, error) {
	f, err := os.OpenFile(s.path(name), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image store lock %s: %w", name, err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("image store lock %s: %w", name, err)
	}
	return &flock{f: f}, nil
}

func (l *flock) unlock() { l.f.Close() }

// readIndex reads index.json (replaced atomically, so no lock is needed).
func (s *Store) readIndex() (*v1.IndexManifest, error) {
	data, err := os.ReadFile(s.path("index.json"))
	if err != nil {
		return nil, fmt.Errorf("image store index: %w", err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("image store index %s: %w", s.path("index.json"), err)
	}
	return &idx, nil
}

// updateIndex applies change to index.json under the index lock.
func (s *Store) updateIndex(change func(idx *v1.IndexManifest) error) error {
	l, err := s.lock("index.lock", true)
	if err != nil {
		return err
	}
	defer l.unlock()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	if err := change(idx); err != nil {
		return err
	}
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("image store index: %w", err)
	}
	if err := writeAtomic(s.path("index.json"), append(data, '\n')); err != nil {
		return fmt.Errorf("image store index: %w", err)
	}
	return nil
}

// images groups index descriptors by manifest digest.
func images(idx *v1.IndexManifest) []Image {
	byID := map[string]*Image{}
	var order []string
	for _, d := range idx.Manifests {
		id := d.Digest.String()
		img := byID[id]
		if img == nil {
			img = &Image{ID: id, Size: d.Size}
			byID[id] = img
			order = append(order, id)
		}
		if n := d.Annotations[ocispec.AnnotationRefName]; n != "" && !slices.Contains(img.Names, n) {
			img.Names = append(img.Names, n)
		}
		if t, err := time.Parse(time.RFC3339Nano, d.Annotations[annotationFetchedAt]); err == nil && t.After(img.FetchedAt) {
			img.FetchedAt = t
			img.Source = d.Annotations[annotationSource]
		}
	}
	out := make([]Image, 0, len(order))
	for _, id := range order {
		img := byID[id]
		sort.Strings(img.Names)
		out = append(out, *img)
	}
	return out
}

// List returns the images in the store, most recently fetched first, with
// their sizes including config and layers.
func (s *Store) List() ([]Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	imgs := images(idx)
	for i := range imgs {
		m, err := s.manifest(imgs[i].ID)
		if err != nil {
			return nil, err
		}
		imgs[i].Size += m.Config.Size
		for _, l := range m.Layers {
			imgs[i].Size += l.Size
		}
	}
	sort.SliceStable(imgs, func(i, j int) bool { return imgs[i].FetchedAt.After(imgs[j].FetchedAt) })
	return imgs, nil
}

// Resolve finds an image by name (normalised like docker: busybox means
// docker.io/library/busybox:latest), by name@digest, or by a prefix of its
// ID ("sha256:1…", or without "sha256:" at least 4 hex digits: "1a2b…").
// An ambiguous prefix is an error listing the candidates.
func (s *Store) Resolve(ref string) (Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	imgs := images(idx)
	if n, err := NormalizeName(ref); err == nil {
		if _, dgst, ok := strings.Cut(n, "@"); ok {
			for _, img := range imgs {
				if img.ID == dgst {
					return img, nil
				}
			}
			return Image{}, fmt.Errorf("image %q: %w", ref, ErrNotFound)
		}
		for _, img := range imgs {
			if slices.Contains(img.Names, n) {
				return img, nil
			}
		}
	}
	prefix, explicit := strings.CutPrefix(strings.ToLower(ref), "sha256:")
	if prefix == "" || len(prefix) > 64 || !isHex(prefix) || (!explicit && len(prefix) < minBarePrefix) {
		return Image{}, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	}
	var found []Image
	for _, img := range imgs {
		if strings.HasPrefix(strings.TrimPrefix(img.ID, "sha256:"), prefix) {
			found = append(found, img)
		}
	}
	switch len(found) {
	case 0:
		return Image{}, fmt.Errorf("image %q: %w", ref, ErrNotFound)
	case 1:
		return found[0], nil
	}
	ids := make([]string, len(found))
	for i, img := range found {
		ids[i] = img.ID
		if len(img.Names) > 0 {
			ids[i] += " (" + strings.Join(img.Names, ", ") + ")"
		}
	}
	return Image{}, fmt.Errorf("image %q is ambiguous; it matches %s", ref, strings.Join(ids, ", "))
}

// minBarePrefix is the shortest ID prefix taken without "sha256:", so that
// a short name like "abc" is not taken for an ID.
const minBarePrefix = 4

// ErrNotFound is wrapped by errors for images the store does not have.
var ErrNotFound = errors.New("no such image in the store")

func isHex(s string) bool {
	_, err := hex.DecodeString(s + strings.Repeat("0", len(s)%2))
	return err == nil
}

// image returns the store's record of image id (a full ID).
func (s *Store) image(id string) (Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	for _, img := range images(idx) {
		if img.ID == id {
			return img, nil
		}
	}
	return Image{}, fmt.Errorf("image %s: %w", id, ErrNotFound)
}

// Manifest returns the raw manifest of image id.
func (s *Store) Manifest(id string) ([]byte, error) {
	h, err := v1.NewHash(id)
	if err != nil {
		return nil, fmt.Errorf("image ID %q: %w", id, err)
	}
	data, err := os.ReadFile(s.blobPath(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", id, err)
	}
	return data, nil
}

func (s *Store) manifest(id string) (*v1.Manifest, error) {
	data, err := s.Manifest(id)
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(strings.NewReader(string(data)))
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", id, err)
	}
	return m, nil
}

// RawConfig returns the raw config blob of image id.
func (s *Store) RawConfig(id string) ([]byte, error) {
	m, err := s.manifest(id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.blobPath(m.Config.Digest))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", id, err)
	}
	return data, nil
}

// Config returns the parsed config of image id: entrypoint, cmd, env,
// working directory, user and the layers' diffIDs.
func (s *Store) Config(id string) (*v1.ConfigFile, error) {
	data, err := s.RawConfig(id)
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(data)))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", id, err)
	}
	return cfg, nil
}
