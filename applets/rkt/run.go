package rkt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/corebox/corebox/applets/rkt/cgroups"
	"github.com/corebox/corebox/applets/rkt/container"
	"github.com/corebox/corebox/applets/rkt/image"
	"github.com/corebox/corebox/applets/rkt/network"
)

// holderID and appContainerID name a pod's containers in its state root.
func holderID(uuid string) string            { return uuid + "-holder" }
func appContainerID(uuid, app string) string { return uuid + "-" + app }

// appCgroup is where an app's limits live (absolute from each hierarchy's
// root, so that a pod started from inside a service is not nested in it).
func appCgroup(uuid, app string) string { return podCgroup(uuid) + "/" + app }

// podCgroup is the parent of a pod's app cgroups.
func podCgroup(uuid string) string { return "/rkt/" + uuid }

func stateRoot(podDir string) string { return filepath.Join(podDir, "containers") }

// podRun is one running pod, owned by runPod.
type podRun struct {
	c      *cli
	h      *podHandle
	m      *PodManifest
	store  *image.Store
	rt     *podRuntime
	holder *container.Container
	apps   []*container.Container // by manifest order
	mu     sync.Mutex             // guards rt while apps exit
	// stdio are the apps' standard streams (files: the engine hands them
	// to the process), console the --interactive terminal.
	stdio   [3]*os.File
	console *podConsole
}

// runPod runs a locked, prepared pod until all its apps have exited and
// returns rkt's exit status. Everything it set up is released before it
// returns; the pod stays in run/ as "exited" with its records.
func (c *cli) runPod(h *podHandle, m *PodManifest) int {
	if err := h.move(phaseRun); err != nil {
		return c.fail(err)
	}
	store, err := c.openImages()
	if err != nil {
		return c.abort(h, err)
	}
	p := &podRun{c: c, h: h, m: m, store: store, rt: &podRuntime{Started: time.Now(), RktPid: os.Getpid()}}
	stdio, closeStdio, err := c.stdioFiles()
	if err != nil {
		return c.abort(h, err)
	}
	defer closeStdio()
	p.stdio = stdio
	if m.Interactive {
		if p.console, err = newPodConsole(h.Path(), c.env.Stdin, c.env.Stdout); err != nil {
			return c.abort(h, err)
		}
		defer p.console.Close()
	}
	if err := p.start(); err != nil {
		p.killAll()
		return c.abort(h, err)
	}
	code := p.wait()
	if err := c.releasePod(h); err != nil {
		c.log.Warn("releasing the pod", "pod", h.UUID, "err", err)
	}
	return code
}

// abort deletes a pod that failed to start: nothing of it stays.
func (c *cli) abort(h *podHandle, err error) int {
	if derr := c.destroy(h); derr != nil {
		c.log.Warn("cleaning up the failed pod", "pod", h.UUID, "err", derr)
	}
	return c.fail(err)
}

func (p *podRun) save() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return writeRuntime(p.h.Path(), p.rt)
}

