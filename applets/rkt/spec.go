package rkt

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/corebox/corebox/applets/rkt/seccomp"
)

// maskedPaths and readonlyPaths are runc's defaults.
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// cpuPeriod is the CFS period CPU limits are expressed in (100ms).
const cpuPeriod = 100000

// podNamespaces are the holder's namespaces (/proc/PID/ns/… paths) that
// every app of the pod joins; the network one only without --net=host.
type podNamespaces struct {
	pid, net, ipc, uts string
}

// appSpec is the inputs of one app's OCI spec.
type appSpec struct {
	pod      *PodManifest
	app      *AppManifest
	rootfs   string
	podDir   string
	uid, gid uint32
	ns       podNamespaces
	cgroup   string
}

// errnoNumbers are the errno values --seccomp errno= accepts.
var errnoNumbers = map[string]unix.Errno{
	"EPERM": unix.EPERM, "ENOENT": unix.ENOENT, "ESRCH": unix.ESRCH, "EINTR": unix.EINTR,
	"EIO": unix.EIO, "ENXIO": unix.ENXIO, "E2BIG": unix.E2BIG, "ENOEXEC": unix.ENOEXEC,
	"EBADF": unix.EBADF, "ECHILD": unix.ECHILD, "EAGAIN": unix.EAGAIN, "ENOMEM": unix.ENOMEM,
	"EACCES": unix.EACCES, "EFAULT": unix.EFAULT, "EBUSY": unix.EBUSY, "EEXIST": unix.EEXIST,
	"EXDEV": unix.EXDEV, "ENODEV": unix.ENODEV, "ENOTDIR": unix.ENOTDIR, "EISDIR": unix.EISDIR,
	"EINVAL": unix.EINVAL, "ENFILE": unix.ENFILE, "EMFILE": unix.EMFILE, "ENOTTY": unix.ENOTTY,
	"EFBIG": unix.EFBIG, "ENOSPC": unix.ENOSPC, "ESPIPE": unix.ESPIPE, "EROFS": unix.EROFS,
	"EMLINK": unix.EMLINK, "EPIPE": unix.EPIPE, "ENOSYS": unix.ENOSYS, "ENOTSUP": unix.ENOTSUP,
	"EOPNOTSUPP": unix.EOPNOTSUPP,
}

