package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// unpackMode says what a layer is unpacked into.
type unpackMode int

const (
	// overlayLayer: an empty directory that becomes one overlayfs lowerdir;
	// whiteouts become 0:0 character devices and opaque markers the
	// trusted.overlay.opaque xattr.
	overlayLayer unpackMode = iota
	// flattened: a tree holding the layers below; whiteouts delete from it.
	flattened
)

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// errEscape is wrapped by errors for entries that would land outside the
// directory being unpacked into.
var errEscape = errors.New("path escapes the layer directory")

// unpacker writes the entries of one layer tar beneath one directory.
type unpacker struct {
	dir     string // for messages
	rootFd  int    // O_PATH descriptor of dir
	mode    unpackMode
	log     *slog.Logger
	chown   bool // running as root: apply ownership
	buf     []byte
	written map[string]byte // entries written by this layer → tar typeflag
	dirs    []dirTimes      // directory times, set at the end
	// parentPath/parentFd cache the directory of the previous entry.
	parentPath string
	parentFd   int
}

type dirTimes struct {
	name         string
	atime, mtime time.Time
}

// unpackLayer reads the layer tar r and writes it beneath dir, which must
// exist. It stops at the first bad entry; the caller owns cleaning up dir.
// It reads r to its end, so that a digest computed over r covers it all.
func unpackLayer(r io.Reader, dir string, mode unpackMode, log *slog.Logger) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	u := &unpacker{
		dir: dir, rootFd: fd, mode: mode, log: log,
		chown:    os.Geteuid() == 0,
		buf:      make([]byte, 256<<10),
		written:  map[string]byte{},
		parentFd: -1,
	}
	defer u.close()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("layer tar: %w", err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return err
		}
	}
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := u.setTimes(d.name, d.atime, d.mtime); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("entry %q: set times: %w", d.name, err)
		}
	}
	// The tar end marker may be followed by padding: consume it.
	if _, err := io.CopyBuffer(io.Discard, r, u.buf); err != nil {
		return fmt.Errorf("layer tar: %w", err)
	}
	return nil
}

func (u *unpacker) close() {
	if u.parentFd >= 0 {
		unix.Close(u.parentFd)
	}
	unix.Close(u.rootFd)
}

// entryPath validates a tar entry name and returns it cleaned and relative
// ("" for the root itself).
func entryPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("NUL in name")
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute name: %w", errEscape)
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("'..' leaves the root: %w", errEscape)
	}
	return c, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	name, err := entryPath(hdr.Name)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	if name == "" {
		return nil // the layer root: the store or the pod owns its metadata
	}
	parent, base := path.Split(name)
	parent = strings.TrimSuffix(parent, "/")
	if strings.HasPrefix(base, whiteoutPrefix) {
		switch {
		case base == opaqueMarker:
			err = u.opaque(parent)
		case strings.HasPrefix(base, whiteoutMeta):
			// aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): not content.
		default:
			err = u.whiteout(parent, strings.TrimPrefix(base, whiteoutPrefix))
		}
		if err != nil {
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		return nil
	}
	if isSparse(hdr) {
		// A few bytes of sparse map can stand for terabytes of zeros.
		return fmt.Errorf("entry %q: sparse files are not supported in image layers (the image spec says not to use them)", hdr.Name)
	}
	pfd, err := u.openParent(parent, true)
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		err = u.mkdir(pfd, name, base, hdr)
	case tar.TypeReg, tar.TypeRegA:
		err = u.file(pfd, name, base, hdr, r)
	case tar.TypeSymlink:
		err = u.symlink(pfd, name, base, hdr)
	case tar.TypeLink:
		err = u.hardlink(pfd, name, base, hdr)
	case tar.TypeFifo:
		err = u.fifo(pfd, name, base, hdr)
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
			// Already an overlayfs whiteout (layers exported from an
			// overlay upper directory carry them as is).
			err = u.whiteout(parent, base)
			break
		}
		kind := "character"
		if hdr.Typeflag == tar.TypeBlock {
			kind = "block"
		}
		err = fmt.Errorf("%s device %d:%d: device nodes are not allowed in image layers (the runtime provides /dev)", kind, hdr.Devmajor, hdr.Devminor)
	case tar.TypeXGlobalHeader:
		return nil
	default:
		err = fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if err != nil {
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	u.written[name] = hdr.Typeflag
	return nil
}

// isSparse says whether hdr is a GNU sparse file (old format or PAX).
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// openAt2 opens rel beneath the unpack root, never leaving it.
func (u *unpacker) openAt2(rel string, flags uint64) (int, error) {
	if rel == "" {
		rel = "."
	}
	// Symlinks are followed, the last component's too, but only while they
	// stay beneath the root: absolute ones and ones that climb out fail.
	how := &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(u.rootFd, rel, how)
	for errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
		fd, err = unix.Openat2(u.rootFd, rel, how)
	}
	if errors.Is(err, unix.EXDEV) {
		return -1, fmt.Errorf("%s: through a symlink: %w", rel, errEscape)
	}
	return fd, err
}