// start sets up the pod and starts its apps.
func (p *podRun) start() error {
	podDir, uuid := p.h.Path(), p.h.UUID
	if err := p.save(); err != nil {
		return err
	}
	if err := os.MkdirAll(stateRoot(podDir), 0o700); err != nil {
		return fmt.Errorf("creating the pod's container state: %w", err)
	}
	for _, v := range p.m.Volumes {
		if v.Kind == "empty" {
			dir := emptyVolumePath(podDir, v.Name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			if err := os.Chmod(dir, os.FileMode(v.Mode)); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
			if err := os.Chown(dir, v.UID, v.GID); err != nil {
				return fmt.Errorf("volume %s: %w", v.Name, err)
			}
		}
	}
	// Root file systems and users first: nothing runs until all are ready.
	type prepared struct {
		rootfs   string
		uid, gid uint32
	}
	ready := make([]prepared, len(p.m.Apps))
	for i := range p.m.Apps {
		a := &p.m.Apps[i]
		appDir := filepath.Join(podDir, "apps", a.Name)
		if err := os.MkdirAll(appDir, 0o700); err != nil {
			return fmt.Errorf("app %s: %w", a.Name, err)
		}
		rootfs, err := p.store.Mount(a.Image.ID, appDir)
		if err != nil {
			return fmt.Errorf("app %s: mounting image %s: %w", a.Name, a.Image.ID, err)
		}
		uid, gid, err := resolveUser(rootfs, a.User, a.Group)
		if err != nil {
			return fmt.Errorf("app %s: %w", a.Name, err)
		}
		ready[i] = prepared{rootfs, uid, gid}
		p.rt.Apps = append(p.rt.Apps, appRuntime{Name: a.Name, ContainerID: appContainerID(uuid, a.Name)})
	}
	// The holder owns the pod's namespaces; every app joins them.
	h, err := p.createHolder()
	if err != nil {
		return err
	}
	p.holder = h
	p.rt.Holder = holderID(uuid)
	ownerPid := h.Pid()
	ns := podNamespaces{}
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		path := fmt.Sprintf("/proc/%d/ns/%s", ownerPid, nsFile(t))
		switch t {
		case specs.PIDNamespace:
			ns.pid = path
		case specs.NetworkNamespace:
			ns.net = path
		case specs.IPCNamespace:
			ns.ipc = path
		case specs.UTSNamespace:
			ns.uts = path
		}
	}
	for i := range p.m.Apps {
		a := &p.m.Apps[i]
		in := appSpec{pod: p.m, app: a, rootfs: ready[i].rootfs, podDir: podDir, uid: ready[i].uid, gid: ready[i].gid, cgroup: appCgroup(uuid, a.Name), ns: ns}
		s, err := in.spec()
		if err != nil {
			return err
		}
		ctr, err := p.create(appContainerID(uuid, a.Name), filepath.Join(podDir, "apps", a.Name), s)
		if err != nil {
			return fmt.Errorf("app %s: %w", a.Name, err)
		}
		p.apps = append(p.apps, ctr)
		p.rt.Apps[i].Pid = ctr.Pid()
		if s.Process.Terminal {
			if err := p.console.accept(); err != nil {
				return err
			}
		}
		if err := p.save(); err != nil {
			return err
		}
	}
	if err := p.attachNetwork(ownerPid); err != nil {
		return err
	}
	if err := p.writeEtc(); err != nil {
		return err
	}
	if err := p.holder.Start(); err != nil {
		return fmt.Errorf("starting the namespace holder: %w", err)
	}
	for i, ctr := range p.apps {
		if err := ctr.Start(); err != nil {
			return fmt.Errorf("starting app %s: %w", p.m.Apps[i].Name, err)
		}
		p.rt.Apps[i].Started = time.Now()
	}
	p.rt.Pid = ownerPid // the pod is ready
	return p.save()
}

func nsFile(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.NetworkNamespace:
		return "net"
	case specs.MountNamespace:
		return "mnt"
	}
	return string(t)
}

// create makes one container (not yet started) with the pod's stdio.
func (p *podRun) create(id, bundle string, s *specs.Spec) (*container.Container, error) {
	o := container.Options{
		ID:        id,
		Bundle:    bundle,
		Spec:      s,
		StateRoot: stateRoot(p.h.Path()),
		Stdin:     p.stdio[0],
		Stdout:    p.stdio[1],
		Stderr:    p.stdio[2],
		Logger:    p.c.log,
	}
	if s.Process.Terminal {
		o.ConsoleSocket = p.console.sock
	}
	return container.Create(p.c.ctx, o)
}

// createHolder creates the pod's namespace holder: a read-only rootfs
// holding only the pause program, PID 1 of the pod.
func (p *podRun) createHolder() (*container.Container, error) {
	dir := filepath.Join(p.h.Path(), "holder")
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return nil, fmt.Errorf("creating the namespace holder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "pause"), pauseELF(), 0o555); err != nil {
		return nil, fmt.Errorf("creating the namespace holder: %w", err)
	}
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}}
	if p.m.Net != netHost {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	s := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: p.m.Hostname,
		Process: &specs.Process{
			Args: []string{"/pause"}, Cwd: "/", NoNewPrivileges: true,
			Capabilities: &specs.LinuxCapabilities{},
		},
		Linux: &specs.Linux{Namespaces: ns, CgroupsPath: appCgroup(p.h.UUID, "holder"), Resources: &specs.LinuxResources{}},
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	return container.Create(p.c.ctx, container.Options{ID: holderID(p.h.UUID), Bundle: dir, Spec: s, StateRoot: stateRoot(p.h.Path()), Stdin: devnull, Stdout: devnull, Stderr: devnull, Logger: p.c.log})
}

