package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// LoadSpec reads BUNDLE/config.json strictly: unknown fields are an error
// that names them, as is a missing required field.
func LoadSpec(bundle string) (*specs.Spec, error) {
	path := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration: %w", err)
	}
	spec, err := ParseSpec(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return spec, nil
}

// ParseSpec decodes a config.json, refusing unknown fields.
func ParseSpec(b []byte) (*specs.Spec, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var spec specs.Spec
	if err := dec.Decode(&spec); err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if dec.More() {
		return nil, errors.New("decoding: trailing data after the JSON object")
	}
	return &spec, nil
}

var validID = regexp.MustCompile(`^[\w+\-.]+$`)

// checkID refuses ids that are not usable as one path element.
func checkID(id string) error {
	if id == "" {
		return errors.New("container id is empty")
	}
	if !validID.MatchString(id) || id == "." || id == ".." || len(id) > 1024 {
		return fmt.Errorf("invalid container id %q: use letters, digits and + - . _", id)
	}
	return nil
}

var namespaceFlags = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// namespaces is a spec's namespaces: those to create (clone flags) and
// those to join (flag → path).
type namespaces struct {
	create int
	join   map[int]string
}

func (n namespaces) has(flag int) bool {
	_, joined := n.join[flag]
	return n.create&flag != 0 || joined
}

// validate checks what the engine needs of spec and returns the rootfs
// path (absolute, symlinks resolved) and the namespaces. Every error names
// the field.
func validate(spec *specs.Spec, bundle string) (string, namespaces, error) {
	var ns namespaces
	if spec == nil {
		return "", ns, errors.New("no configuration")
	}
	if spec.Version == "" {
		return "", ns, errors.New("ociVersion: missing")
	}
	if !strings.HasPrefix(spec.Version, "1.") {
		return "", ns, fmt.Errorf("ociVersion %q: only runtime-spec 1.x is supported", spec.Version)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return "", ns, errors.New("root.path: missing")
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	rootfs, err := filepath.EvalSymlinks(rootfs)
	if err != nil {
		return "", ns, fmt.Errorf("root.path %q: %w", spec.Root.Path, err)
	}
	if fi, err := os.Stat(rootfs); err != nil {
		return "", ns, fmt.Errorf("root.path %q: %w", spec.Root.Path, err)
	} else if !fi.IsDir() {
		return "", ns, fmt.Errorf("root.path %q: not a directory", spec.Root.Path)
	}
	if rootfs == "/" {
		return "", ns, fmt.Errorf("root.path %q: the host's root cannot be a container's root", spec.Root.Path)
	}
	if spec.Process == nil {
		return "", ns, errors.New("process: missing (a container needs a process to start)")
	}
	if err := validateProcess(spec.Process, "process"); err != nil {
		return "", ns, err
	}
	if spec.Linux == nil {
		return "", ns, errors.New("linux: missing")
	}
	l := spec.Linux
	ns.join = map[int]string{}
	for i, n := range l.Namespaces {
		flag, ok := namespaceFlags[n.Type]
		if !ok {
			return "", ns, fmt.Errorf("linux.namespaces[%d].type %q: unknown namespace type", i, n.Type)
		}
		if ns.has(flag) {
			return "", ns, fmt.Errorf("linux.namespaces[%d]: namespace %q listed twice", i, n.Type)
		}
		if n.Path == "" {
			ns.create |= flag
			continue
		}
		if flag == unix.CLONE_NEWUSER || flag == unix.CLONE_NEWTIME {
			return "", ns, fmt.Errorf("linux.namespaces[%d]: joining a %s namespace by path is not supported (the kernel requires a single-threaded process)", i, n.Type)
		}
		if err := checkNamespacePath(n.Path, flag); err != nil {
			return "", ns, fmt.Errorf("linux.namespaces[%d].path: %w", i, err)
		}
		ns.join[flag] = n.Path
	}
	userns := ns.create&unix.CLONE_NEWUSER != 0
	if userns && (len(l.UIDMappings) == 0 || len(l.GIDMappings) == 0) {
		return "", ns, errors.New("linux.uidMappings/gidMappings: a new user namespace needs both")
	}
	if !userns && (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) {
		return "", ns, errors.New("linux.uidMappings: mappings given without a user namespace to create")
	}
	if (spec.Hostname != "" || spec.Domainname != "") && !ns.has(unix.CLONE_NEWUTS) {
		return "", ns, errors.New("hostname: setting it needs a uts namespace")
	}
	for k := range l.Sysctl {
		if err := checkSysctl(k, ns); err != nil {
			return "", ns, fmt.Errorf("linux.sysctl %q: %w", k, err)
		}
	}
	for i, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return "", ns, fmt.Errorf("mounts[%d].destination %q: not an absolute path", i, m.Destination)
		}
		if _, err := parseMountOptions(m.Options); err != nil {
			return "", ns, fmt.Errorf("mounts[%d].options: %w", i, err)
		}
		if len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			return "", ns, fmt.Errorf("mounts[%d]: id-mapped mounts are not supported", i)
		}
	}
	for i, d := range l.Devices {
		if !filepath.IsAbs(d.Path) || filepath.Clean(d.Path) == "/dev" || !strings.HasPrefix(filepath.Clean(d.Path), "/dev/") {
			return "", ns, fmt.Errorf("linux.devices[%d].path %q: must be an absolute path under /dev", i, d.Path)
		}
		switch d.Type {
		case "c", "u", "b", "p":
		default:
			return "", ns, fmt.Errorf("linux.devices[%d].type %q: want c, u, b or p", i, d.Type)
		}
	}
	for _, p := range slices.Concat(l.MaskedPaths, l.ReadonlyPaths) {
		if !filepath.IsAbs(p) {
			return "", ns, fmt.Errorf("linux.maskedPaths/readonlyPaths %q: not an absolute path", p)
		}
	}
	switch l.RootfsPropagation {
	case "", "shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable":
	default:
		return "", ns, fmt.Errorf("linux.rootfsPropagation %q: unknown propagation", l.RootfsPropagation)
	}
	if l.IntelRdt != nil {
		return "", ns, errors.New("linux.intelRdt: not supported")
	}
	if l.MemoryPolicy != nil {
		return "", ns, errors.New("linux.memoryPolicy: not supported")
	}
	if len(l.NetDevices) > 0 {
		return "", ns, errors.New("linux.netDevices: not supported")
	}
	if len(l.TimeOffsets) > 0 && ns.create&unix.CLONE_NEWTIME == 0 {
		return "", ns, errors.New("linux.timeOffsets: needs a time namespace to create")
	}
	if spec.Hooks != nil {
		for _, h := range slices.Concat(spec.Hooks.Prestart, spec.Hooks.CreateRuntime, spec.Hooks.CreateContainer, spec.Hooks.StartContainer, spec.Hooks.Poststart, spec.Hooks.Poststop) {
			if !filepath.IsAbs(h.Path) {
				return "", ns, fmt.Errorf("hooks: path %q is not absolute", h.Path)
			}
		}
	}
	return rootfs, ns, nil
}

