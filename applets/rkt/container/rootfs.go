package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// rootfs sets up a container's root file system from inside its mount
// namespace: prepare (before pivot_root: mounts, devices), pivot, finish
// (after: sysctls, masked and read-only paths, a read-only root).
type rootfs struct {
	spec   *specs.Spec
	path   string // host path of the root
	userns bool   // device nodes are bind-mounted, not made
	root   int    // O_PATH descriptor of path
	// hostMounts: no mount namespace of its own; nothing is mounted, the
	// root is entered with chroot.
	hostMounts bool
}

// defaultDevices are made in every container's /dev.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: fileMode(0o666)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: fileMode(0o666)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: fileMode(0o666)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: fileMode(0o666)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: fileMode(0o666)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: fileMode(0o666)},
}

func fileMode(m os.FileMode) *os.FileMode { return &m }

// defaultDeviceRules are the cgroup device rules every container gets,
// besides its own devices: the default nodes, and /dev/pts.
var defaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(8), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(1), Minor: i64(9), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(0), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(5), Minor: i64(2), Access: "rwm"},
	{Allow: true, Type: "c", Major: i64(136), Access: "rwm"},
}

func i64(v int64) *int64 { return &v }

func (r *rootfs) prepare() error {
	if r.hostMounts {
		var err error
		r.root, err = unix.Open(r.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the root %s: %w", r.path, err)
		}
		return nil
	}
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	switch r.spec.Linux.RootfsPropagation {
	case "private", "rprivate":
		prop = unix.MS_PRIVATE | unix.MS_REC
	case "unbindable", "runbindable":
		prop = unix.MS_UNBINDABLE | unix.MS_REC
	}
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("setting the propagation of /: %w", err)
	}
	if err := unix.Mount(r.path, r.path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting the root %s: %w", r.path, err)
	}
	var err error
	r.root, err = unix.Open(r.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the root %s: %w", r.path, err)
	}
	devBound := false
	for i, m := range r.spec.Mounts {
		if err := r.mount(m); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
		if filepath.Clean(m.Destination) == "/dev" && isBind(m) {
			devBound = true
		}
	}
	if !devBound {
		if err := r.makeDevices(); err != nil {
			return err
		}
	}
	return nil
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// attrs translates mount flags into mount_setattr attributes.
func attrs(flags uintptr) uint64 {
	var a uint64
	for ms, attr := range map[uintptr]uint64{
		unix.MS_RDONLY: unix.MOUNT_ATTR_RDONLY, unix.MS_NOSUID: unix.MOUNT_ATTR_NOSUID,
		unix.MS_NODEV: unix.MOUNT_ATTR_NODEV, unix.MS_NOEXEC: unix.MOUNT_ATTR_NOEXEC,
		unix.MS_NODIRATIME: unix.MOUNT_ATTR_NODIRATIME,
	} {
		if flags&ms != 0 {
			a |= attr
		}
	}
	switch {
	case flags&unix.MS_NOATIME != 0:
		a |= unix.MOUNT_ATTR_NOATIME
	case flags&unix.MS_STRICTATIME != 0:
		a |= unix.MOUNT_ATTR_STRICTATIME
	case flags&unix.MS_RELATIME != 0:
		a |= unix.MOUNT_ATTR_RELATIME
	}
	return a
}

func (r *rootfs) mount(m specs.Mount) error {
	opts, err := parseMountOptions(m.Options)
	if err != nil {
		return err
	}
	bind := opts.bind || m.Type == "bind"
	var target int
	if bind {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		if fi.IsDir() {
			target, err = mkdirAllInRoot(r.root, m.Destination, 0o755)
		} else {
			target, err = makeFileInRoot(r.root, m.Destination)
		}
		if err != nil {
			return err
		}
	} else {
		target, err = mkdirAllInRoot(r.root, m.Destination, 0o755)
		if err != nil {
			return err
		}
	}
	defer unix.Close(target)
	if err := checkBelow(target, r.path); err != nil {
		return err
	}
	if bind {
		if err := bindInto(m.Source, target, opts.recursive, attrs(opts.flags), attrs(opts.clear)); err != nil {
			return fmt.Errorf("%v: %w", m.Options, err)
		}
	} else {
		fstype := m.Type
		if fstype == "cgroup" {
			// The engine gives containers the unified hierarchy, on
			// v2 hosts and hybrid ones alike.
			fstype = "cgroup2"
		}
		if fstype == "" {
			return errors.New("type: missing")
		}
		src := m.Source
		if src == "" {
			src = fstype
		}
		data := strings.Join(opts.data, ",")
		err := unix.Mount(src, fdPath(target), fstype, opts.flags, data)
		if err == unix.EPERM && r.userns && (fstype == "sysfs" || fstype == "cgroup2") {
			// A user namespace may not mount sysfs without its own
			// network namespace, nor cgroup2 without its own cgroup
			// namespace: bind the host's, as runc does.
			host := map[string]string{"sysfs": "/sys", "cgroup2": "/sys/fs/cgroup"}[fstype]
			err = bindInto(host, target, true, attrs(opts.flags), 0)
		}
		if err != nil {
			return fmt.Errorf("mounting %s: %w", fstype, err)
		}
	}
	if opts.propagation != 0 {
		top, err := openInRoot(r.root, m.Destination, unix.O_PATH)
		if err != nil {
			return fmt.Errorf("reopening the mount: %w", err)
		}
		defer unix.Close(top)
		attr := unix.MountAttr{Propagation: uint64(opts.propagation &^ unix.MS_REC)}
		flags := unix.AT_EMPTY_PATH
		if opts.propagation&unix.MS_REC != 0 {
			flags |= unix.AT_RECURSIVE
		}
		if err := unix.MountSetattr(top, "", uint(flags), &attr); err != nil {
			return fmt.Errorf("setting propagation: %w", err)
		}
	}
	return nil
}

