package rkt

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// podInfo is a pod as list and status see it.
type podInfo struct {
	UUID     string
	State    string
	Path     string
	Manifest *PodManifest // nil while the pod is an embryo, or if unreadable
	Runtime  *podRuntime  // nil until the pod ran
	Created  time.Time
}

// inspect reads a pod's state and records; h need not be locked.
func (c *cli) inspect(h *podHandle) podInfo {
	info := podInfo{UUID: h.UUID, Path: h.Path()}
	if st, err := h.dir.Stat(); err == nil {
		info.Created = st.ModTime()
	}
	if m, err := readManifest(h.Path()); err == nil {
		info.Manifest = m
		info.Created = m.Created
	}
	info.Runtime, _ = readRuntime(h.Path())
	switch h.phase {
	case phaseEmbryo:
		info.State = stateEmbryo
	case phasePrepare:
		info.State = stateAbortedPrepare
		if h.lockedByOther() {
			info.State = statePreparing
		}
	case phasePrepared:
		info.State = statePrepared
	case phaseRun:
		info.State = stateExited
		if h.lockedByOther() || c.orphanRunning(h, info.Runtime) {
			info.State = stateRunning
		}
	case phaseExitedGarbage:
		info.State = stateExitedGarbage
	case phaseGarbage:
		info.State = stateGarbage
	}
	return info
}

// exited says whether a pod ran and is done (also when marked for gc).
func (p podInfo) exited() bool {
	return p.State == stateExited || p.State == stateExitedGarbage
}

// timeLayout is how rkt prints times in full.
const timeLayout = "2006-01-02 15:04:05.999 -0700 MST"

// networks formats the pod's networks as rkt does: "default:ip4=ADDR".
func (p podInfo) networks() string {
	if p.Runtime == nil || p.Runtime.Network == nil {
		return ""
	}
	return p.Runtime.Network.Name + ":ip4=" + p.Runtime.Network.IP
}