// validateProcess checks a process section (the container's or one to exec).
func validateProcess(p *specs.Process, field string) error {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return fmt.Errorf("%s.args: missing", field)
	}
	if p.Cwd == "" {
		return fmt.Errorf("%s.cwd: missing", field)
	}
	if !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("%s.cwd %q: not an absolute path", field, p.Cwd)
	}
	for i, e := range p.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("%s.env[%d] %q: not KEY=VALUE", field, i, e)
		}
	}
	if p.Capabilities != nil {
		c := p.Capabilities
		for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
			for _, name := range set {
				if _, ok := capabilityByName[name]; !ok {
					return fmt.Errorf("%s.capabilities: unknown capability %q", field, name)
				}
			}
		}
	}
	for i, r := range p.Rlimits {
		if _, ok := rlimitByName[r.Type]; !ok {
			return fmt.Errorf("%s.rlimits[%d].type %q: unknown resource", field, i, r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("%s.rlimits[%d] %s: soft limit %d above hard limit %d", field, i, r.Type, r.Soft, r.Hard)
		}
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return fmt.Errorf("%s.oomScoreAdj %d: outside -1000..1000", field, *p.OOMScoreAdj)
	}
	if p.ApparmorProfile != "" {
		return fmt.Errorf("%s.apparmorProfile: AppArmor is not supported", field)
	}
	if p.SelinuxLabel != "" {
		return fmt.Errorf("%s.selinuxLabel: SELinux is not supported", field)
	}
	if p.IOPriority != nil {
		return fmt.Errorf("%s.ioPriority: not supported", field)
	}
	if p.Scheduler != nil {
		return fmt.Errorf("%s.scheduler: not supported", field)
	}
	if p.ExecCPUAffinity != nil {
		return fmt.Errorf("%s.execCPUAffinity: not supported", field)
	}
	return nil
}

// checkNamespacePath makes sure path is a namespace file of the right type.
func checkNamespacePath(path string, flag int) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace file: %w", path, err)
	}
	if t != flag {
		return fmt.Errorf("%s is a namespace of another type", path)
	}
	return nil
}

// checkSysctl refuses sysctls that are not namespaced, or whose namespace
// the container does not have (writing them would change the host).
func checkSysctl(key string, ns namespaces) error {
	switch {
	case strings.HasPrefix(key, "net."):
		if !ns.has(unix.CLONE_NEWNET) {
			return errors.New("a net.* sysctl needs a network namespace")
		}
	case strings.HasPrefix(key, "fs.mqueue.") || slices.Contains([]string{"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}, key):
		if !ns.has(unix.CLONE_NEWIPC) {
			return errors.New("an IPC sysctl needs an ipc namespace")
		}
	case key == "kernel.hostname" || key == "kernel.domainname":
		if !ns.has(unix.CLONE_NEWUTS) {
			return errors.New("needs a uts namespace")
		}
	default:
		return errors.New("not a namespaced sysctl")
	}
	if strings.Contains(key, "/") || strings.Contains(key, "..") {
		return errors.New("invalid key")
	}
	return nil
}
