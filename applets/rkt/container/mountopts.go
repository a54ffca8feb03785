package container

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOptions is an OCI mount's options list split into what mount(2)
// takes.
type mountOptions struct {
	flags       uintptr // MS_* flags for the mount itself
	clear       uintptr // flags an option explicitly turned off (rw, suid, …)
	propagation uintptr // MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (with MS_REC)
	data        []string
	bind        bool
	recursive   bool // rbind
}

var mountFlagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC},
	"mand":    {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
	"defaults": {false, 0},
}

var propagationOptions = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits opts; options the engine cannot honour (id
// mapping, recursive attributes, runc's tmpcopyup) are errors.
func parseMountOptions(opts []string) (mountOptions, error) {
	var m mountOptions
	for _, o := range opts {
		if f, ok := mountFlagOptions[o]; ok {
			if f.clear {
				m.flags &^= f.flag
				m.clear |= f.flag
			} else {
				m.flags |= f.flag
				m.clear &^= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			m.propagation = p
			continue
		}
		switch o {
		case "bind":
			m.bind = true
			continue
		case "rbind":
			m.bind, m.recursive = true, true
			continue
		case "remount":
			return m, fmt.Errorf("option %q: not meaningful in a container's mount list", o)
		case "idmap", "ridmap":
			return m, fmt.Errorf("option %q: id-mapped mounts are not supported", o)
		case "tmpcopyup":
			return m, fmt.Errorf("option %q: not supported", o)
		}
		if strings.HasPrefix(o, "r") && mountFlagOptions[o[1:]].flag != 0 && !strings.Contains(o, "=") {
			// rro, rnosuid, … (mount_setattr recursive attributes).
			return m, fmt.Errorf("option %q: recursive mount attributes are not supported", o)
		}
		if strings.HasPrefix(o, "x-") {
			continue // userspace-only hints, as mount(8) ignores them
		}
		m.data = append(m.data, o)
	}
	return m, nil
}
