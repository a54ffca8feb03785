package rkt

import (
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/corebox/corebox/applets/rkt/image/imagetest"
)

// busyboxImage writes an OCI layout in a temporary directory holding one
// image, tagged tag, made by imagetest.Busybox with cfg as its config; it
// returns the oci-layout: reference.
func busyboxImage(t testing.TB, tag string, cfg v1.Config) string {
	t.Helper()
	img := imagetest.Busybox(t, cfg)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
	return "oci-layout:" + dir + ":" + tag
}
