// Package cgroups puts containers and pods into control groups and limits
// them, on cgroup v2 hosts (what corebox's own kernel runs) and on cgroup v1
// hosts, including "hybrid" ones where v1 controllers sit beside a cgroup2
// mount at /sys/fs/cgroup/unified.
//
// It owns: reading which hierarchies the host has (/proc/self/mountinfo),
// resolving an OCI cgroupsPath to directories (absolute from the hierarchy
// root, relative below the caller's own cgroup as runc does, per hierarchy
// on v1), creating them, translating specs.LinuxResources into interface
// files (with runc's v1→v2 conversions), the v2 device filter as an eBPF
// program, moving, listing, freezing and killing processes, statistics and
// removal.
//
// On a v1 host a Cgroup has one directory in every mounted v1 hierarchy,
// including the named name=systemd one (as runc's cgroupfs driver does, so
// that tools reading it see the container), and on a hybrid host also one
// in the cgroup2 hierarchy: the kernel's cgroup.kill works there, and
// hugetlb lives there on hosts whose v1 side lacks it. Add moves a process
// into all of them.
//
// It does not own: choosing a cgroupsPath or the default device rules (the
// engine in applets/rkt/container does), systemd's slice:prefix:name paths
// (rejected: corebox writes cgroupfs itself), or the unit groups of init
// (applets/init/supervisor keeps its own simpler grouping).
package cgroups
