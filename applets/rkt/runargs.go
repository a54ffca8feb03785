package rkt

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// runRequest is what `rkt run` or `rkt prepare` was asked, before any image
// is looked at.
type runRequest struct {
	Volumes      []Volume
	Mounts       []Mount // before the first image: for every app
	Net          string
	Hostname     string
	DNS          []string
	SetEnv       []EnvVar
	InheritEnv   bool
	Interactive  bool
	UUIDFileSave string
	Ports        []PortMapping
	Apps         []appRequest
}

// appRequest is one image on the command line with its per-app options.
type appRequest struct {
	Image             string
	Name              string
	Exec              string
	Args              []string
	HasArgs           bool // "--" was given: Args replace the image's cmd, even when empty
	User, Group       string
	SupplementaryGIDs []uint32
	Memory            int64
	CPUMilli          int64
	Pids              int64
	CapsRetain        []string
	CapsRemove        []string
	Seccomp           *SeccompOverride
	ReadOnlyRootfs    bool
	WorkingDir        string
	Environment       []EnvVar
	Mounts            []Mount
}

// podFlags are run's and prepare's options for the whole pod.
var podFlags = flagSet{
	{name: "volume", kind: valueFlag, usage: "volumes to make available in the pod: NAME,kind=host,source=PATH,readOnly=BOOL"},
	{name: "mount", kind: valueFlag, usage: "mount a volume in every app: volume=NAME,target=PATH"},
	{name: "net", kind: optionalFlag, implied: netDefault, usage: "pod networking: default, host or none"},
	{name: "hostname", kind: valueFlag, usage: "pod's host name (default rkt-UUID)"},
	{name: "dns", kind: valueFlag, usage: "name server for /etc/resolv.conf (repeatable; host: the host's file; none: the image's)"},
	{name: "set-env", kind: valueFlag, usage: "an environment variable for all apps: NAME=VALUE"},
	{name: "inherit-env", kind: boolFlag, usage: "inherit rkt's environment"},
	{name: "interactive", kind: boolFlag, usage: "run the only app on a terminal"},
	{name: "uuid-file-save", kind: valueFlag, usage: "write the pod UUID to this file"},
	{name: "port", kind: valueFlag, usage: "forward a host port: PORT-PROTO:HOSTPORT, e.g. 80-tcp:8080"},
	{name: "help", kind: boolFlag},
}

// appFlags follow an image and apply to it.
var appFlags = flagSet{
	{name: "exec", kind: valueFlag, usage: "the executable to run instead of the image's entrypoint"},
	{name: "name", kind: valueFlag, usage: "the app's name (default: from the image's name)"},
	{name: "user", kind: valueFlag, usage: "user (uid or name) to run the app as"},
	{name: "group", kind: valueFlag, usage: "group (gid or name) to run the app as"},
	{name: "supplementary-gids", kind: valueFlag, usage: "supplementary group IDs, comma-separated"},
	{name: "memory", kind: valueFlag, usage: "memory limit, e.g. 512M"},
	{name: "cpu", kind: valueFlag, usage: "CPU limit, e.g. 500m"},
	{name: "pids-limit", kind: valueFlag, usage: "most tasks the app may have (a corebox addition)"},
	{name: "caps-retain", kind: valueFlag, usage: "keep only these capabilities"},
	{name: "caps-remove", kind: valueFlag, usage: "remove these capabilities from the default set"},
	{name: "seccomp", kind: valueFlag, usage: "seccomp override: mode=retain|remove[,errno=E],SYSCALL,…"},
	{name: "readonly-rootfs", kind: boolFlag, usage: "mount the app's root file system read-only"},
	{name: "working-dir", kind: valueFlag, usage: "the app's working directory"},
	{name: "environment", kind: valueFlag, usage: "an environment variable for this app: NAME=VALUE"},
	{name: "mount", kind: valueFlag, usage: "mount a volume in this app: volume=NAME,target=PATH"},
}

// parseRunArgs parses `[POD FLAGS] IMAGE [APP FLAGS] [-- ARGS… [---]] [IMAGE…]`.
// global says which flags are the command's global ones (accepted before
// the first image and returned in globals).
func parseRunArgs(args []string, global flagSet) (*runRequest, flagValues, error) {
	req := &runRequest{Net: netDefault}
	all := slices.Concat(podFlags, global)
	vals, rest, err := all.parse(args, false)
	if err != nil {
		if strings.HasPrefix(err.Error(), "unknown flag: --") {
			name := strings.TrimPrefix(err.Error(), "unknown flag: --")
			if _, ok := appFlags.lookup(name); ok {
				return nil, nil, fmt.Errorf("--%s must follow an image", name)
			}
		}
		return nil, nil, err
	}
	if err := req.applyPodFlags(vals); err != nil {
		return nil, nil, err
	}
	globals := flagValues{}
	for _, d := range global {
		if v, ok := vals[d.name]; ok {
			globals[d.name] = v
		}
	}
	for len(rest) > 0 {
		app := appRequest{Image: rest[0]}
		if strings.HasPrefix(app.Image, "-") {
			return nil, nil, fmt.Errorf("unexpected %q where an image was expected", app.Image)
		}
		rest = rest[1:]
		for len(rest) > 0 && strings.HasPrefix(rest[0], "--") && rest[0] != "--" && rest[0] != "---" {
			name, value, used, err := appFlags.parseFlag(rest)
			if err != nil {
				n := strings.TrimPrefix(strings.SplitN(rest[0], "=", 2)[0], "--")
				if _, ok := all.lookup(n); ok {
					return nil, nil, fmt.Errorf("--%s is an option of the pod: give it before the first image", n)
				}
				return nil, nil, fmt.Errorf("image %s: %w", app.Image, err)
			}
			if err := app.apply(name, value); err != nil {
				return nil, nil, fmt.Errorf("image %s: %w", app.Image, err)
			}
			rest = rest[used:]
		}
		if len(rest) > 0 && rest[0] == "--" {
			app.HasArgs = true
			rest = rest[1:]
			for len(rest) > 0 && rest[0] != "---" {
				app.Args = append(app.Args, rest[0])
				rest = rest[1:]
			}
		}
		if len(rest) > 0 && rest[0] == "---" {
			rest = rest[1:]
			if len(rest) == 0 {
				return nil, nil, fmt.Errorf("--- is not followed by an image")
			}
		}
		req.Apps = append(req.Apps, app)
	}
	if len(req.Apps) == 0 && !vals.bool("help") {
		return nil, nil, fmt.Errorf("no image given")
	}
	if req.Interactive && len(req.Apps) > 1 {
		return nil, nil, fmt.Errorf("--interactive takes exactly one image, not %d", len(req.Apps))
	}
	return req, globals, nil
}