// ago is a short human form of the time since t ("2 minutes ago").
func ago(t, now time.Time) string {
	d := now.Sub(t)
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name + " ago"
		}
		return strconv.FormatInt(n, 10) + " " + name + "s ago"
	}
	switch {
	case d < time.Second:
		return "now"
	case d < time.Minute:
		return unit(int64(d/time.Second), "second")
	case d < time.Hour:
		return unit(int64(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return unit(int64(d/time.Hour), "hour")
	case d < 7*24*time.Hour:
		return unit(int64(d/(24*time.Hour)), "day")
	}
	return unit(int64(d/(7*24*time.Hour)), "week")
}

// allPods inspects every pod.
func (c *cli) allPods() ([]podInfo, error) {
	s, err := c.pods()
	if err != nil {
		return nil, err
	}
	uuids, err := s.list()
	if err != nil {
		return nil, err
	}
	var out []podInfo
	for _, u := range uuids {
		h, err := s.open(u)
		if err != nil {
			continue // gone meanwhile
		}
		out = append(out, c.inspect(h))
		h.Close()
	}
	return out, nil
}

// podJSON is a pod in rkt's JSON output (lib.Pod's fields, plus corebox's
// apps with their outcomes).
type podJSON struct {
	UUID      string        `json:"name"`
	State     string        `json:"state"`
	Networks  []netJSON     `json:"networks,omitempty"`
	AppNames  []string      `json:"app_names,omitempty"`
	CreatedAt *int64        `json:"created_at,omitempty"`
	StartedAt *int64        `json:"started_at,omitempty"`
	Pid       int           `json:"pid,omitempty"`
	Apps      []appJSONInfo `json:"apps,omitempty"`
}

type netJSON struct {
	NetName string `json:"netName"`
	IfName  string `json:"ifName"`
	IP      string `json:"ip"`
	Gateway string `json:"gateway"`
	Subnet  string `json:"subnet"`
}

type appJSONInfo struct {
	Name       string `json:"name"`
	ImageID    string `json:"image_id"`
	State      string `json:"state"` // running, exited, or created (never started)
	ExitCode   *int   `json:"exit_code,omitempty"`
	Signal     string `json:"signal,omitempty"`
	OOMKilled  bool   `json:"oom_killed,omitempty"`
	StartedAt  *int64 `json:"started_at,omitempty"`
	FinishedAt *int64 `json:"finished_at,omitempty"`
}

func unixPtr(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

func (p podInfo) toJSON() podJSON {
	j := podJSON{UUID: p.UUID, State: p.State, CreatedAt: unixPtr(p.Created)}
	if p.Manifest != nil {
		for _, a := range p.Manifest.Apps {
			j.AppNames = append(j.AppNames, a.Name)
			ai := appJSONInfo{Name: a.Name, ImageID: a.Image.ID, State: "created"}
			if rt := p.appRuntime(a.Name); rt != nil {
				ai.StartedAt = unixPtr(rt.Started)
				if !rt.Started.IsZero() {
					ai.State = "running"
				}
				if rt.Exited {
					code := rt.ExitCode
					ai.State, ai.ExitCode, ai.Signal, ai.OOMKilled = "exited", &code, rt.Signal, rt.OOMKilled
					ai.FinishedAt = unixPtr(rt.Finished)
				}
			}
			j.Apps = append(j.Apps, ai)
		}
	}
	if r := p.Runtime; r != nil {
		j.StartedAt = unixPtr(r.Started)
		if p.State == stateRunning {
			j.Pid = r.Pid
		}
		if n := r.Network; n != nil {
			j.Networks = []netJSON{{NetName: n.Name, IfName: n.IfName, IP: n.IP, Gateway: n.Gateway, Subnet: n.Prefix}}
		}
	}
	return j
}

func (p podInfo) appRuntime(name string) *appRuntime {
	if p.Runtime == nil {
		return nil
	}
	for i := range p.Runtime.Apps {
		if p.Runtime.Apps[i].Name == name {
			return &p.Runtime.Apps[i]
		}
	}
	return nil
}

// writeJSON prints v as --format asks: json or json-pretty.
func writeJSON(w io.Writer, format string, v any) error {
	var b []byte
	var err error
	switch format {
	case "json":
		b, err = json.Marshal(v)
	case "json-pretty":
		b, err = json.MarshalIndent(v, "", "\t")
	default:
		return fmt.Errorf("--format %q: want json or json-pretty", format)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func (c *cli) list(vals flagValues, args []string) int {
	if len(args) > 0 {
		return c.usageError(fmt.Errorf("unexpected argument %q", args[0]))
	}
	pods, err := c.allPods()
	if err != nil {
		return c.fail(err)
	}
	if f := vals.last("format", ""); f != "" {
		out := []podJSON{}
		for _, p := range pods {
			out = append(out, p.toJSON())
		}
		if err := writeJSON(c.env.Stdout, f, out); err != nil {
			return c.usageError(err)
		}
		return 0
	}
	full := vals.bool("full")
	now := time.Now()
	tw := tabwriter.NewWriter(c.env.Stdout, 0, 8, 1, '\t', 0)
	if !vals.bool("no-legend") {
		if full {
			fmt.Fprintln(tw, "UUID\tAPP\tIMAGE NAME\tIMAGE ID\tSTATE\tCREATED\tSTARTED\tNETWORKS")
		} else {
			fmt.Fprintln(tw, "UUID\tAPP\tIMAGE NAME\tSTATE\tCREATED\tSTARTED\tNETWORKS")
		}
	}
	for _, p := range pods {
		uuid := p.UUID
		if !full {
			uuid = uuid[:8]
		}
		created, started := "", ""
		if !p.Created.IsZero() {
			created = ago(p.Created, now)
			if full {
				created = p.Created.Format(timeLayout)
			}
		}
		if p.Runtime != nil && !p.Runtime.Started.IsZero() {
			started = ago(p.Runtime.Started, now)
			if full {
				started = p.Runtime.Started.Format(timeLayout)
			}
		}
		var apps []AppManifest
		if p.Manifest != nil {
			apps = p.Manifest.Apps
		}
		if len(apps) == 0 {
			apps = []AppManifest{{Name: "-"}}
		}
		for i, a := range apps {
			id := a.Image.ID
			if len(id) > 19 {
				id = id[:19]
			}
			switch {
			case i > 0 && full:
				fmt.Fprintf(tw, "\t%s\t%s\t%s\t\t\t\t\n", a.Name, a.Image.Name, id)
			case i > 0:
				fmt.Fprintf(tw, "\t%s\t%s\t\t\t\t\n", a.Name, a.Image.Name)
			case full:
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", uuid, a.Name, a.Image.Name, id, p.State, created, started, p.networks())
			default:
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", uuid, a.Name, a.Image.Name, p.State, created, started, p.networks())
			}
		}
	}
	tw.Flush()
	return 0
}

// parseWait reads status --wait: true (forever), false, or a duration
// (negative: forever, zero: not at all). It returns whether to wait and
// the deadline (zero: none).
func parseWait(s string, now time.Time) (bool, time.Time, error) {
	if b, err := strconv.ParseBool(s); err == nil {
		return b, time.Time{}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return false, time.Time{}, fmt.Errorf("--wait %q: want true, false or a duration like 10s", s)
	}
	switch {
	case d < 0:
		return true, time.Time{}, nil
	case d == 0:
		return false, time.Time{}, nil
	}
	return true, now.Add(d), nil
}

func (c *cli) status(vals flagValues, args []string) int {
	uuids, err := uuidArgs(vals, args)
	if err != nil {
		return c.usageError(err)
	}
	if len(uuids) != 1 {
		return c.usageError(fmt.Errorf("status takes one pod UUID, not %d", len(uuids)))
	}
	wait, deadline, err := parseWait(vals.last("wait", "false"), time.Now())
	if err != nil {
		return c.usageError(err)
	}
	readyWait, readyDeadline, err := parseWait(vals.last("wait-ready", "false"), time.Now())
	if err != nil {
		return c.usageError(err)
	}
	s, err := c.pods()
	if err != nil {
		return c.fail(err)
	}
	uuid, err := s.resolve(uuids[0])
	if err != nil {
		return c.fail(err)
	}
	var info podInfo
	for {
		h, err := s.open(uuid)
		if err != nil {
			return c.fail(err)
		}
		info = c.inspect(h)
		h.Close()
		done := info.State != stateEmbryo && info.State != statePreparing && info.State != statePrepared && info.State != stateRunning
		ready := info.State == stateRunning && info.Runtime != nil && info.Runtime.Pid != 0
		switch {
		case wait && !done:
			if !deadline.IsZero() && time.Now().After(deadline) {
				return c.fail(fmt.Errorf("pod %s is still %s after the --wait timeout", uuid, info.State))
			}
		case readyWait && !ready && !done:
			if !readyDeadline.IsZero() && time.Now().After(readyDeadline) {
				return c.fail(fmt.Errorf("pod %s is not ready after the --wait-ready timeout", uuid))
			}
		default:
			return c.printStatus(info, vals.last("format", ""))
		}
		select {
		case <-c.ctx.Done():
			return c.fail(c.ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *cli) printStatus(p podInfo, format string) int {
	if format != "" {
		if err := writeJSON(c.env.Stdout, format, p.toJSON()); err != nil {
			return c.usageError(err)
		}
		return 0
	}
	w := c.env.Stdout
	fmt.Fprintf(w, "state=%s\n", p.State)
	if !p.Created.IsZero() {
		fmt.Fprintf(w, "created=%s\n", p.Created.Format(timeLayout))
	}
	r := p.Runtime
	if r != nil && !r.Started.IsZero() {
		fmt.Fprintf(w, "started=%s\n", r.Started.Format(timeLayout))
	}
	if p.State == stateRunning || p.exited() {
		fmt.Fprintf(w, "networks=%s\n", p.networks())
		if r != nil && r.Network != nil && len(r.Network.Ports) > 0 {
			var ports []string
			for _, pm := range r.Network.Ports {
				ports = append(ports, fmt.Sprintf("%s:%d", pm.Name, pm.HostPort))
			}
			fmt.Fprintf(w, "ports=%s\n", strings.Join(ports, ","))
		}
		pid := -1
		if p.State == stateRunning && r != nil && r.Pid != 0 {
			pid = r.Pid
		}
		fmt.Fprintf(w, "pid=%d\nexited=%t\n", pid, p.exited())
	}
	if r != nil && !r.Finished.IsZero() && p.exited() {
		fmt.Fprintf(w, "finished=%s\n", r.Finished.Format(timeLayout))
	}
	if r != nil {
		for _, a := range r.Apps {
			if !a.Exited {
				continue
			}
			fmt.Fprintf(w, "app-%s=%d\n", a.Name, a.ExitCode)
			if a.Signal != "" {
				fmt.Fprintf(w, "app-%s-signal=%s\n", a.Name, a.Signal)
			}
			if a.OOMKilled {
				fmt.Fprintf(w, "app-%s-oom-killed=true\n", a.Name)
			}
		}
	}
	return 0
}

func (c *cli) catManifest(vals flagValues, args []string) int {
	pretty := vals.last("pretty-print", "true") == "true"
	return c.forEachPod(vals, args, func(s *podStore, prefix string) error {
		h, err := s.openPrefix(prefix)
		if err != nil {
			return err
		}
		m, err := readManifest(h.Path())
		h.Close()
		if err != nil {
			return fmt.Errorf("pod %s: %w", h.UUID, err)
		}
		var b []byte
		if pretty {
			b, err = json.MarshalIndent(m, "", "\t")
		} else {
			b, err = json.Marshal(m)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.env.Stdout, "%s\n", b)
		return nil
	})
}

// forEachPod runs do for each pod UUID (or unique prefix) argument. It
// goes on after a failure, which it reports; the status is the last
// failure's, or 0.
func (c *cli) forEachPod(vals flagValues, args []string, do func(s *podStore, prefix string) error) int {
	uuids, err := uuidArgs(vals, args)
	if err != nil {
		return c.usageError(err)
	}
	s, err := c.pods()
	if err != nil {
		return c.fail(err)
	}
	status := 0
	for _, u := range uuids {
		if err := do(s, u); err != nil {
			status = c.fail(err)
		}
	}
	return status
}

// gc moves exited pods to exited-garbage, aborted and expired ones to
// garbage, and deletes the garbage: all of it, and exited pods marked
// longer than the grace period ago.
func (c *cli) gc(vals flagValues, args []string) int {
	if len(args) > 0 {
		return c.usageError(fmt.Errorf("unexpected argument %q", args[0]))
	}
	grace, err := time.ParseDuration(vals.last("grace-period", "30m0s"))
	if err != nil || grace < 0 {
		return c.usageError(fmt.Errorf("--grace-period %q: want a duration like 30m", vals.last("grace-period", "")))
	}
	expire, err := time.ParseDuration(vals.last("expire-prepared", "24h0m0s"))
	if err != nil || expire < 0 {
		return c.usageError(fmt.Errorf("--expire-prepared %q: want a duration like 24h", vals.last("expire-prepared", "")))
	}
	s, err := c.pods()
	if err != nil {
		return c.fail(err)
	}
	uuids, err := s.list()
	if err != nil {
		return c.fail(err)
	}
	status := 0
	now := time.Now()
	for _, u := range uuids {
		h, err := s.open(u)
		if err != nil {
			continue
		}
		info := c.inspect(h)
		var to podPhase
		switch {
		case info.State == stateExited:
			to = phaseExitedGarbage
		case info.State == stateAbortedPrepare:
			to = phaseGarbage
		case info.State == stateEmbryo && now.Sub(info.Created) > time.Minute:
			to = phaseGarbage
		case info.State == statePrepared && now.Sub(info.Created) > expire:
			to = phaseGarbage
		}
		if to != "" {
			if err := h.lock(); err != nil {
				h.Close()
				continue // busy: someone is using it; next time
			}
			fmt.Fprintf(c.env.Stdout, "Moving pod %q to garbage\n", u)
			if err := h.move(to); err != nil {
				status = c.fail(err)
			} else if to == phaseExitedGarbage {
				os.Chtimes(h.Path(), now, now) // the grace period starts now
			}
		}
		h.Close()
	}
	if vals.bool("mark-only") {
		return status
	}
	for _, u := range uuids {
		h, err := s.open(u)
		if err != nil {
			continue
		}
		due := h.phase == phaseGarbage
		if h.phase == phaseExitedGarbage {
			if st, err := h.dir.Stat(); err == nil && now.Sub(st.ModTime()) >= grace {
				due = true
			}
		}
		if due {
			if err := h.lock(); err == nil {
				fmt.Fprintf(c.env.Stdout, "Garbage collecting pod %q\n", u)
				if err := c.destroy(h); err != nil {
					status = c.fail(err)
				}
			}
		}
		h.Close()
	}
	return status
}

// rm deletes pods that are not running, at once.
func (c *cli) rm(vals flagValues, args []string) int {
	return c.forEachPod(vals, args, c.rmOne)
}

func (c *cli) rmOne(s *podStore, prefix string) error {
	h, err := s.openPrefix(prefix)
	if err != nil {
		return err
	}
	defer h.Close()
	info := c.inspect(h)
	switch info.State {
	case stateRunning, statePreparing:
		return fmt.Errorf("pod %s is %s: stop it first", h.UUID, info.State)
	}
	if err := h.lock(); err != nil {
		return err
	}
	if h.phase != phaseGarbage && h.phase != phaseExitedGarbage {
		to := phaseGarbage
		if h.phase == phaseRun {
			to = phaseExitedGarbage
		}
		if err := h.move(to); err != nil {
			return err
		}
	}
	if err := c.destroy(h); err != nil {
		return err
	}
	fmt.Fprintf(c.env.Stdout, "%q\n", h.UUID)
	return nil
}

var errNotRunning = errors.New("pod is not running")