// openParent returns a descriptor (owned by the cache) of directory rel,
// creating missing directories when create is set. -1 with a nil error
// means rel does not exist and create is false.
func (u *unpacker) openParent(rel string, create bool) (int, error) {
	if u.parentFd >= 0 && u.parentPath == rel {
		return u.parentFd, nil
	}
	u.forgetParent()
	fd, err := u.openAt2(rel, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOENT) {
		if !create {
			return -1, nil
		}
		fd, err = u.mkdirAll(rel)
	}
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return -1, fmt.Errorf("parent %s is not a directory", rel)
		}
		if errors.Is(err, unix.ELOOP) {
			return -1, fmt.Errorf("parent %s: too many symlinks", rel)
		}
		return -1, fmt.Errorf("parent %s: %w", rel, err)
	}
	u.parentPath, u.parentFd = rel, fd
	return fd, nil
}

// forgetParent drops the cached parent: called whenever something is
// removed, since the cached directory may be the thing removed.
func (u *unpacker) forgetParent() {
	if u.parentFd >= 0 {
		unix.Close(u.parentFd)
	}
	u.parentPath, u.parentFd = "", -1
}

// mkdirAll creates the missing directories of rel (mode 0755, like docker
// does for parents a layer leaves out) and opens it.
func (u *unpacker) mkdirAll(rel string) (int, error) {
	comps := strings.Split(rel, "/")
	for i := range comps {
		sub := strings.Join(comps[:i+1], "/")
		fd, err := u.openAt2(sub, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			if i == len(comps)-1 {
				return fd, nil
			}
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return -1, err
		}
		pfd, err := u.openAt2(strings.Join(comps[:i], "/"), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(pfd, comps[i], 0o755)
		unix.Close(pfd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
		fd, err = u.openAt2(sub, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return -1, err // e.g. a dangling symlink in the way
		}
		if i == len(comps)-1 {
			return fd, nil
		}
		unix.Close(fd)
	}
	return -1, unix.ENOENT
}

// lstat returns the type of base in pfd, or 0 when it does not exist.
func lstatType(pfd int, base string) (uint32, error) {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return st.Mode & unix.S_IFMT, nil
}

// clear removes whatever is at base in pfd so that a new entry can take
// its place; keepDir keeps an existing directory (tar semantics: a
// directory entry over a directory merges).
func (u *unpacker) clear(pfd int, base string, keepDir bool) error {
	t, err := lstatType(pfd, base)
	if err != nil || t == 0 {
		return err
	}
	if t == unix.S_IFDIR && keepDir {
		return nil
	}
	return removeAllAt(pfd, base)
}

// removeAllAt removes base in dirfd and, for a directory, everything in
// it, without following symlinks.
func removeAllAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	if err := removeChildren(dirfd, base, nil); err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// removeChildren removes the entries of directory base in dirfd for which
// keep (if not nil) returns false; keep may also recurse by itself.
func removeChildren(dirfd int, base string, keep func(dfd int, child string) (bool, error)) error {
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), base)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		if keep != nil {
			k, err := keep(fd, n)
			if err != nil {
				return err
			}
			if k {
				continue
			}
		}
		if err := removeAllAt(fd, n); err != nil {
			return err
		}
	}
	return nil
}

func (u *unpacker) whiteout(parent, target string) error {
	if target == "" || target == "." || target == ".." || strings.Contains(target, "/") {
		return fmt.Errorf("bad whiteout target %q", target)
	}
	name := path.Join(parent, target)
	if u.mode == flattened {
		// The target may be the cached parent or one of its ancestors.
		u.forgetParent()
		pfd, err := u.openAt2(parent, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return err
		}
		defer unix.Close(pfd)
		if err := removeAllAt(pfd, target); err != nil {
			return fmt.Errorf("whiteout %s: %w", name, err)
		}
		delete(u.written, name)
		return nil
	}
	pfd, err := u.openParent(parent, true)
	if err != nil {
		return err
	}
	if err := u.clear(pfd, target, false); err != nil {
		return fmt.Errorf("whiteout %s: %w", name, err)
	}
	if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: mknod 0:0: %w", name, err)
	}
	u.written[name] = tar.TypeChar
	return nil
}

func (u *unpacker) opaque(dir string) error {
	if u.mode == flattened {
		u.forgetParent()
		fd, err := u.openAt2(dir, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return u.removeLower(fd, dir)
	}
	pfd, err := u.openParent(dir, true)
	if err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
		return fmt.Errorf("opaque directory %s: set %s (needs root): %w", dir, opaqueXattr, err)
	}
	return nil
}