func (req *runRequest) applyPodFlags(vals flagValues) error {
	var err error
	for _, s := range vals["volume"] {
		v, err := parseVolume(s)
		if err != nil {
			return err
		}
		for _, old := range req.Volumes {
			if old.Name == v.Name {
				return fmt.Errorf("--volume %q: volume %s defined twice", s, v.Name)
			}
		}
		req.Volumes = append(req.Volumes, v)
	}
	for _, s := range vals["mount"] {
		m, err := parseMount(s)
		if err != nil {
			return err
		}
		req.Mounts = append(req.Mounts, m)
	}
	if req.Net, err = parseNet(vals.last("net", netDefault)); err != nil {
		return err
	}
	if h := vals.last("hostname", ""); h != "" {
		if err := checkHostname(h); err != nil {
			return err
		}
		req.Hostname = h
	}
	for _, s := range vals["dns"] {
		d, err := parseDNS(s)
		if err != nil {
			return err
		}
		req.DNS = append(req.DNS, d)
	}
	if len(req.DNS) > 1 && (slices.Contains(req.DNS, "host") || slices.Contains(req.DNS, "none")) {
		return fmt.Errorf("--dns=host and --dns=none stand alone")
	}
	for _, s := range vals["set-env"] {
		e, err := parseEnv("--set-env", s)
		if err != nil {
			return err
		}
		req.SetEnv = append(req.SetEnv, e)
	}
	for _, s := range vals["port"] {
		p, err := parsePort(s)
		if err != nil {
			return err
		}
		req.Ports = append(req.Ports, p)
	}
	if err := checkPorts(req.Net, req.Ports); err != nil {
		return err
	}
	req.InheritEnv = vals.bool("inherit-env")
	req.Interactive = vals.bool("interactive")
	req.UUIDFileSave = vals.last("uuid-file-save", "")
	return nil
}

// apply sets one per-app flag.
func (app *appRequest) apply(name, value string) error {
	var err error
	switch name {
	case "exec":
		if value == "" {
			return fmt.Errorf("--exec: empty")
		}
		app.Exec = value
	case "name":
		if err := checkName("app", value); err != nil {
			return fmt.Errorf("--name: %w", err)
		}
		app.Name = value
	case "user":
		err = checkUserGroup("--user", value)
		app.User = value
	case "group":
		err = checkUserGroup("--group", value)
		app.Group = value
	case "supplementary-gids":
		app.SupplementaryGIDs = nil
		for g := range strings.SplitSeq(value, ",") {
			n, perr := strconv.ParseUint(g, 10, 32)
			if perr != nil {
				return fmt.Errorf("--supplementary-gids %q: %q is not a group ID", value, g)
			}
			app.SupplementaryGIDs = append(app.SupplementaryGIDs, uint32(n))
		}
	case "memory":
		app.Memory, err = parseMemory(value)
	case "cpu":
		app.CPUMilli, err = parseCPU(value)
	case "pids-limit":
		app.Pids, err = strconv.ParseInt(value, 10, 64)
		if err != nil || app.Pids < 1 {
			err = fmt.Errorf("--pids-limit %q: want a positive number", value)
		}
	case "caps-retain":
		app.CapsRetain, err = parseCapabilities("--caps-retain", value)
	case "caps-remove":
		app.CapsRemove, err = parseCapabilities("--caps-remove", value)
	case "seccomp":
		var s SeccompOverride
		s, err = parseSeccomp(value)
		app.Seccomp = &s
	case "readonly-rootfs":
		app.ReadOnlyRootfs = value == "true"
	case "working-dir":
		if !strings.HasPrefix(value, "/") {
			return fmt.Errorf("--working-dir %q: not an absolute path", value)
		}
		app.WorkingDir = value
	case "environment":
		var e EnvVar
		e, err = parseEnv("--environment", value)
		app.Environment = append(app.Environment, e)
	case "mount":
		var m Mount
		m, err = parseMount(value)
		app.Mounts = append(app.Mounts, m)
	}
	if err == nil && app.CapsRetain != nil && app.CapsRemove != nil {
		err = fmt.Errorf("--caps-retain and --caps-remove exclude each other")
	}
	return err
}
