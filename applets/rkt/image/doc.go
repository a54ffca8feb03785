// Package image is rkt's image store: it fetches container images, keeps
// them content-addressed on disk, unpacks each layer once and hands out
// overlayfs root file systems built from the unpacked layers.
//
// It owns the store directory (by default /var/lib/rkt) and everything in
// it:
//
//	lock              flock: shared by readers and fetchers, exclusive for rm/gc
//	index.lock        flock: serialises updates of index.json
//	oci-layout        the store is an OCI image layout, so
//	index.json        one descriptor per (image, name), names in the
//	                  org.opencontainers.image.ref.name annotation
//	blobs/sha256/HEX  manifests, configs and compressed layers
//	layers/sha256/HEX one unpacked layer per diffID, shared by every image
//	                  and every pod that uses it (an overlayfs lowerdir)
//	tmp/              work in progress, renamed into place when verified
//	locks/            flock per layer being unpacked
//
// Images come from a registry (docker://), an OCI layout directory
// (oci-layout:), an OCI layout tar (oci-archive:) or a `docker save` tar
// (docker-archive:); see ParseSource. An image's ID is its manifest digest.
//
// Layers are unpacked by this package, not by go-containerregistry, because
// layer tars are untrusted: every path is resolved beneath the layer
// directory with openat2(RESOLVE_BENEATH), so neither "../" names nor
// symlinks (absolute or relative) can make an entry land outside it; such
// an entry is an error, as is a hard link to anything not written earlier
// in the same layer. Device nodes are refused (as with `docker load` in a
// user namespace, and because the runtime gives every container its own
// minimal /dev): the only character device accepted is 0:0, which is an
// overlayfs whiteout. Whiteouts (.wh.NAME) become overlayfs whiteouts and
// opaque markers (.wh..wh..opq) the trusted.overlay.opaque=y xattr, as
// containerd's overlay snapshotter does; Extract applies them instead.
// Digests are checked for every blob (manifest, config, compressed layer)
// and every layer's diffID.
//
// It does not run containers, track pods or decide which images are in use:
// the pod code tells GC what to keep and owns the directories passed to
// Mount.
package image
