package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths inside a container's root are resolved with openat2(2) and
// RESOLVE_IN_ROOT, never joined onto the host path of the root: a symlink
// in the image ("/etc -> /host/etc", "../../..") resolves inside the root,
// and magic links (/proc/self/fd/N) are refused, so no mount target or
// working directory can name a host path (CVE-2021-30465, CVE-2024-21626).
// Every mount is then made onto the descriptor that was resolved, not onto
// a path that could be swapped for a symlink in between.

const inRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openInRoot opens path (absolute, as seen from inside) below root.
func openInRoot(root int, path string, flags int) (int, error) {
	rel := strings.TrimLeft(filepath.Clean("/"+path), "/")
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: inRoot}
	for {
		fd, err := unix.Openat2(root, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// mkdirAllInRoot makes the directories of path below root that are
// missing and returns an O_PATH descriptor of the last one. Each step is
// resolved from the root with RESOLVE_IN_ROOT, so a symlink met on the way
// — there before, or swapped in while this runs — leads somewhere inside
// the root; a dangling symlink is followed (inside the root) and its
// target made.
func mkdirAllInRoot(root int, path string, mode uint32) (int, error) {
	if fd, err := openInRoot(root, path, unix.O_PATH|unix.O_DIRECTORY); err == nil {
		return fd, nil
	} else if err != unix.ENOENT {
		return -1, fmt.Errorf("opening %s in the container: %w", path, err)
	}
	remaining := splitPath(path)
	prefix := "/"
	links := 0
	for len(remaining) > 0 {
		comp := remaining[0]
		next := filepath.Join(prefix, comp)
		fd, err := openInRoot(root, next, unix.O_PATH|unix.O_DIRECTORY)
		if err == nil {
			unix.Close(fd)
			prefix, remaining = next, remaining[1:]
			continue
		}
		if err != unix.ENOENT {
			return -1, fmt.Errorf("opening %s in the container: %w", next, err)
		}
		parent, err := openInRoot(root, prefix, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return -1, fmt.Errorf("opening %s in the container: %w", prefix, err)
		}
		var st unix.Stat_t
		err = unix.Fstatat(parent, comp, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == unix.ENOENT:
			err = unix.Mkdirat(parent, comp, mode)
			if err == unix.EEXIST {
				err = nil // made meanwhile; the next round resolves it
			}
			if err == nil {
				prefix, remaining = next, remaining[1:]
			}
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
			// A dangling symlink: continue from its target.
			links++
			if links > 40 {
				err = unix.ELOOP
				break
			}
			var target string
			target, err = readlinkat(parent, comp)
			if err == nil {
				if filepath.IsAbs(target) {
					prefix = "/"
				}
				remaining = append(splitPath(target), remaining[1:]...)
			}
		case err == nil:
			err = unix.ENOTDIR
		}
		unix.Close(parent)
		if err != nil {
			return -1, fmt.Errorf("making %s in the container: %w", next, err)
		}
	}
	fd, err := openInRoot(root, prefix, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, fmt.Errorf("opening %s in the container: %w", path, err)
	}
	return fd, nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

func readlinkat(dir int, name string) (string, error) {
	b := make([]byte, 4096)
	n, err := unix.Readlinkat(dir, name, b)
	if err != nil {
		return "", err
	}
	return string(b[:n]), nil
}

// makeFileInRoot makes sure a non-directory exists at path below root
// (for bind mounts of files and device nodes) and returns an O_PATH
// descriptor of it.
func makeFileInRoot(root int, path string) (int, error) {
	if fd, err := openInRoot(root, path, unix.O_PATH); err == nil {
		return fd, nil
	} else if err != unix.ENOENT {
		return -1, fmt.Errorf("opening %s in the container: %w", path, err)
	}
	dir, err := mkdirAllInRoot(root, filepath.Dir(path), 0o755)
	if err != nil {
		return -1, err
	}
	defer unix.Close(dir)
	base := filepath.Base(path)
	// The parent is an O_PATH descriptor: reopen it to create in it.
	parent, err := unix.Openat(dir, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("making %s in the container: %w", path, err)
	}
	defer unix.Close(parent)
	fd, err := unix.Openat(parent, base, unix.O_CREAT|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil && err != unix.EISDIR {
		return -1, fmt.Errorf("making %s in the container: %w", path, err)
	}
	if err == nil {
		unix.Close(fd)
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH}
	fd, err = unix.Openat2(parent, base, &how)
	if err != nil {
		return -1, fmt.Errorf("opening %s in the container: %w", path, err)
	}
	return fd, nil
}

// fdPath is the /proc/self/fd path of fd, for mount(2) targets.
func fdPath(fd int) string { return fmt.Sprintf("/proc/self/fd/%d", fd) }

// checkBelow verifies that fd still names a file below rootfs (on the
// host's view), the last check before mounting onto it.
func checkBelow(fd int, rootfs string) error {
	p, err := os.Readlink(fdPath(fd))
	if err != nil {
		return fmt.Errorf("checking a mount target: %w", err)
	}
	if p != rootfs && !strings.HasPrefix(p, rootfs+"/") {
		return fmt.Errorf("mount target %s is outside the container's root %s", p, rootfs)
	}
	return nil
}
