// Package boottest boots the built corebox image (out/vmlinuz and
// out/initramfs.img from ./mkimage.sh) in QEMU and checks it from the
// outside: direct and iPXE boots, machine configs from a URL, the
// emergency state, unit restarts, clean poweroff. It has no code of its
// own beyond its tests; the harness is package vmtest.
//
// The image directory is $COREBOX_IMAGE_DIR (default ../out). Without an
// image the tests skip, unless COREBOX_VM=1, when a missing image fails.
package boottest
