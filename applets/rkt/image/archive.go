package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
)

// layoutMember matches the members of an OCI layout tar that are read:
// oci-layout, index.json and blobs/ALG/HEX (and their directories).
var layoutMember = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(oci-layout|index\.json|blobs/?|blobs/[a-z0-9]+/?|blobs/[a-z0-9]+/[a-f0-9]{32,128})$`)
})

// unpackLayoutArchive writes the OCI layout in tar file p into the empty
// directory dir. Only the layout's own members are written (others, like
// the manifest.json of a docker save that is also a layout, are skipped),
// and only as regular files and directories, so no member can reach out
// of dir.
func unpackLayoutArchive(ctx context.Context, p, dir string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("OCI archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	seen := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("OCI archive %s: %w", p, err)
		}
		name := filepath.Clean(hdr.Name)
		if len(name) > 2 && name[:2] == "./" {
			name = name[2:]
		}
		if !layoutMember().MatchString(name) {
			continue
		}
		target := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return fmt.Errorf("OCI archive %s: %w", p, err)
			}
		case tar.TypeReg, tar.TypeRegA:
			if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
				return fmt.Errorf("OCI archive %s: %w", p, err)
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("OCI archive %s: member %s: %w", p, hdr.Name, err)
			}
			_, err = io.Copy(out, tr)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("OCI archive %s: member %s: %w", p, hdr.Name, err)
			}
			if name == "index.json" {
				seen = true
			}
		default:
			return fmt.Errorf("OCI archive %s: member %s: type %q where a file or directory belongs", p, hdr.Name, hdr.Typeflag)
		}
	}
	if !seen {
		return fmt.Errorf("OCI archive %s: no index.json: not an OCI image layout", p)
	}
	return nil
}
