package container

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// selfExe is a descriptor of this binary that the stub is executed from:
// a detached, read-only bind mount of /proc/self/exe (open_tree + a
// read-only mount_setattr), so the executable a container process can
// reach through /proc/PID/exe of a stub is on a mount that refuses writes
// and is attached nowhere in any mount namespace (CVE-2019-5736). The
// clone costs two system calls; when the kernel refuses them (before 5.12,
// or without CAP_SYS_ADMIN) the fallback is a sealed memfd copy, which
// costs a copy of the binary.
type selfExe struct {
	f *os.File
}

// openSelfExe opens the copy with a descriptor number of at least
// childFiles, the number of files a child gets.
func openSelfExe(childFiles int) (*selfExe, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		err = unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr)
		if err == nil {
			return &selfExe{f: os.NewFile(uintptr(highFD(fd, childFiles)), "corebox (read-only clone)")}, nil
		}
		unix.Close(fd)
	}
	return sealedCopy(childFiles)
}

// highFD moves fd to 100 or above, and at least childFiles: above the
// numbers a child's files are dup2'ed to, so that the child can still
// execute /proc/self/fd/N after its files are in place.
func highFD(fd, childFiles int) int {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, max(100, childFiles))
	if err != nil {
		return fd
	}
	unix.Close(fd)
	return nfd
}

func sealedCopy(childFiles int) (*selfExe, error) {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, fmt.Errorf("opening own executable: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("corebox", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("copying own executable: %w", err)
	}
	f := os.NewFile(uintptr(highFD(fd, childFiles)), "corebox (sealed copy)")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copying own executable: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing the copy of own executable: %w", err)
	}
	return &selfExe{f: f}, nil
}

// path is what the child executes.
func (s *selfExe) path() string { return fmt.Sprintf("/proc/self/fd/%d", s.f.Fd()) }

func (s *selfExe) Close() error { return s.f.Close() }