// attachNetwork gives the pod its network: the default one, or a lone lo.
func (p *podRun) attachNetwork(ownerPid int) error {
	netns := fmt.Sprintf("/proc/%d/ns/net", ownerPid)
	switch p.m.Net {
	case netNone:
		if err := network.LoopbackUp(netns); err != nil {
			return fmt.Errorf("--net=none: %w", err)
		}
	case netDefault:
		var fwds []network.Forward
		for _, pm := range p.m.Ports {
			fwds = append(fwds, network.Forward{Protocol: pm.Protocol, HostPort: pm.HostPort, PodPort: pm.Port})
		}
		att, err := network.Setup(p.c.ctx, p.c.networkConfig(), p.h.UUID, netns, fwds...)
		if err != nil {
			return fmt.Errorf("--net=default: %w", err)
		}
		p.rt.Network = &podNetwork{Name: "default", IfName: "eth0", IP: att.IP.String(), Gateway: att.Gateway.String(), Prefix: att.Prefix.String(), HostVeth: att.HostVeth, Ports: p.m.Ports}
		return p.save()
	}
	return nil
}

// writeEtc writes /etc/hosts (and /etc/resolv.conf with --dns) into every
// app's rootfs, resolving /etc inside it.
func (p *podRun) writeEtc() error {
	var att *network.Attachment
	if n := p.rt.Network; n != nil {
		att = &network.Attachment{}
		if err := att.IP.UnmarshalText([]byte(n.IP)); err != nil {
			return err
		}
	}
	for _, a := range p.m.Apps {
		rootfs := filepath.Join(p.h.Path(), "apps", a.Name, "rootfs")
		etc, err := securejoin.SecureJoin(rootfs, "/etc")
		if err != nil {
			return fmt.Errorf("app %s: /etc: %w", a.Name, err)
		}
		if err := os.Mkdir(etc, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("app %s: %w", a.Name, err)
		}
		if err := network.WriteHosts(etc, p.m.Hostname, att); err != nil {
			return fmt.Errorf("app %s: %w", a.Name, err)
		}
		switch {
		case len(p.m.DNS) == 0 || p.m.DNS[0] == "none":
		case p.m.DNS[0] == "host":
			err = network.WriteResolvConf(etc, nil, true)
		default:
			err = network.WriteResolvConf(etc, p.m.DNS, false)
		}
		if err != nil {
			return fmt.Errorf("app %s: %w", a.Name, err)
		}
	}
	return nil
}

// wait forwards signals to the apps until all have exited, records their
// outcomes and returns rkt's exit status.
func (p *podRun) wait() int {
	type exit struct {
		i    int
		code int
		err  error
	}
	exits := make(chan exit, len(p.apps))
	for i, ctr := range p.apps {
		go func() {
			code, err := ctr.Wait(context.Background())
			exits <- exit{i, code, err}
		}()
	}
	for left := len(p.apps); left > 0; {
		select {
		case sig := <-p.c.env.Signals:
			if sig == syscall.SIGWINCH {
				if p.console != nil {
					p.console.resize()
				}
				continue
			}
			for i, ctr := range p.apps {
				if !p.rt.Apps[i].Exited {
					ctr.Signal(sig.(syscall.Signal), false)
				}
			}
		case e := <-exits:
			left--
			a := &p.rt.Apps[e.i]
			a.Exited, a.Finished = true, time.Now()
			a.ExitCode = e.code
			if e.err != nil {
				p.c.log.Warn("waiting for app", "app", a.Name, "err", e.err)
				a.ExitCode = exitError
			}
			if cg, err := cgroups.Load(appCgroup(p.h.UUID, a.Name)); err == nil {
				if n, err := cg.OOMKills(); err == nil && n > 0 {
					a.OOMKilled = true
				}
				cg.Close()
			}
			p.save()
		}
	}
	p.killAll()
	if p.console != nil {
		p.console.drain()
	}
	p.rt.Finished, p.rt.Pid = time.Now(), 0
	p.save()
	code := 0
	for _, a := range p.rt.Apps {
		if a.ExitCode != 0 {
			code = a.ExitCode
			break
		}
	}
	return code
}