// bindInto bind-mounts src (recursively or not) onto the target
// descriptor with the new mount API: the clone is detached until its
// attributes are set, then attached onto exactly the resolved target.
func bindInto(src string, target int, recursive bool, set, clr uint64) error {
	flags := unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, uint(flags))
	if err != nil {
		return fmt.Errorf("cloning %s: %w", src, err)
	}
	defer unix.Close(tree)
	if set != 0 || clr != 0 {
		if set&unix.MOUNT_ATTR__ATIME != 0 || clr&unix.MOUNT_ATTR__ATIME != 0 {
			clr |= unix.MOUNT_ATTR__ATIME
		}
		attr := unix.MountAttr{Attr_set: set, Attr_clr: clr}
		if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
			return fmt.Errorf("setting mount attributes on %s: %w", src, err)
		}
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("attaching %s: %w", src, err)
	}
	return nil
}

// makeDevices fills /dev with the default devices, the spec's devices and
// the standard symlinks.
func (r *rootfs) makeDevices() error {
	dev, err := mkdirAllInRoot(r.root, "/dev", 0o755)
	if err != nil {
		return err
	}
	unix.Close(dev)
	devices := append([]specs.LinuxDevice(nil), defaultDevices...)
	for _, d := range r.spec.Linux.Devices {
		replaced := false
		for i := range devices {
			if devices[i].Path == d.Path {
				devices[i], replaced = d, true
			}
		}
		if !replaced {
			devices = append(devices, d)
		}
	}
	for _, d := range devices {
		if r.mountedAt(d.Path) {
			continue // the spec mounts something there itself
		}
		if err := r.makeDevice(d); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	for _, l := range links {
		if err := r.symlink(l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

func (r *rootfs) mountedAt(path string) bool {
	for _, m := range r.spec.Mounts {
		if filepath.Clean(m.Destination) == filepath.Clean(path) {
			return true
		}
	}
	return false
}

func (r *rootfs) symlink(target, path string) error {
	dir, err := openInRoot(r.root, filepath.Dir(path), unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("symlink %s: %w", path, err)
	}
	defer unix.Close(dir)
	base := filepath.Base(path)
	// A device made by a spec (or an image's leftover) may stand there.
	if err := unix.Unlinkat(dir, base, 0); err != nil && err != unix.ENOENT && err != unix.EISDIR {
		return fmt.Errorf("symlink %s: %w", path, err)
	}
	if err := unix.Symlinkat(target, dir, base); err != nil && err != unix.EEXIST {
		return fmt.Errorf("symlink %s -> %s: %w", path, target, err)
	}
	return nil
}

func (r *rootfs) makeDevice(d specs.LinuxDevice) error {
	dirPath := filepath.Dir(filepath.Clean(d.Path))
	dir0, err := mkdirAllInRoot(r.root, dirPath, 0o755)
	if err != nil {
		return err
	}
	dir, err := unix.Openat(dir0, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	unix.Close(dir0)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	base := filepath.Base(d.Path)
	// Whatever stands at the path (an image's file, a symlink planted to
	// redirect the node) goes; a directory there is an error.
	if err := unix.Unlinkat(dir, base, 0); err != nil && err != unix.ENOENT {
		return fmt.Errorf("removing what is at %s: %w", d.Path, err)
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	if r.userns {
		// No mknod in a user namespace: bind the host's node.
		fd, err := unix.Openat(dir, base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o000)
		if err != nil {
			return err
		}
		unix.Close(fd)
		how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH}
		target, err := unix.Openat2(dir, base, &how)
		if err != nil {
			return err
		}
		defer unix.Close(target)
		tree, err := unix.OpenTree(unix.AT_FDCWD, d.Path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			return fmt.Errorf("cloning the host's %s: %w", d.Path, err)
		}
		defer unix.Close(tree)
		return unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	}
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	}
	if err := unix.Mknodat(dir, base, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	// mknod obeys the umask: set the mode the spec asked for.
	if err := unix.Fchmodat(dir, base, mode, 0); err != nil {
		return err
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Fchownat(dir, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// pivot makes the root the process's / with pivot_root(2) and detaches
// the old root; with noPivot it moves the root onto / and chroots (for
// roots on ramfs, where pivot_root is refused).
func (r *rootfs) pivot(noPivot bool) error {
	if err := unix.Fchdir(r.root); err != nil {
		return fmt.Errorf("entering the root: %w", err)
	}
	if r.hostMounts {
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
	} else if noPivot {
		if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("moving the root onto /: %w", err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
	} else {
		if err := unix.PivotRoot(".", "."); err != nil {
			return fmt.Errorf("pivot_root: %w", err)
		}
		// The old root is now stacked on /: keep its unmount from
		// propagating to the host, then detach it.
		if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("making the old root a slave: %w", err)
		}
		if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching the old root: %w", err)
		}
	}
	unix.Close(r.root)
	r.root = -1
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("entering the new root: %w", err)
	}
	switch r.spec.Linux.RootfsPropagation {
	case "shared", "rshared":
		if err := unix.Mount("", "/", "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation: %w", err)
		}
	}
	return nil
}

// finish runs after pivot: sysctls, hostname, masked and read-only paths,
// and the read-only root.
func (r *rootfs) finish() error {
	l := r.spec.Linux
	for k, v := range l.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		f, err := os.OpenFile(p, os.O_WRONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return fmt.Errorf("linux.sysctl %q: %w", k, err)
		}
		_, err = f.WriteString(v)
		f.Close()
		if err != nil {
			return fmt.Errorf("linux.sysctl %q = %q: %w", k, v, err)
		}
	}
	if r.spec.Hostname != "" {
		if err := unix.Sethostname([]byte(r.spec.Hostname)); err != nil {
			return fmt.Errorf("hostname %q: %w", r.spec.Hostname, err)
		}
	}
	if r.spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(r.spec.Domainname)); err != nil {
			return fmt.Errorf("domainname %q: %w", r.spec.Domainname, err)
		}
	}
	if r.hostMounts {
		return nil
	}
	if len(l.MaskedPaths) > 0 {
		null, err := openDevNull()
		if err != nil {
			return err
		}
		defer unix.Close(null)
		for _, p := range l.MaskedPaths {
			if err := maskPath(p, null); err != nil {
				return fmt.Errorf("linux.maskedPaths %s: %w", p, err)
			}
		}
	}
	for _, p := range l.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return fmt.Errorf("linux.readonlyPaths %s: %w", p, err)
		}
	}
	if r.spec.Root.Readonly {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &attr); err != nil {
			return fmt.Errorf("root.readonly: %w", err)
		}
	}
	return nil
}

