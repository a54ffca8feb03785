package rkt

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/corebox/corebox/applets/rkt/image"
)

// openImages opens the image store (it shares rkt's data directory).
func (c *cli) openImages() (*image.Store, error) {
	return image.Open(c.dir, c.log)
}

// preparePod creates a pod for req and leaves it locked in the prepared
// phase. When anything fails the pod is deleted at once: a half-created
// pod never stays behind.
func (c *cli) preparePod(req *runRequest) (_ *podHandle, _ *PodManifest, err error) {
	pods, err := c.pods()
	if err != nil {
		return nil, nil, err
	}
	store, err := c.openImages()
	if err != nil {
		return nil, nil, err
	}
	uuid := newUUID()
	h, err := pods.create(uuid)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			c.destroy(h)
			h.Close()
		}
	}()
	if err := h.move(phasePrepare); err != nil {
		return nil, nil, err
	}
	m, err := c.buildManifest(store, req, uuid)
	if err != nil {
		return nil, nil, err
	}
	if err := writeManifest(h.Path(), m); err != nil {
		return nil, nil, err
	}
	if err := h.move(phasePrepared); err != nil {
		return nil, nil, err
	}
	if req.UUIDFileSave != "" {
		if err := os.WriteFile(req.UUIDFileSave, []byte(uuid+"\n"), 0o644); err != nil {
			return nil, nil, fmt.Errorf("--uuid-file-save: %w", err)
		}
	}
	return h, m, nil
}

func (c *cli) prepare(args []string) int {
	req, globals, err := parseRunArgs(args, globalFlags)
	if err != nil {
		return c.usageError(err)
	}
	if err := c.mergeGlobals(globals); err != nil {
		return c.usageError(err)
	}
	if req.Interactive {
		return c.usageError(errors.New("--interactive is an option of run-prepared for prepared pods"))
	}
	h, _, err := c.preparePod(req)
	if err != nil {
		return c.fail(err)
	}
	h.Close()
	fmt.Fprintln(c.env.Stdout, h.UUID)
	return 0
}

// mergeGlobals applies global flags given after the command (run,
// prepare) over those given before it.
func (c *cli) mergeGlobals(globals flagValues) error {
	if len(globals) == 0 {
		return nil
	}
	merged := flagValues{}
	for k, v := range c.globals {
		merged[k] = slices.Clone(v)
	}
	for k, v := range globals {
		merged[k] = append(merged[k], v...)
	}
	return c.setGlobals(merged)
}

func (c *cli) runCmd(args []string) int {
	req, globals, err := parseRunArgs(args, globalFlags)
	if err != nil {
		return c.usageError(err)
	}
	if err := c.mergeGlobals(globals); err != nil {
		return c.usageError(err)
	}
	h, m, err := c.preparePod(req)
	if err != nil {
		return c.fail(err)
	}
	defer h.Close()
	return c.runPod(h, m)
}

func (c *cli) runPrepared(vals flagValues, args []string) int {
	if len(args) != 1 {
		return c.usageError(fmt.Errorf("run-prepared takes one pod UUID"))
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
	if h.phase != phasePrepared {
		return c.fail(fmt.Errorf("pod %s is not prepared (it is in %s)", h.UUID, h.phase))
	}
	if err := h.lock(); err != nil {
		return c.fail(err)
	}
	if h.phase != phasePrepared { // moved between open and lock
		return c.fail(fmt.Errorf("pod %s is not prepared any more", h.UUID))
	}
	m, err := readManifest(h.Path())
	if err != nil {
		return c.fail(err)
	}
	if vals["net"] != nil {
		if m.Net, err = parseNet(vals.last("net", netDefault)); err != nil {
			return c.usageError(err)
		}
		if err := checkPorts(m.Net, m.Ports); err != nil {
			return c.usageError(fmt.Errorf("the pod was prepared with --port: %w", err))
		}
	}
	if vals["hostname"] != nil {
		if err := checkHostname(vals.last("hostname", "")); err != nil {
			return c.usageError(err)
		}
		m.Hostname = vals.last("hostname", "")
	}
	for _, d := range vals["dns"] {
		if _, err := parseDNS(d); err != nil {
			return c.usageError(err)
		}
	}
	if vals["dns"] != nil {
		m.DNS = vals["dns"]
	}
	if vals.bool("interactive") {
		if len(m.Apps) != 1 {
			return c.usageError(fmt.Errorf("--interactive takes a pod of one app, this one has %d", len(m.Apps)))
		}
		m.Interactive = true
	}
	if err := writeManifest(h.Path(), m); err != nil {
		return c.fail(err)
	}
	return c.runPod(h, m)
}
