// Package container is corebox's OCI runtime engine: it turns a bundle's
// runtime-spec configuration into a running container — namespaces, a
// pivot_root'ed root file system with its mounts and devices, a cgroup
// (through applets/rkt/cgroups), capabilities, rlimits, seccomp (through
// applets/rkt/seccomp), hooks — and keeps each container's state on disk
// under a state root, one directory per container holding state.json (and
// flocked for changes), so that separate processes (runc create, start,
// kill, delete; rkt run, enter) drive the same container without a
// daemon. Status is read from the live system: a container is stopped
// once its init's pid no longer names the process with the recorded start
// time.
//
// The work inside the container's namespaces is done by a stub: corebox
// re-executed once per container (StubMain, reached through the hidden
// applet StubApplet), from a read-only, detached clone of its own binary,
// and non-dumpable, so that no process in the container can reach or
// write the host's executable (CVE-2019-5736). The stub is the
// container's init until Start lets it execve the container's process;
// Exec uses the same stub to enter a running container. stub.go explains
// how the single-thread rule of setns is met.
//
// Secure defaults it enforces whatever the configuration: mount targets
// resolved inside the root (openat2 RESOLVE_IN_ROOT) and mounted onto the
// resolved descriptor after checking it is still below the root; the
// working directory resolved the same way with magic links refused; every
// descriptor above 2 close-on-exec before the execve, but the caller's
// ExtraFiles (runc's --preserve-fds) at 3, 4, …; /dev/null checked to be
// 1:3 before it masks anything.
//
// Not supported (an error naming the field): joining user or time
// namespaces by path, and so Exec into a container with its own user
// namespace; AppArmor, SELinux, Intel RDT, memory policy, net devices,
// id-mapped mounts. A container without a mount namespace of its own is
// only chrooted into its root: its mounts, devices, masked and read-only
// paths would change the host's mount table and are skipped, as runc does.
//
// It does not parse command lines (applets/runc and applets/rkt do), make
// images or root file systems (applets/rkt/image), or configure networks
// (applets/rkt/network).
package container
