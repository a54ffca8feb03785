package rkt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/corebox/corebox/applets/rkt/cgroups"
	"github.com/corebox/corebox/applets/rkt/network"
)

// networkConfig is the default pod network, its leases in DIR/networks.
func (c *cli) networkConfig() network.Config {
	return network.Config{StateDir: filepath.Join(c.dir, "networks"), Logger: c.log}
}

// releasePod frees what a pod holds outside its directory: its apps'
// containers, its network lease and veth, its cgroups and its mounts.
// It is idempotent and works from the records alone, after a crash too;
// the caller holds the pod's lock.
func (c *cli) releasePod(h *podHandle) error {
	var errs []error
	m, _ := readManifest(h.Path())
	rt, _ := readRuntime(h.Path())
	if rt != nil {
		if err := c.deleteContainers(h, rt); err != nil {
			errs = append(errs, err)
		}
	}
	if m != nil && m.Net == netDefault {
		if err := network.Teardown(c.ctx, c.networkConfig(), h.UUID); err != nil {
			errs = append(errs, fmt.Errorf("pod %s: network: %w", h.UUID, err))
		}
	}
	// The engine removes a container's cgroup when it deletes it; after a
	// crash that lost the container's state, the cgroup is removed here.
	if m != nil {
		names := []string{"holder"}
		for _, a := range m.Apps {
			names = append(names, a.Name)
		}
		paths := []string{}
		for _, n := range names {
			paths = append(paths, appCgroup(h.UUID, n))
		}
		for _, p := range append(paths, podCgroup(h.UUID)) {
			if cg, err := cgroups.Load(p); err == nil {
				if err := cg.Destroy(); err != nil {
					errs = append(errs, fmt.Errorf("pod %s: cgroup: %w", h.UUID, err))
				}
			}
		}
	}
	if err := unmountBelow(h.Path()); err != nil {
		errs = append(errs, fmt.Errorf("pod %s: %w", h.UUID, err))
	}
	return errors.Join(errs...)
}

// destroy releases a pod and removes its directory; the caller holds the
// lock. The directory is removed only when nothing is mounted in it any
// more, so that removing it cannot reach a host volume.
func (c *cli) destroy(h *podHandle) error {
	if err := c.releasePod(h); err != nil {
		return err
	}
	if err := os.RemoveAll(h.Path()); err != nil {
		return fmt.Errorf("removing pod %s: %w", h.UUID, err)
	}
	return nil
}
