// Package vmtest boots kernels and initramfs images in QEMU for tests and
// talks to them over the serial console.
//
// It owns the QEMU command line (TCG, no display, the serial console on
// QEMU's standard input and output, -no-reboot so that a guest reboot or
// poweroff ends the process), the console transcript with its Expect cursor,
// the Run protocol for typing commands into a shell on the console, user-mode
// networking with host port forwards, iPXE boot through QEMU's own ROM and
// built-in TFTP, and Network, an Ethernet switch in the test process that
// joins several VMs on one segment.
//
// It does not own what it boots: the kernel, the initramfs and any disk image
// are built elsewhere (kernel-config/, initramfs/, mkimage.sh) and handed in
// by path. It imports no testing package; tests pass their own contexts,
// deadlines and log writers (see LineWriter).
//
// The Run protocol is one line of POSIX shell:
//
//	echo 'VMTEST''_B_<id>'; CMD; echo 'VMTEST''_E_<id>' $?
//
// The quotes keep the markers from matching in the console's echo of the
// typed line, so any shell on the console serves it, and so does the tiny
// init in internal/testinit that the package's own tests boot.
package vmtest
