package init

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/u-root/u-root/pkg/boot/kexec"
	"golang.org/x/sys/unix"

	"github.com/corebox/corebox/applets/init/control"
)

// loadKexec loads the kernel (and initramfs) of req with kexec_file_load;
// the command line defaults to the running kernel's.
func loadKexec(req control.PowerRequest) error {
	kernel, err := os.Open(req.Kernel)
	if err != nil {
		return fmt.Errorf("kexec: %w", err)
	}
	defer kernel.Close()
	var initrd *os.File
	if req.Initrd != "" {
		if initrd, err = os.Open(req.Initrd); err != nil {
			return fmt.Errorf("kexec: %w", err)
		}
		defer initrd.Close()
	}
	cmdline := req.Cmdline
	if cmdline == "" {
		b, _ := os.ReadFile("/proc/cmdline")
		cmdline = strings.TrimSpace(string(b))
	}
	if err := kexec.FileLoad(kernel, initrd, cmdline); err != nil {
		return fmt.Errorf("kexec: loading %s: %w", req.Kernel, err)
	}
	return nil
}

// shutdown ends the machine after the units are stopped: every remaining
// process is terminated, file systems are synced and unmounted, then the
// kernel reboots, powers off or halts.
func shutdown(log *slog.Logger, action string) {
	log.Info("shutdown", "action", action)
	syscall.Kill(-1, syscall.SIGTERM)
	time.Sleep(200 * time.Millisecond)
	syscall.Kill(-1, syscall.SIGKILL)
	unix.Sync()
	unmountAll(log)
	unix.Sync()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	switch action {
	case "reboot":
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	case "halt":
		cmd = unix.LINUX_REBOOT_CMD_HALT
	case "kexec":
		cmd = unix.LINUX_REBOOT_CMD_KEXEC
	}
	if err := unix.Reboot(cmd); err != nil {
		log.Error("reboot(2)", "action", action, "err", err)
	}
	// reboot(2) does not return on success; a failed halt must not let PID 1 exit.
	for {
		time.Sleep(time.Hour)
	}
}

// unmountAll unmounts what /proc/self/mounts lists, deepest first; the
// root and API file systems stay (the kernel needs none of them synced).
func unmountAll(log *slog.Logger) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return
	}
	var targets []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		switch fields[2] {
		case "proc", "sysfs", "devtmpfs", "devpts", "cgroup2", "rootfs":
			continue
		}
		if fields[1] == "/" {
			continue
		}
		targets = append(targets, fields[1])
	}
	f.Close()
	sort.Slice(targets, func(i, j int) bool { return len(targets[i]) > len(targets[j]) })
	for _, t := range targets {
		if err := unix.Unmount(t, 0); err != nil {
			// Busy: remount read-only so that nothing is left unsynced.
			unix.Mount("", t, "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
			log.Info("unmount", "target", t, "err", err)
		}
	}
}