// removeLower empties directory dir (open as fd) of everything this layer
// did not write: what an opaque directory hides.
func (u *unpacker) removeLower(fd int, dir string) error {
	return removeChildren(fd, ".", func(dfd int, child string) (bool, error) {
		p := path.Join(dir, child)
		if _, ok := u.written[p]; !ok {
			return false, nil
		}
		t, err := lstatType(dfd, child)
		if err != nil || t != unix.S_IFDIR {
			return true, err
		}
		cfd, err := unix.Openat(dfd, child, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return true, err
		}
		defer unix.Close(cfd)
		return true, u.removeLower(cfd, p)
	})
}

func (u *unpacker) mkdir(pfd int, name, base string, hdr *tar.Header) error {
	if err := u.clear(pfd, base, true); err != nil {
		return err
	}
	if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := u.attrs(fd, hdr); err != nil {
		return err
	}
	u.dirs = append(u.dirs, dirTimes{name: name, atime: hdr.AccessTime, mtime: hdr.ModTime})
	return nil
}

func (u *unpacker) file(pfd int, name, base string, hdr *tar.Header, r io.Reader) error {
	if err := u.clear(pfd, base, false); err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, r, u.buf); err != nil {
		return err
	}
	if err := u.attrs(fd, hdr); err != nil {
		return err
	}
	return u.setTimesAt(pfd, base, hdr.AccessTime, hdr.ModTime)
}

func (u *unpacker) symlink(pfd int, name, base string, hdr *tar.Header) error {
	if err := u.clear(pfd, base, false); err != nil {
		return err
	}
	if hdr.Linkname == "" {
		return errors.New("symlink with an empty target")
	}
	if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
		return err
	}
	if u.chown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return u.setTimesAt(pfd, base, hdr.AccessTime, hdr.ModTime)
}

func (u *unpacker) hardlink(pfd int, name, base string, hdr *tar.Header) error {
	target, err := entryPath(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	typ, ok := u.written[target]
	if !ok || !slices.Contains([]byte{tar.TypeReg, tar.TypeRegA, tar.TypeSymlink, tar.TypeFifo, tar.TypeLink}, typ) {
		return fmt.Errorf("hard link to %q: not a file written earlier in this layer", hdr.Linkname)
	}
	if target == name {
		return nil
	}
	tparent, tbase := path.Split(target)
	tfd, err := u.openAt2(strings.TrimSuffix(tparent, "/"), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	if err := u.clear(pfd, base, false); err != nil {
		return err
	}
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, err)
	}
	return nil
}

func (u *unpacker) fifo(pfd int, name, base string, hdr *tar.Header) error {
	if err := u.clear(pfd, base, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
		return err
	}
	if u.chown {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	// fchmod does not take O_PATH descriptors; the fifo's name is fresh
	// and is not a symlink (mknodat does not follow).
	if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
		return err
	}
	return u.setTimesAt(pfd, base, hdr.AccessTime, hdr.ModTime)
}

// attrs applies ownership, mode and xattrs to an open file or directory.
func (u *unpacker) attrs(fd int, hdr *tar.Header) error {
	if u.chown {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	// After chown, which clears set-id bits.
	if err := unix.Fchmod(fd, uint32(hdr.Mode&0o7777)); err != nil {
		return fmt.Errorf("chmod %o: %w", hdr.Mode&0o7777, err)
	}
	for k, v := range hdr.PAXRecords {
		attr, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if !keptXattr(attr) {
			u.log.Debug("layer: xattr dropped", "entry", hdr.Name, "xattr", attr)
			continue
		}
		if err := unix.Fsetxattr(fd, attr, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
				u.log.Debug("layer: xattr not settable", "entry", hdr.Name, "xattr", attr, "err", err)
				continue
			}
			return fmt.Errorf("xattr %s: %w", attr, err)
		}
	}
	return nil
}

// keptXattr says which extended attributes from a layer are applied: file
// capabilities and user attributes. trusted.* (overlayfs' own, among
// others) and security labels are the host's business, not an image's.
func keptXattr(name string) bool {
	return name == "security.capability" || strings.HasPrefix(name, "user.")
}

func (u *unpacker) setTimes(rel string, atime, mtime time.Time) error {
	parent, base := path.Split(rel)
	pfd, err := u.openAt2(strings.TrimSuffix(parent, "/"), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return u.setTimesAt(pfd, base, atime, mtime)
}

func (u *unpacker) setTimesAt(pfd int, base string, atime, mtime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if mtime.IsZero() {
		ts = []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	}
	return unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW)
}
