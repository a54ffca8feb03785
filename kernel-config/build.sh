#!/usr/bin/env bash
# build.sh OUT_PATH — build (or fetch from cache) corebox's x86-64 bzImage.
#
# Source:   Debian's linux-source package (/usr/src/linux-source-*.tar.xz).
# Config:   make ARCH=x86_64 tinyconfig + kernel-config/corebox.config
#           (scripts/kconfig/merge_config.sh -m, then make olddefconfig),
#           then every option line of the fragment must be in the final .config.
# Cache:    ${COREBOX_CACHE:-/var/cache/corebox}/kernel/<key>/{bzImage,config}
#           key = linux-source package version + sha256(corebox.config) + sha256(build.sh).
# Env:      COREBOX_CACHE            cache root (default /var/cache/corebox)
#           COREBOX_KERNEL_JOBS      make -j (default: nproc)
#           COREBOX_KERNEL_KEEP_WORK=1  keep the work tree after a successful build
set -euo pipefail

log() { printf 'kernel: %s\n' "$*"; }
die() { printf 'kernel: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] && [ -n "$1" ] || die "usage: $0 OUT_PATH"
OUT_PATH=$1

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT=$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")
FRAGMENT=$SCRIPT_DIR/corebox.config
[ -f "$FRAGMENT" ] || die "missing fragment $FRAGMENT"

START=$(date +%s)

# ---------------------------------------------------------------- source & tools
find_tarball() {
	local t
	t=$(ls -1 /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1 || true)
	printf '%s' "$t"
}

# missing_packages prints the Debian packages needed for a build that are absent.
missing_packages() {
	local -a miss=()
	[ -n "$(find_tarball)" ] || miss+=(linux-source)
	command -v gcc >/dev/null && command -v make >/dev/null || miss+=(build-essential)
	command -v flex >/dev/null || miss+=(flex)
	command -v bison >/dev/null || miss+=(bison)
	command -v bc >/dev/null || miss+=(bc)
	command -v cpio >/dev/null || miss+=(cpio)
	command -v xz >/dev/null || miss+=(xz-utils)
	[ -f /usr/include/gelf.h ] || miss+=(libelf-dev)
	[ -f /usr/include/openssl/ssl.h ] || miss+=(libssl-dev)
	[ ${#miss[@]} -eq 0 ] || printf '%s\n' "${miss[@]}"
}

install_packages() { # install_packages PKG...
	if [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages: $*; install them (as root: apt-get install -y $*)"
	fi
	log "installing missing packages: $* (apt-get install -y)"
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null
	fi
}

TARBALL=$(find_tarball)
if [ -z "$TARBALL" ]; then
	# Without the source we cannot even compute the cache key: install it and
	# the build dependencies together.
	mapfile -t MISSING < <(missing_packages)
	install_packages "${MISSING[@]}"
	TARBALL=$(find_tarball)
	[ -n "$TARBALL" ] || die "linux-source installed but no /usr/src/linux-source-*.tar.xz found"
fi

SRC_NAME=$(basename "$TARBALL" .tar.xz)          # linux-source-6.1
SRC_PKG_VERSION=$(dpkg-query -W -f='${Version}' "$SRC_NAME" 2>/dev/null || true)
if [ -z "$SRC_PKG_VERSION" ]; then
	# Not from a package (hand-placed tarball): key on its content instead.
	SRC_PKG_VERSION=tar-$(sha256sum "$TARBALL" | cut -c1-16)
fi

# ---------------------------------------------------------------- cache key
CFG_SHA=$(sha256sum "$FRAGMENT" | cut -d' ' -f1)
SCRIPT_SHA=$(sha256sum "$SCRIPT" | cut -d' ' -f1)
KEY_HASH=$(printf '%s\n' "$SRC_PKG_VERSION" "$CFG_SHA" "$SCRIPT_SHA" | sha256sum | cut -c1-16)
KEY=$(printf '%s' "${SRC_NAME#linux-source-}_${SRC_PKG_VERSION}" | tr -c 'A-Za-z0-9._+-' '_')-$KEY_HASH

CACHE_ROOT=${COREBOX_CACHE:-/var/cache/corebox}/kernel
mkdir -p "$CACHE_ROOT" 2>/dev/null || die "cannot create cache dir $CACHE_ROOT (set COREBOX_CACHE)"
[ -w "$CACHE_ROOT" ] || die "cache dir $CACHE_ROOT is not writable (set COREBOX_CACHE)"
ENTRY=$CACHE_ROOT/$KEY

copy_out() {
	local dir
	dir=$(dirname -- "$OUT_PATH")
	mkdir -p -- "$dir"
	cp -f -- "$ENTRY/bzImage" "$OUT_PATH.tmp.$$"
	mv -f -- "$OUT_PATH.tmp.$$" "$OUT_PATH"
}

if [ -f "$ENTRY/bzImage" ] && [ -f "$ENTRY/config" ]; then
	copy_out
	log "cached ($KEY)"
	exit 0
fi

# One build at a time per cache (parallel mkimage runs share the result).
exec 9>"$CACHE_ROOT/.lock"
if ! flock -n 9; then
	log "waiting for another kernel build to finish ($CACHE_ROOT/.lock)"
	flock 9
fi
if [ -f "$ENTRY/bzImage" ] && [ -f "$ENTRY/config" ]; then
	copy_out
	log "cached ($KEY)"
	exit 0
fi

mapfile -t MISSING < <(missing_packages)
[ ${#MISSING[@]} -eq 0 ] || install_packages "${MISSING[@]}"

# ---------------------------------------------------------------- work tree
log "building $SRC_NAME ($SRC_PKG_VERSION) with corebox.config, key $KEY"
# Stale work trees and half-written cache entries from earlier runs.
rm -rf -- "$CACHE_ROOT"/work-* "$CACHE_ROOT"/.tmp-*
WORK=$CACHE_ROOT/work-$KEY
SRC=$WORK/src
LOG=$WORK/build.log
mkdir -p -- "$SRC"
: >"$LOG"

on_exit() {
	local rc=$?
	if [ $rc -ne 0 ] && [ -d "$WORK" ]; then
		printf 'kernel: failed; work tree kept at %s (full log: %s)\n' "$WORK" "$LOG" >&2
	fi
}
trap on_exit EXIT

log "extracting $TARBALL"
tar -xf "$TARBALL" -C "$SRC" --strip-components=1

# Reproducible version banner: no build user/host/date of this machine.
BUILD_TS=$(date -u -d "@$(stat -c %Y "$TARBALL")" '+%Y-%m-%d %H:%M:%S UTC')
MAKE=(make -C "$SRC" ARCH=x86_64
	KBUILD_BUILD_USER=corebox KBUILD_BUILD_HOST=corebox
	"KBUILD_BUILD_TIMESTAMP=$BUILD_TS")

run_logged() { # run_logged WHAT CMD... — output to the log, tail on failure
	local what=$1; shift
	if ! "$@" >>"$LOG" 2>&1; then
		printf 'kernel: %s failed; last lines of %s:\n' "$what" "$LOG" >&2
		tail -n 60 "$LOG" >&2
		exit 1
	fi
}

log "configuring: tinyconfig + corebox.config"
run_logged "make tinyconfig" "${MAKE[@]}" tinyconfig
run_logged "merge_config.sh" env -C "$SRC" scripts/kconfig/merge_config.sh -m .config "$FRAGMENT"
run_logged "make olddefconfig" "${MAKE[@]}" olddefconfig

# ---------------------------------------------------------------- check
# Every option line of the fragment must survive into the final .config;
# Kconfig silently drops options whose dependencies are not met.
check_config() {
	local final=$SRC/.config prev="" line opt val n_opts=0 n_bad=0
	local -a bad=()
	while IFS= read -r line || [ -n "$line" ]; do
		case $line in
		CONFIG_*=*)
			n_opts=$((n_opts + 1))
			opt=${line%%=*}
			val=${line#*=}
			local reason=""
			case $prev in
			'# '*) reason=${prev#\# } ;;
			esac
			if [ -z "$reason" ]; then
				bad+=("$line  (no '# reason' comment on the line before it in corebox.config)")
			elif [ "$val" = n ]; then
				if grep -q "^$opt=" "$final"; then
					bad+=("$line  # $reason  [final: $(grep "^$opt=" "$final")]")
				fi
			elif ! grep -qxF -- "$line" "$final"; then
				local got
				got=$(grep -E "^$opt=|^# $opt is not set" "$final" || true)
				bad+=("$line  # $reason  [final: ${got:-absent}]")
			fi
			;;
		esac
		prev=$line
	done <"$FRAGMENT"
	n_bad=${#bad[@]}
	if [ "$n_bad" -ne 0 ]; then
		printf 'kernel: config check failed: %d of %d fragment options not in the final .config\n' \
			"$n_bad" "$n_opts" >&2
		printf 'kernel:   %s\n' "${bad[@]}" >&2
		printf 'kernel: (a dependency is missing or the option does not exist in this kernel; see %s/.config)\n' "$SRC" >&2
		exit 1
	fi
	log "config check: all $n_opts fragment options present in the final .config"
}
check_config

# ---------------------------------------------------------------- build
JOBS=${COREBOX_KERNEL_JOBS:-$(nproc)}
log "make -j$JOBS bzImage (log: $LOG)"
run_logged "make bzImage" "${MAKE[@]}" -j"$JOBS" bzImage

# ---------------------------------------------------------------- store
TMP_ENTRY=$CACHE_ROOT/.tmp-$KEY-$$
mkdir -p -- "$TMP_ENTRY"
cp -- "$SRC/arch/x86/boot/bzImage" "$TMP_ENTRY/bzImage"
cp -- "$SRC/.config" "$TMP_ENTRY/config"
rm -rf -- "$ENTRY"
mv -T -- "$TMP_ENTRY" "$ENTRY"
copy_out

if [ "${COREBOX_KERNEL_KEEP_WORK:-0}" != 1 ]; then
	rm -rf -- "$WORK"
fi

# Keep the 5 most recent cache entries (each is a few MB).
ls -1dt "$CACHE_ROOT"/*/ 2>/dev/null | grep -v '/work-' | tail -n +6 | xargs -r rm -rf --

ELAPSED=$(($(date +%s) - START))
SIZE=$(stat -c %s "$ENTRY/bzImage")
# CPU time of all child processes (user+system): tells a loaded machine from a slow build.
times >"$CACHE_ROOT/.times.$$" # builtin in this shell: children = make, tar, ...
CPU=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } printf "%dm%02ds", n / 60, n % 60 }' "$CACHE_ROOT/.times.$$")
rm -f -- "$CACHE_ROOT/.times.$$"
log "built $KEY in $((ELAPSED / 60))m$((ELAPSED % 60))s wall (${CPU} cpu, -j$JOBS); bzImage $SIZE bytes ($((SIZE / 1024)) KiB) -> $OUT_PATH"