// deleteContainers kills and deletes the pod's containers, by the records.
func (c *cli) deleteContainers(h *podHandle, rt *podRuntime) error {
	var errs []error
	ids := []string{}
	for _, a := range rt.Apps {
		ids = append(ids, a.ContainerID)
	}
	if rt.Holder != "" {
		ids = append(ids, rt.Holder)
	}
	for _, id := range ids {
		ctr, err := container.Load(stateRoot(h.Path()), id, c.log)
		if errors.Is(err, container.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := ctr.Delete(true); err != nil {
			errs = append(errs, fmt.Errorf("deleting container %s: %w", id, err))
		}
	}
	store, err := c.openImages()
	if err == nil {
		for _, a := range rt.Apps {
			if err := store.Unmount(filepath.Join(h.Path(), "apps", a.Name)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// orphanRunning says whether a pod whose rkt is gone still has a live app.
func (c *cli) orphanRunning(h *podHandle, rt *podRuntime) bool {
	if rt == nil {
		return false
	}
	for _, a := range rt.Apps {
		if a.Exited {
			continue
		}
		if ctr, err := container.Load(stateRoot(h.Path()), a.ContainerID, c.log); err == nil {
			if st, err := ctr.State(); err == nil && st.Status != specs.StateStopped {
				return true
			}
		}
	}
	return false
}

func (c *cli) stop(vals flagValues, args []string) int {
	sig := syscall.SIGTERM
	if vals.bool("force") {
		sig = syscall.SIGKILL
	}
	return c.forEachPod(vals, args, func(s *podStore, prefix string) error {
		h, err := s.openPrefix(prefix)
		if err != nil {
			return err
		}
		defer h.Close()
		info := c.inspect(h)
		if info.State != stateRunning || info.Runtime == nil {
			return fmt.Errorf("pod %s: %w (%s)", h.UUID, errNotRunning, info.State)
		}
		for _, a := range info.Runtime.Apps {
			if ctr, err := container.Load(stateRoot(h.Path()), a.ContainerID, c.log); err == nil {
				ctr.Signal(sig, true)
			}
		}
		fmt.Fprintf(c.env.Stdout, "%q\n", h.UUID)
		return nil
	})
}

// defaultShell is what enter runs without a command: /bin/bash as rkt did,
// when the app's root has one, else /bin/sh.
func defaultShell(root string) string {
	if p, err := securejoin.SecureJoin(root, "/bin/bash"); err == nil {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return "/bin/bash"
		}
	}
	return "/bin/sh"
}

func (c *cli) enter(vals flagValues, args []string) int {
	if len(args) == 0 {
		return c.usageError(fmt.Errorf("no pod UUID given"))
	}
	s, err := c.pods()
	if err != nil {
		return c.fail(err)
	}
	h, err := s.openPrefix(args[0])
	if err != nil {
		return c.fail(err)
	}
	defer h.Close()
	info := c.inspect(h)
	if info.State != stateRunning || info.Manifest == nil || info.Runtime == nil {
		return c.fail(fmt.Errorf("pod %s: %w (%s)", h.UUID, errNotRunning, info.State))
	}
	name := vals.last("app", "")
	if name == "" {
		if len(info.Manifest.Apps) > 1 {
			var names []string
			for _, a := range info.Manifest.Apps {
				names = append(names, a.Name)
			}
			return c.fail(fmt.Errorf("pod contains multiple apps (%v): specify one with --app", names))
		}
		name = info.Manifest.Apps[0].Name
	}
	i := slices.IndexFunc(info.Manifest.Apps, func(a AppManifest) bool { return a.Name == name })
	if i < 0 {
		return c.fail(fmt.Errorf("pod %s has no app %q", h.UUID, name))
	}
	a := info.Manifest.Apps[i]
	ctr, err := container.Load(stateRoot(h.Path()), appContainerID(h.UUID, name), c.log)
	if err != nil {
		return c.fail(err)
	}
	cmd := args[1:]
	if len(cmd) == 0 {
		cmd = []string{defaultShell(ctr.Spec().Root.Path)}
	}
	stdio, closeStdio, err := c.stdioFiles()
	if err != nil {
		return c.fail(err)
	}
	defer closeStdio()
	var env []string
	for _, e := range a.Env {
		env = append(env, e.String())
	}
	proc := *ctr.Spec().Process
	proc.Args, proc.Env, proc.Terminal = cmd, env, false
	pr, err := ctr.Exec(c.ctx, container.ExecOptions{Process: &proc, Stdin: stdio[0], Stdout: stdio[1], Stderr: stdio[2]})
	if err != nil {
		return c.fail(err)
	}
	done := make(chan struct{})
	var code int
	var werr error
	go func() { code, werr = pr.Wait(context.Background()); close(done) }()
	for {
		select {
		case <-done:
			if werr != nil {
				return c.fail(werr)
			}
			return code
		case sig := <-c.env.Signals:
			if sig != syscall.SIGWINCH {
				pr.Signal(sig)
			}
		}
	}
}

// killAll kills every container of the pod that is still alive.
func (p *podRun) killAll() {
	for _, ctr := range p.apps {
		if st, err := ctr.State(); err == nil && st.Status != specs.StateStopped {
			ctr.Signal(syscall.SIGKILL, true)
		}
	}
	if p.holder != nil {
		p.holder.Signal(syscall.SIGKILL, true)
	}
}