// spec builds the OCI runtime spec of one app.
func (in appSpec) spec() (*specs.Spec, error) {
	a := in.app
	env := make([]string, 0, len(a.Env))
	for _, e := range a.Env {
		env = append(env, e.String())
	}
	cwd := a.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	caps := slices.Clone(a.Capabilities)
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: in.rootfs, Readonly: a.ReadOnlyRootfs},
		Process: &specs.Process{
			Terminal: in.pod.Interactive,
			Args:     a.Exec,
			Env:      env,
			Cwd:      cwd,
			User:     specs.User{UID: in.uid, GID: in.gid, AdditionalGids: a.SupplementaryGIDs},
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Permitted: caps, Effective: caps,
			},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		},
		Linux: &specs.Linux{
			CgroupsPath:   in.cgroup,
			MaskedPaths:   slices.Clone(maskedPaths),
			ReadonlyPaths: slices.Clone(readonlyPaths),
			Resources:     in.resources(),
		},
	}
	if in.pod.Net == netHost {
		// A sysfs mount needs a network namespace of one's own.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}})
	} else {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}})
	}
	mounts, err := in.volumeMounts()
	if err != nil {
		return nil, err
	}
	s.Mounts = append(s.Mounts, mounts...)

	// Each app has its own mount namespace and joins the pod's others.
	ns := []specs.LinuxNamespace{
		{Type: specs.MountNamespace},
		{Type: specs.PIDNamespace, Path: in.ns.pid},
		{Type: specs.IPCNamespace, Path: in.ns.ipc},
		{Type: specs.UTSNamespace, Path: in.ns.uts},
	}
	if in.pod.Net != netHost {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.ns.net})
	}
	s.Linux.Namespaces = ns
	if !a.NoSeccomp {
		if s.Linux.Seccomp, err = appSeccomp(a.Seccomp, caps); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// resources are the app's cgroup limits.
func (in appSpec) resources() *specs.LinuxResources {
	a := in.app
	r := &specs.LinuxResources{}
	if a.Memory > 0 {
		m := a.Memory
		r.Memory = &specs.LinuxMemory{Limit: &m}
		// No swap beyond the limit, so that the limit is what kills.
		r.Memory.Swap = &m
	}
	if a.CPUMilli > 0 {
		quota := a.CPUMilli * cpuPeriod / 1000
		period := uint64(cpuPeriod)
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if a.Pids > 0 {
		p := a.Pids
		r.Pids = &specs.LinuxPids{Limit: &p}
	}
	return r
}

// volumeMounts binds the pod's volumes at the app's mount targets.
func (in appSpec) volumeMounts() ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range in.app.Mounts {
		i := slices.IndexFunc(in.pod.Volumes, func(v Volume) bool { return v.Name == m.Volume })
		if i < 0 {
			return nil, fmt.Errorf("app %s: mount of undefined volume %q", in.app.Name, m.Volume)
		}
		v := in.pod.Volumes[i]
		src := v.Source
		if v.Kind == "empty" {
			src = emptyVolumePath(in.podDir, v.Name)
		}
		opts := []string{"bind"}
		if v.Recursive {
			opts = []string{"rbind"}
		}
		if v.ReadOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		out = append(out, specs.Mount{Destination: m.Target, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

// emptyVolumePath is where a kind=empty volume lives in the pod directory.
func emptyVolumePath(podDir, name string) string {
	return filepath.Join(podDir, "volumes", name)
}

// syscallSets are the sets --seccomp may name; both stand for the default
// profile's unconditional allowlist.
var syscallSets = []string{"@rkt/default-whitelist", "@docker/default-whitelist"}

// appSeccomp is the app's seccomp profile: the default one, or the
// default changed by --seccomp.
func appSeccomp(o *SeccompOverride, caps []string) (*specs.LinuxSeccomp, error) {
	def := seccomp.Default(caps)
	if o == nil {
		return def, nil
	}
	deny := specs.LinuxSyscall{Action: specs.ActKillProcess}
	if o.Errno != "" {
		n := uint(errnoNumbers[o.Errno])
		deny = specs.LinuxSyscall{Action: specs.ActErrno, ErrnoRet: &n}
	}
	var names []string
	for _, n := range o.Syscalls {
		if n[0] != '@' {
			names = append(names, n)
			continue
		}
		if !slices.Contains(syscallSets, n) || o.Mode != "retain" {
			return nil, fmt.Errorf("--seccomp: unknown syscall set %q (mode=retain knows %v)", n, syscallSets)
		}
		for _, r := range def.Syscalls {
			if r.Action == specs.ActAllow && len(r.Args) == 0 {
				names = append(names, r.Names...)
			}
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	switch o.Mode {
	case "retain":
		// Only the listed calls; everything else is denied.
		out := &specs.LinuxSeccomp{DefaultAction: deny.Action, DefaultErrnoRet: deny.ErrnoRet, Architectures: def.Architectures}
		out.Syscalls = []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}}
		return out, nil
	default:
		// The default profile without the listed calls, which are denied.
		out := *def
		out.Syscalls = nil
		for _, r := range def.Syscalls {
			r.Names = slices.DeleteFunc(slices.Clone(r.Names), func(n string) bool { return slices.Contains(names, n) })
			if len(r.Names) > 0 {
				out.Syscalls = append(out.Syscalls, r)
			}
		}
		deny.Names = names
		out.Syscalls = append(out.Syscalls, deny)
		return &out, nil
	}
}
