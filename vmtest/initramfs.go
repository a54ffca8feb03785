package vmtest

import (
	"compress/gzip"
	"fmt"
	"os"
	"path"
	"slices"

	"github.com/u-root/u-root/pkg/cpio"
)

// PackInitramfs writes a gzip newc cpio at dst for a test VM: the program
// init as /init, /dev/console for the kernel to open, /proc, /sys and /tmp
// to mount on, and files (a path in the image → the host file to copy,
// mode 0755), their directories made as needed.
func PackInitramfs(dst, init string, files map[string]string) error {
	prog, err := os.ReadFile(init)
	if err != nil {
		return err
	}
	records := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755),
		cpio.Directory("tmp", 0o1777),
	}
	dirs := map[string]bool{"dev": true, "proc": true, "sys": true, "tmp": true}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b, err := os.ReadFile(files[name])
		if err != nil {
			return err
		}
		for d := path.Dir(name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
			records = append(records, cpio.Directory(d, 0o755))
		}
		records = append(records, cpio.StaticFile(name, string(b), 0o755))
	}
	records = append(records, cpio.StaticFile("init", string(prog), 0o755))
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	w := cpio.Newc.Writer(gz)
	if err := cpio.WriteRecords(w, records); err != nil {
		return fmt.Errorf("packing %s: %w", dst, err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		return fmt.Errorf("packing %s: %w", dst, err)
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}
