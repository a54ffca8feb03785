// Command initramfs packs corebox into a bootable initramfs: /init and
// every applet are links to /bin/corebox; the tree under rootfs/ (the
// shipped units and the default machine config) is copied in; /etc/os-release
// carries the version. The archive is a newc cpio written with u-root's cpio
// package, gzip-compressed, and reproducible: the same inputs give the same
// bytes (sorted entries, zero times, fixed owners).
//
//	go run ./initramfs -binary out/corebox -rootfs initramfs/rootfs -version V -o out/initramfs.img
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// spec is what goes into the image.
type spec struct {
	binary  string   // the corebox executable
	applets []string // applet names (from `corebox --list`)
	rootfs  string   // a directory copied in as it is ("" for none)
	extra   string   // a directory of extra executables put in /bbin ("" for none)
	version string
}

func main() {
	var s spec
	var out string
	flag.StringVar(&s.binary, "binary", "out/corebox", "the corebox `executable`")
	flag.StringVar(&s.rootfs, "rootfs", "initramfs/rootfs", "a `directory` copied into the image")
	flag.StringVar(&s.extra, "bbin", "", "a `directory` of extra executables for /bbin (debug images)")
	flag.StringVar(&s.version, "version", "dev", "the version written to /etc/os-release")
	flag.StringVar(&out, "o", "out/initramfs.img", "the output `file` (gzip-compressed newc cpio)")
	flag.Parse()
	if err := run(s, out); err != nil {
		fmt.Fprintf(os.Stderr, "initramfs: %v\n", err)
		os.Exit(1)
	}
}

func run(s spec, out string) error {
	list, err := exec.Command(s.binary, "--list").Output()
	if err != nil {
		return fmt.Errorf("listing the applets of %s: %w", s.binary, err)
	}
	s.applets = strings.Fields(string(list))
	if len(s.applets) == 0 {
		return fmt.Errorf("%s --list printed no applets", s.binary)
	}
	records, err := s.records()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := write(&buf, records); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// records returns every entry of the image, sorted by path, reproducible.
func (s spec) records() ([]cpio.Record, error) {
	bin, err := os.ReadFile(s.binary)
	if err != nil {
		return nil, fmt.Errorf("reading the binary: %w", err)
	}
	recs := map[string]cpio.Record{}
	add := func(r cpio.Record) { recs[r.Name] = r }
	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "run", "tmp", "var", "root", "usr", "usr/lib", "usr/lib/corebox", "usr/lib/corebox/units", "etc/corebox", "etc/corebox/units"} {
		add(cpio.Directory(d, 0o755))
	}
	add(cpio.Directory("tmp", 0o1777))
	add(cpio.Directory("root", 0o700))
	add(cpio.StaticFile("bin/corebox", string(bin), 0o755))
	add(cpio.Symlink("init", "bin/corebox"))
	add(cpio.Symlink("sbin", "bin"))
	add(cpio.Symlink("usr/bin", "../bin"))
	add(cpio.Symlink("usr/sbin", "../bin"))
	for _, a := range s.applets {
		if a == "corebox" || strings.ContainsAny(a, "/ ") {
			return nil, fmt.Errorf("bad applet name %q", a)
		}
		add(cpio.Symlink("bin/"+a, "corebox"))
	}
	// The kernel opens /dev/console for /init before devtmpfs is mounted.
	add(cpio.CharDev("dev/console", 0o600, 5, 1))
	add(cpio.CharDev("dev/null", 0o666, 1, 3))
	add(cpio.StaticFile("etc/os-release", osRelease(s.version), 0o644))
	add(cpio.StaticFile("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644))
	add(cpio.StaticFile("etc/group", "root:x:0:\ntty:x:5:\n", 0o644))
	add(cpio.StaticFile("etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n", 0o644))
	if s.rootfs != "" {
		if err := addTree(s.rootfs, "", add); err != nil {
			return nil, err
		}
	}
	if s.extra != "" {
		add(cpio.Directory("bbin", 0o755))
		if err := addTree(s.extra, "bbin", add); err != nil {
			return nil, err
		}
	}
	out := make([]cpio.Record, 0, len(recs))
	for _, r := range recs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	cpio.MakeAllReproducible(out)
	return out, nil
}

// addTree adds every file, directory and symlink below dir at prefix.
func addTree(dir, prefix string, add func(cpio.Record)) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		name := path.Join(prefix, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			add(cpio.Directory(name, uint64(fi.Mode().Perm())))
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			add(cpio.Symlink(name, t))
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			add(cpio.StaticFile(name, string(b), uint64(fi.Mode().Perm())))
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, fi.Mode().Type())
		}
		return nil
	})
}

func osRelease(version string) string {
	return fmt.Sprintf(`NAME="corebox"
ID=corebox
ID_LIKE=coreos
PRETTY_NAME="corebox %s"
VERSION=%q
VERSION_ID=%q
HOME_URL="https://github.com/corebox/corebox"
`, version, version, version)
}

// write emits the gzip-compressed newc archive of records.
func write(w io.Writer, records []cpio.Record) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	cw := cpio.Newc.Writer(zw)
	if err := cpio.WriteRecordsAndDirs(cw, records); err != nil {
		return fmt.Errorf("writing cpio: %w", err)
	}
	if err := cpio.WriteTrailer(cw); err != nil {
		return fmt.Errorf("writing cpio trailer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing: %w", err)
	}
	return nil
}
