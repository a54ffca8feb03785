#!/usr/bin/env bash
# mkimage.sh — build corebox's image and boot it.
#
#   ./mkimage.sh [build]   binary -> kernel -> initramfs -> iPXE script, into out/
#   ./mkimage.sh run       build what is missing, then boot it in QEMU (serial console
#                          on this terminal with a shell; Ctrl-A X or `systemctl poweroff`
#                          ends it; COREBOX_APPEND replaces the extra kernel arguments,
#                          default corebox.debug=1)
#   ./mkimage.sh clean     remove out/ (the kernel cache stays)
#   --debug                also pack u-root's core commands into /bbin
#
# Outputs (stable names): out/corebox, out/vmlinuz, out/initramfs.img, out/boot.ipxe.
# The kernel build is cached in ${COREBOX_CACHE:-/var/cache/corebox}.
set -euo pipefail
cd "$(dirname "$0")"
OUT=${OUT:-out}
DEBUG=0
CMD=build
for a in "$@"; do
	case "$a" in
	build | run | clean) CMD=$a ;;
	--debug) DEBUG=1 ;;
	-h | --help) sed -n '2,13p' "$0"; exit 0 ;;
	*) echo "mkimage.sh: unknown argument '$a' (build|run|clean, --debug)" >&2; exit 2 ;;
	esac
done

say() { printf 'mkimage: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }
step() { # step NAME CMD...: runs a step and prints its time
	local name=$1 t0=$SECONDS
	shift
	"$@"
	say "$name: done in $((SECONDS - t0)) s"
}

# need PACKAGE COMMAND...: installs PACKAGE with apt when a command is missing.
need() {
	local pkg=$1 missing=
	shift
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || [ -e "$c" ] || missing+=" $c"; done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		say "installing $pkg (missing:$missing)"
		if [ -z "${APT_UPDATED:-}" ]; then apt-get update -q >/dev/null; APT_UPDATED=1; fi
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" >/dev/null
	else
		die "missing$missing: install the Debian package '$pkg' (as root: apt-get install $pkg)"
	fi
}

host_tools() {
	command -v go >/dev/null || die "missing go: install Go 1.26 (https://go.dev/dl) and put it on PATH"
	need qemu-system-x86 qemu-system-x86_64
	need ipxe-qemu /usr/lib/ipxe/qemu/efi-virtio.rom
	# disk images (GPT + ext4): the tests' disks now, the A/B disk image later
	need fdisk sfdisk
	need e2fsprogs mkfs.ext4
}

version() {
	local v
	v=$(git describe --tags --always --dirty 2>/dev/null || true)
	echo "${COREBOX_VERSION:-0.1.0-${v:-unknown}}"
}

build_binary() {
	mkdir -p "$OUT"
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/corebox/corebox/internal/version.Version=$(version)" -o "$OUT/corebox" .
	say "binary: $OUT/corebox $(du -h "$OUT/corebox" | cut -f1), version $(version)"
}

build_kernel() {
	kernel-config/build.sh "$OUT/vmlinuz"
}

build_bbin() {
	# u-root's core commands as one busybox-style binary (gobusybox's makebb,
	# a tool of this module), for --debug images.
	local dir=$OUT/bbin
	rm -rf "$dir"
	mkdir -p "$dir"
	local cmds=(cat cp dmesg echo free grep ip ls mkdir mount mv ps rm umount uname)
	CGO_ENABLED=0 go tool makebb -o "$dir/bb" "${cmds[@]/#/github.com/u-root/u-root/cmds/core/}" 2>"$OUT/makebb.log" ||
		{ cat "$OUT/makebb.log" >&2; die "building u-root's core commands failed"; }
	for c in "${cmds[@]}"; do ln -sf bb "$dir/$c"; done
}

build_initramfs() {
	local extra=()
	if [ "$DEBUG" = 1 ]; then
		step "u-root core commands" build_bbin
		extra=(-bbin "$OUT/bbin")
	fi
	go run ./initramfs -binary "$OUT/corebox" -rootfs initramfs/rootfs -version "$(version)" -o "$OUT/initramfs.img" "${extra[@]}"
	say "initramfs: $OUT/initramfs.img $(du -h "$OUT/initramfs.img" | cut -f1)"
}

write_ipxe() {
	cat >"$OUT/boot.ipxe" <<'IPXE'
#!ipxe
# corebox: loads the kernel and initramfs from this script's own directory.
kernel vmlinuz console=tty0 console=ttyS0 quiet
initrd initramfs.img
boot
IPXE
}

build() {
	host_tools
	step binary build_binary
	step kernel build_kernel
	step initramfs build_initramfs
	step "iPXE script" write_ipxe
	say "outputs: $OUT/corebox $OUT/vmlinuz $OUT/initramfs.img $OUT/boot.ipxe"
}

run() {
	build # each step is incremental: Go's build cache, the kernel cache
	say "booting in QEMU (TCG): Ctrl-A X or 'systemctl poweroff' ends it"
	exec qemu-system-x86_64 -machine pc -accel tcg -m 1024 -smp 2 -nographic -no-reboot \
		-kernel "$OUT/vmlinuz" -initrd "$OUT/initramfs.img" \
		-append "console=tty0 console=ttyS0 quiet ${COREBOX_APPEND-corebox.debug=1}" \
		-nic user,model=virtio-net-pci -device virtio-rng-pci
}

case "$CMD" in
build) build ;;
run) run ;;
clean) rm -rf "$OUT" ;;
esac
