package init

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// switchedEnv marks the init that leaveRootfs started from the new root;
// its value is the CLOCK_MONOTONIC time (ns) at which the first init
// started, so that the boot's userspace time counts the switch.
const switchedEnv = "COREBOX_ROOT_SWITCHED"

// newRoot is where leaveRootfs mounts the tmpfs it copies the initramfs to.
const newRoot = "/.root"

// leaveRootfs does what switch_root does for an initramfs that stays the
// system: the kernel unpacks the initramfs into rootfs, the one mount with
// no parent, and pivot_root — which every container start needs — refuses
// to work in a mount namespace whose root is that mount. So PID 1 copies
// the initramfs into a tmpfs, empties rootfs to give its memory back, moves
// the tmpfs over / and executes itself again from there. It returns only if
// there is nothing to do (nil) or it could not switch (the system then runs
// on rootfs, where containers cannot start); then started is when this
// init began, or the first one, before the switch.
func leaveRootfs(started time.Time) (time.Time, error) {
	if v := os.Getenv(switchedEnv); v != "" {
		os.Unsetenv(switchedEnv)
		if then, err := strconv.ParseInt(v, 10, 64); err == nil {
			if now := monotonicNanos(); now > then {
				started = started.Add(-time.Duration(now - then))
			}
		}
		return started, nil
	}
	return started, switchRoot(started)
}

// monotonicNanos is CLOCK_MONOTONIC in nanoseconds (0 if unreadable).
func monotonicNanos() int64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return ts.Nano()
}

func switchRoot(started time.Time) error {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return fmt.Errorf("statfs /: %w", err)
	}
	if st.Type != unix.RAMFS_MAGIC && st.Type != unix.TMPFS_MAGIC {
		return nil // a real root file system: pivot_root works
	}
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		return fmt.Errorf("stat /: %w", err)
	}
	if err := os.Mkdir(newRoot, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := unix.Mount("tmpfs", newRoot, "tmpfs", 0, "mode=0755"); err != nil {
		return fmt.Errorf("mounting a tmpfs at %s: %w", newRoot, err)
	}
	if err := copyTree("/", newRoot, root.Dev); err != nil {
		unix.Unmount(newRoot, unix.MNT_DETACH)
		return fmt.Errorf("copying the initramfs to a tmpfs: %w", err)
	}
	// From here on there is no way back: empty rootfs, then switch.
	emptyRootfs(root.Dev)
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("moving %s over /: %w", newRoot, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot into the new root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	exe := "/init"
	if len(os.Args) > 0 && filepath.IsAbs(os.Args[0]) {
		exe = os.Args[0]
	}
	first := monotonicNanos() - int64(time.Since(started))
	return syscall.Exec(exe, os.Args, append(os.Environ(), switchedEnv+"="+strconv.FormatInt(first, 10)))
}

// copyTree copies the file system tree at src (the part on device dev) to
// dst: directories, regular files, symbolic links and device nodes, with
// their modes and owners.
func copyTree(src, dst string, dev uint64) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == newRoot {
			return fs.SkipDir
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Dev != dev {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		mode := st.Mode & 0o7777
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			if rel != "." {
				if err := unix.Mkdir(target, mode); err != nil {
					return fmt.Errorf("mkdir %s: %w", target, err)
				}
			}
		case unix.S_IFREG:
			if err := copyFile(p, target, os.FileMode(mode)); err != nil {
				return err
			}
		case unix.S_IFLNK:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", target, err)
			}
		default:
			return nil // sockets: nothing to keep
		}
		if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("chown %s: %w", target, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			return unix.Chmod(target, mode) // after chown, which clears set-id bits
		}
		return nil
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
}

// emptyRootfs removes what rootfs holds (on device dev), but newRoot.
func emptyRootfs(dev uint64) {
	entries, _ := os.ReadDir("/")
	for _, e := range entries {
		p := "/" + e.Name()
		if p == newRoot {
			continue
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Dev == dev {
			os.RemoveAll(p)
		}
	}
}
