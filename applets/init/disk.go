package init

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rootPartName is the GPT partition name of the data partition mounted at /var.
const rootPartName = "ROOT"

// findPartition returns the /dev path of the partition whose GPT name is
// name, as the kernel reports it in sysfs, or "" when there is none.
func findPartition(name string) (dev string, sectors int64, err error) {
	entries, err := os.ReadDir("/sys/class/block")
	if err != nil {
		return "", 0, fmt.Errorf("listing block devices: %w", err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/sys/class/block", e.Name(), "uevent"))
		if err != nil {
			continue
		}
		var devname, partname string
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, "=")
			switch k {
			case "DEVNAME":
				devname = v
			case "PARTNAME":
				partname = v
			}
		}
		if partname == name && devname != "" {
			sz, _ := os.ReadFile(filepath.Join("/sys/class/block", e.Name(), "size"))
			n, _ := strconv.ParseInt(strings.TrimSpace(string(sz)), 10, 64)
			return "/dev/" + devname, n, nil
		}
	}
	return "", 0, nil
}

// mountVar mounts the ROOT partition (ext4) at /var and grows its file
// system to fill the partition; without one /var is a tmpfs, as on a
// diskless iPXE machine. It reports whether /var is on disk.
func mountVar(log *slog.Logger) bool {
	dev, sectors, err := findPartition(rootPartName)
	if err == nil && dev != "" {
		err = unix.Mount(dev, "/var", "ext4", unix.MS_NOATIME, "")
		if err == nil {
			log.Info("var on disk", "device", dev)
			if grew, err := growExt4("/var", sectors*512); err != nil {
				log.Error("growing /var", "err", err)
			} else if grew > 0 {
				log.Info("grew /var to fill its partition", "added_bytes", grew)
			}
			return true
		}
		err = fmt.Errorf("mounting %s (partition %s) on /var: %w", dev, rootPartName, err)
	}
	if err != nil {
		log.Error("var", "err", err)
	}
	if err := unix.Mount("tmpfs", "/var", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil && !errors.Is(err, unix.EBUSY) {
		log.Error("mounting tmpfs on /var", "err", err)
	}
	return false
}

// ext4ResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64).
const ext4ResizeFS = 0x40086610

// growExt4 grows the mounted ext4 file system at dir to size bytes (an
// online resize; a no-op when it already has that size) and returns how
// many bytes it gained.
func growExt4(dir string, size int64) (int64, error) {
	var before, after unix.Statfs_t
	if err := unix.Statfs(dir, &before); err != nil {
		return 0, err
	}
	if size <= 0 {
		return 0, nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	blocks := uint64(size / before.Bsize)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), ext4ResizeFS, uintptr(unsafe.Pointer(&blocks))); errno != 0 {
		return 0, fmt.Errorf("EXT4_IOC_RESIZE_FS to %d blocks: %w", blocks, errno)
	}
	if err := unix.Statfs(dir, &after); err != nil {
		return 0, err
	}
	return int64(after.Blocks-before.Blocks) * before.Bsize, nil
}