// openDevNull opens the container's /dev/null and makes sure it is the
// null device (character 1:3), so that masking binds nothing else over
// the masked paths: a /dev/null that an image or a mount turned into a
// symlink, a regular file or another device would otherwise be bound over
// /proc files (CVE-2025-31133). The descriptor, not the path, is what is
// bound afterwards.
func openDevNull() (int, error) {
	fd, err := unix.Open("/dev/null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening /dev/null to mask paths with: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("checking /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		unix.Close(fd)
		return -1, fmt.Errorf("/dev/null is not the null device (mode %#o, device %d:%d): refusing to mask paths with it", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return fd, nil
}

// maskPath hides p: /dev/null over a file, an empty read-only tmpfs over
// a directory. A missing path needs no mask.
func maskPath(p string, null int) error {
	target, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(target)
	var st unix.Stat_t
	if err := unix.Fstat(target, &st); err != nil {
		return err
	}
	var mnt int
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
		if err != nil {
			return err
		}
		defer unix.Close(fs)
		if err := unix.FsconfigSetString(fs, "mode", "0755"); err != nil {
			return err
		}
		if err := unix.FsconfigSetString(fs, "size", "0"); err != nil {
			return err
		}
		if err := unix.FsconfigCreate(fs); err != nil {
			return err
		}
		mnt, err = unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
		if err != nil {
			return err
		}
	} else {
		mnt, err = unix.OpenTree(null, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
		if err != nil {
			return err
		}
	}
	defer unix.Close(mnt)
	return unix.MoveMount(mnt, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// readonlyPath remounts p (and what is mounted below it) read-only. A
// missing path needs nothing.
func readonlyPath(p string) error {
	tree, err := unix.OpenTree(unix.AT_FDCWD, p, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return err
	}
	target, err := unix.Open(p, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	return unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}
