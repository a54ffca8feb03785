package image

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
)

// SourceKind says where an image comes from.
type SourceKind int

const (
	// Registry is an OCI/Docker registry: docker://host[:port]/repo[:tag|@digest].
	Registry SourceKind = iota + 1
	// OCILayout is an OCI image layout directory: oci-layout:DIR[:TAG].
	OCILayout
	// OCIArchive is a tar of an OCI image layout: oci-archive:FILE[:TAG].
	OCIArchive
	// DockerArchive is a `docker save` tar: docker-archive:FILE[:NAME:TAG].
	DockerArchive
)

func (k SourceKind) String() string {
	switch k {
	case Registry:
		return "docker"
	case OCILayout:
		return "oci-layout"
	case OCIArchive:
		return "oci-archive"
	case DockerArchive:
		return "docker-archive"
	}
	return fmt.Sprintf("SourceKind(%d)", int(k))
}

// Source is a parsed fetch reference.
type Source struct {
	Kind SourceKind
	// Ref is the registry reference (Registry only).
	Ref name.Reference
	// Path is the directory or tar file (the other kinds).
	Path string
	// Tag selects an image inside a layout or archive: for layouts the
	// org.opencontainers.image.ref.name annotation, for docker archives a
	// RepoTags entry. Empty means "the only image there".
	Tag string
}

func (s Source) String() string {
	if s.Kind == Registry {
		return "docker://" + s.Ref.String()
	}
	if s.Tag != "" {
		return s.Kind.String() + ":" + s.Path + ":" + s.Tag
	}
	return s.Kind.String() + ":" + s.Path
}

// refNameChars is the grammar of org.opencontainers.image.ref.name
// (image-spec annotations.md), which also admits full image names.
var refNameChars = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]+(?:(?:[-._:@+/]|--)[A-Za-z0-9]+)*$`) })

// ParseSource parses a fetch reference:
//
//	docker://host[:port]/repo[:tag|@sha256:…]  (docker://busybox means docker.io/library/busybox:latest)
//	oci-layout:/dir[:tag]
//	oci-archive:/file.tar[:tag]
//	docker-archive:/file.tar[:name:tag]
//
// For the file kinds, as with skopeo, the path ends at the first ':' and
// what follows selects the image (so paths containing ':' are not
// supported). insecure marks a registry as plain HTTP.
func ParseSource(ref string, insecure bool) (Source, error) {
	scheme, rest, ok := strings.Cut(ref, ":")
	if !ok || scheme == "" {
		return Source{}, fmt.Errorf("image reference %q: no transport; want docker://, oci-layout:, oci-archive: or docker-archive:", ref)
	}
	switch scheme {
	case "docker":
		r, found := strings.CutPrefix(rest, "//")
		if !found || r == "" {
			return Source{}, fmt.Errorf("image reference %q: want docker://[host[:port]/]repo[:tag|@digest]", ref)
		}
		var opts []name.Option
		if insecure {
			opts = append(opts, name.Insecure)
		}
		nr, err := name.ParseReference(r, opts...)
		if err != nil {
			return Source{}, fmt.Errorf("image reference %q: %w", ref, err)
		}
		return Source{Kind: Registry, Ref: nr}, nil
	case "oci-layout", "oci", "oci-archive", "docker-archive":
		kind := map[string]SourceKind{"oci-layout": OCILayout, "oci": OCILayout, "oci-archive": OCIArchive, "docker-archive": DockerArchive}[scheme]
		p, tag, _ := strings.Cut(rest, ":")
		if p == "" {
			return Source{}, fmt.Errorf("image reference %q: empty path", ref)
		}
		if strings.ContainsRune(p, 0) {
			return Source{}, fmt.Errorf("image reference %q: NUL in path", ref)
		}
		if tag != "" {
			if kind == DockerArchive {
				if _, err := name.NewTag(tag); err != nil {
					return Source{}, fmt.Errorf("image reference %q: %q is not an image name: %w", ref, tag, err)
				}
			} else if !refNameChars().MatchString(tag) {
				return Source{}, fmt.Errorf("image reference %q: %q is not a valid ref.name", ref, tag)
			}
		}
		return Source{Kind: kind, Path: p, Tag: tag}, nil
	}
	return Source{}, fmt.Errorf("image reference %q: unknown transport %q; want docker, oci-layout, oci-archive or docker-archive", ref, scheme)
}

// NormalizeName turns an image name as people write it into the form the
// store records, the way docker does: busybox → docker.io/library/busybox:latest,
// quay.io/coreos/etcd → quay.io/coreos/etcd:latest, and name@sha256:… stays
// a digest reference.
func NormalizeName(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty image name")
	}
	r, err := name.ParseReference(s, name.WithDefaultTag("latest"))
	if err != nil {
		return "", fmt.Errorf("image name %q: %w", s, err)
	}
	return canonicalName(r), nil
}

// canonicalName prints r with docker.io for Docker Hub (go-containerregistry
// says index.docker.io).
func canonicalName(r name.Reference) string {
	reg := r.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	repo := reg + "/" + r.Context().RepositoryStr()
	if d, ok := r.(name.Digest); ok {
		return repo + "@" + d.DigestStr()
	}
	return repo + ":" + r.Identifier()
}

// localName is the name recorded for an image from a layout whose ref.name
// annotation is only a tag: localhost/BASENAME:TAG.
func localName(p, tag string) string {
	base := strings.ToLower(path.Base(p))
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		base = strings.TrimSuffix(base, ext)
	}
	var b strings.Builder
	for _, r := range base {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteRune('-')
		}
	}
	repo := strings.Trim(b.String(), "._-")
	if repo == "" {
		repo = "image"
	}
	if tag == "" {
		tag = "latest"
	}
	return "localhost/" + repo + ":" + tag
}
