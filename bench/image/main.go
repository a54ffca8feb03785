// Command image measures rkt's image store: fetching and unpacking an
// image of about -size MB (random, incompressible files spread over
// -layers layers) into a fresh store, from an in-process registry (over
// loopback HTTP), from an OCI layout directory, and extracting the
// flattened rootfs from the store. Each case runs -runs times, each into a
// new store under -dir, and the median is reported as a markdown table.
//
//	go run ./bench/image -size 100 -layers 4 -runs 5
//
// Run it as root: layer unpacking then applies ownership as it would in
// production.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/corebox/corebox/applets/rkt/image"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type config struct {
	sizeMB   int
	layers   int
	fileKB   int
	runs     int
	dir      string
	parallel int
}

func main() {
	var c config
	flag.IntVar(&c.sizeMB, "size", 100, "image size in MB (uncompressed and, being random, compressed)")
	flag.IntVar(&c.layers, "layers", 4, "number of layers")
	flag.IntVar(&c.fileKB, "file-kb", 1024, "size of each file in KB")
	flag.IntVar(&c.runs, "runs", 5, "runs per case; the median is reported")
	flag.IntVar(&c.parallel, "parallel", 3, "layers fetched at once")
	flag.StringVar(&c.dir, "dir", "", "where the stores go (default: a temporary directory)")
	flag.Parse()
	if err := run(context.Background(), c, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench/image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, out io.Writer) error {
	if c.dir == "" {
		d, err := os.MkdirTemp("", "bench-image-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.dir = d
	}
	img, bytesTotal, err := buildImage(c)
	if err != nil {
		return err
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ref, err := name.ParseReference(host+"/bench/random:v1", name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	layoutDir := filepath.Join(c.dir, "layout")
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{ocispec.AnnotationRefName: "v1"})); err != nil {
		return err
	}

	log := slog.New(slog.DiscardHandler)
	type result struct {
		name  string
		times []time.Duration
	}
	var results []result
	fetch := func(label, src string) error {
		r := result{name: label}
		for i := range c.runs {
			root := filepath.Join(c.dir, fmt.Sprintf("store-%s-%d", strings.Fields(label)[0], i))
			s, err := image.Open(root, log)
			if err != nil {
				return err
			}
			start := time.Now()
			if _, err := s.Fetch(ctx, src, image.FetchOptions{Insecure: true, Parallel: c.parallel}); err != nil {
				return fmt.Errorf("%s: %w", label, err)
			}
			r.times = append(r.times, time.Since(start))
			if i < c.runs-1 {
				os.RemoveAll(root)
			}
		}
		results = append(results, r)
		return nil
	}
	if err := fetch("registry (docker://, loopback HTTP)", "docker://"+ref.String()); err != nil {
		return err
	}
	if err := fetch("oci-layout directory", "oci-layout:"+layoutDir); err != nil {
		return err
	}
	// Extract from the last registry store.
	s, err := image.Open(filepath.Join(c.dir, fmt.Sprintf("store-registry-%d", c.runs-1)), log)
	if err != nil {
		return err
	}
	r := result{name: "extract flattened rootfs from the store"}
	for i := range c.runs {
		dst := filepath.Join(c.dir, fmt.Sprintf("extract-%d", i))
		start := time.Now()
		if err := s.Extract(host+"/bench/random:v1", dst); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		r.times = append(r.times, time.Since(start))
		os.RemoveAll(dst)
	}
	results = append(results, r)

	mb := float64(bytesTotal) / 1e6
	fmt.Fprintf(out, "Image: %.1f MB of random files (%d KB each) in %d layers, gzip; %d runs per case, median; %d layers at once; GOMAXPROCS %d.\n\n",
		mb, c.fileKB, c.layers, c.runs, c.parallel, runtime.GOMAXPROCS(0))
	fmt.Fprintln(out, "| case | median s | min s | max s | MB/s (median) |")
	fmt.Fprintln(out, "| --- | ---: | ---: | ---: | ---: |")
	for _, r := range results {
		slices.Sort(r.times)
		med := r.times[len(r.times)/2]
		fmt.Fprintf(out, "| %s | %.3f | %.3f | %.3f | %.0f |\n", r.name, med.Seconds(), r.times[0].Seconds(), r.times[len(r.times)-1].Seconds(), mb/med.Seconds())
	}
	return nil
}

// buildImage makes an OCI image of random files and returns it with its
// uncompressed payload size.
func buildImage(c config) (v1.Image, int64, error) {
	total := int64(c.sizeMB) << 20
	perLayer := total / int64(c.layers)
	fileSize := int64(c.fileKB) << 10
	var layers []v1.Layer
	var payload int64
	for l := range c.layers {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("data%d/", l), Mode: 0o755})
		for i := int64(0); i*fileSize < perLayer; i++ {
			data := make([]byte, min(fileSize, perLayer-i*fileSize))
			rand.Read(data)
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("data%d/f%04d", l, i), Mode: 0o644, Size: int64(len(data))}); err != nil {
				return nil, 0, err
			}
			tw.Write(data)
			payload += int64(len(data))
		}
		tw.Close()
		b := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
			tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
		if err != nil {
			return nil, 0, err
		}
		layers = append(layers, layer)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, layers...)
	return img, payload, err
}
