package rkt

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// openInRoot opens name inside root, resolving every component (symlinks
// and "..") as if root were "/": an image's symlinks cannot lead out.
func openInRoot(root, name string, flags int) (*os.File, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", root, err)
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, strings.TrimPrefix(name, "/"), &unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    0o644,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, fmt.Errorf("opening %s in %s: %w", name, root, err)
	}
	return os.NewFile(uintptr(fd), root+"/"+strings.TrimPrefix(name, "/")), nil
}

// lookupColonFile finds name in a passwd- or group-format file and returns
// the numeric fields 2 and 3 (uid and gid for passwd; gid for group).
func lookupColonFile(r io.Reader, name string) (int, int, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		a, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("entry for %q: bad id %q", name, f[2])
		}
		b := uint64(0)
		if len(f) > 3 {
			if b, err = strconv.ParseUint(f[3], 10, 32); err != nil {
				return 0, 0, fmt.Errorf("entry for %q: bad group id %q", name, f[3])
			}
		}
		return int(a), int(b), nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, fmt.Errorf("no entry for %q", name)
}

// resolveUser turns the app's user and group (numbers or names) into IDs,
// reading names from the rootfs's /etc/passwd and /etc/group. A user name
// without a group takes the user's primary group.
func resolveUser(rootfs, user, group string) (uid, gid uint32, err error) {
	lookup := func(file, name string) (int, int, error) {
		f, err := openInRoot(rootfs, file, unix.O_RDONLY)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		defer f.Close()
		a, b, err := lookupColonFile(io.LimitReader(f, 16<<20), name)
		if err != nil {
			return 0, 0, fmt.Errorf("%s in the image: %w", file, err)
		}
		return a, b, nil
	}
	primary := -1
	if n, perr := strconv.ParseUint(user, 10, 32); perr == nil {
		uid = uint32(n)
	} else {
		u, g, err := lookup("/etc/passwd", user)
		if err != nil {
			return 0, 0, fmt.Errorf("user %q: %w", user, err)
		}
		uid, primary = uint32(u), g
	}
	switch n, perr := strconv.ParseUint(group, 10, 32); {
	case perr == nil:
		gid = uint32(n)
		if group == "0" && primary >= 0 {
			gid = uint32(primary) // a named user with the default group: its own
		}
	default:
		g, _, err := lookup("/etc/group", group)
		if err != nil {
			return 0, 0, fmt.Errorf("group %q: %w", group, err)
		}
		gid = uint32(g)
	}
	return uid, gid, nil
}
