package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/corebox/corebox/applets/init/unit"
)

// errStopped means a stop was requested while a step was running.
var errStopped = errors.New("stop requested")

// lifecycle runs one unit from start to its final stop, restarting it as
// its Restart= policy says. It owns st's process fields; it takes s.mu to
// publish state.
func (s *Supervisor) lifecycle(st *unitState, def *unit.Unit, r *run) {
	defer close(r.done)
	reported := false
	report := func(err error) {
		if !reported {
			reported = true
			r.started <- err
		}
	}
	failStreak := 0
	for {
		began := time.Now()
		res := s.attempt(st, def, r, report)
		stopped := isClosed(r.stop)
		if time.Since(began) > 10*time.Second {
			failStreak = 0
		}
		restart := !stopped && wantRestart(def.Service.Restart, res)
		s.mu.Lock()
		st.mainPID = 0
		st.result, st.exit = res.result, res.exit
		switch {
		case stopped || (res.clean && !restart):
			st.active, st.sub = "inactive", "dead"
			if res.remain {
				st.active, st.sub = "active", "exited"
			}
		case restart:
			st.active, st.sub = "activating", "auto-restart"
		default:
			st.active, st.sub = "failed", "failed"
		}
		st.since = time.Now()
		if !restart && !res.remain {
			st.run = nil
		}
		s.mu.Unlock()
		report(res.err) // after the state is published, so Start's caller sees it
		if res.remain {
			// oneshot with RemainAfterExit: active until stopped.
			<-r.stop
			if cg, err := newCgroup(s.kind, s.cfg.CgroupRoot, st.name); err == nil {
				s.stopCommands(st, def, cg, 0)
				cg.kill(time.Now().Add(5 * time.Second))
				cg.remove()
			}
			s.mu.Lock()
			st.active, st.sub, st.since, st.run = "inactive", "dead", time.Now(), nil
			s.mu.Unlock()
			return
		}
		if !restart {
			return
		}
		failStreak++
		base := def.Service.RestartSec
		if base <= 0 {
			base = 100 * time.Millisecond
		}
		delay := base << min(failStreak-1, 16)
		if delay > s.cfg.MaxRestartDelay || delay <= 0 {
			delay = max(s.cfg.MaxRestartDelay, base)
		}
		s.journal.logf(st.name, "Scheduled restart in %s (restart %d)", delay, failStreak)
		select {
		case <-r.stop:
			s.mu.Lock()
			st.active, st.sub, st.since, st.run = "inactive", "dead", time.Now(), nil
			s.mu.Unlock()
			return
		case <-time.After(delay):
		}
		s.mu.Lock()
		st.restarts++
		st.active, st.sub, st.since = "activating", "start-pre", time.Now()
		s.mu.Unlock()
	}
}

// outcome is how one attempt ended.
type outcome struct {
	result string // success, exit-code, signal, timeout, resources, condition
	exit   string // "status=1", "signal=KILL"
	clean  bool   // exit 0 or a clean signal (for Restart=on-failure)
	remain bool   // oneshot with RemainAfterExit that succeeded
	err    error  // why the unit failed to start, for the caller of Start
}

func wantRestart(policy string, o outcome) bool {
	switch policy {
	case "always":
		return o.result != "condition"
	case "on-failure":
		return !o.clean && o.result != "condition"
	}
	return false
}

// attempt runs the unit once: conditions, ExecStartPre, the main command(s),
// ExecStartPost, then waits for the main process to exit or for a stop.
//
// started is called once the unit counts as started while it keeps
// running; an attempt that ends first reports through its outcome's err.
func (s *Supervisor) attempt(st *unitState, def *unit.Unit, r *run, started func(error)) (o outcome) {
	name := st.name
	for _, c := range def.Conditions {
		_, err := os.Stat(c.Path)
		if exists := err == nil; exists == c.Negate {
			s.journal.logf(name, "Condition check resulted in %s being skipped (ConditionPathExists=%s%s)", name, map[bool]string{true: "!"}[c.Negate], c.Path)
			return outcome{result: "condition", clean: true}
		}
	}
	if def.Service.Type == "" && len(def.Service.ExecStart) == 0 { // a target
		s.journal.logf(name, "Reached target %s", name)
		return outcome{result: "success", clean: true, remain: true}
	}
	env, err := s.environment(def)
	if err != nil {
		s.journal.logf(name, "Failed to load environment: %v", err)
		return withErr(outcome{result: "resources"}, fmt.Errorf("%s: %w", name, err))
	}
	cg, err := newCgroup(s.kind, s.cfg.CgroupRoot, name)
	if err != nil {
		s.journal.logf(name, "Failed to set up cgroup: %v", err)
		return withErr(outcome{result: "resources"}, fmt.Errorf("%s: %w", name, err))
	}
	s.mu.Lock()
	st.cg = cg
	s.mu.Unlock()
	defer func() {
		cg.kill(time.Now().Add(5 * time.Second))
		if err := cg.remove(); err != nil {
			s.journal.logf(name, "%v", err)
		}
		s.mu.Lock()
		st.cg = nil
		s.mu.Unlock()
	}()
	svc := def.Service
	startTimeout := svc.TimeoutStartSec

	for _, c := range svc.ExecStartPre {
		if o, ok := s.runStep(name, "ExecStartPre", c, env, def, cg, r, startTimeout); !ok {
			return withErr(o, fmt.Errorf("%s: ExecStartPre %s: %s", name, c.Argv[0], describe(o)))
		}
	}
	s.setSub(st, "start")
	if svc.Type == "oneshot" {
		for _, c := range svc.ExecStart {
			if o, ok := s.runStep(name, "ExecStart", c, env, def, cg, r, startTimeout); !ok {
				return withErr(o, fmt.Errorf("%s: ExecStart %s: %s", name, c.Argv[0], describe(o)))
			}
		}
		for _, c := range svc.ExecStartPost {
			if o, ok := s.runStep(name, "ExecStartPost", c, env, def, cg, r, startTimeout); !ok {
				return withErr(o, fmt.Errorf("%s: ExecStartPost %s: %s", name, c.Argv[0], describe(o)))
			}
		}
		s.journal.logf(name, "Finished %s.", describeUnit(def))
		return outcome{result: "success", clean: true, remain: svc.RemainAfterExit}
	}

	main := svc.ExecStart[0]
	pid, wait, err := s.spawn(name, main.Expand(envMap(env)), env, def, cg)
	if err != nil {
		s.journal.logf(name, "Failed to start %s: %v", name, err)
		return withErr(outcome{result: "resources", exit: "status=203/EXEC"}, fmt.Errorf("%s: %w", name, err))
	}
	s.mu.Lock()
	st.mainPID = pid
	st.active, st.sub, st.since = "active", "running", time.Now()
	s.mu.Unlock()
	s.journal.logf(name, "Started %s (pid %d).", describeUnit(def), pid)
	mainEnv := append(env, "MAINPID="+strconv.Itoa(pid))
	for _, c := range svc.ExecStartPost {
		if o, ok := s.runStep(name, "ExecStartPost", c, mainEnv, def, cg, r, startTimeout); !ok {
			s.stopMain(st, def, cg, pid, wait)
			return withErr(o, fmt.Errorf("%s: ExecStartPost %s: %s", name, c.Argv[0], describe(o)))
		}
	}
	started(nil)
	select {
	case ws := <-wait:
		o := exitOutcome(ws)
		s.journal.logf(name, "Main process exited, %s", describeWait(ws))
		return o
	case <-r.stop:
		s.stopCommands(st, def, cg, pid)
		ws, timedOut := s.stopMain(st, def, cg, pid, wait)
		if timedOut {
			return outcome{result: "timeout", exit: describeWait(ws)}
		}
		s.journal.logf(name, "Stopped %s.", describeUnit(def))
		return outcome{result: "success", clean: true, exit: describeWait(ws)}
	}
}

// stopCommands runs ExecStop with $MAINPID.
func (s *Supervisor) stopCommands(st *unitState, def *unit.Unit, cg *cgroup, pid int) {
	s.setActive(st, "deactivating", "stop")
	env, _ := s.environment(def)
	env = append(env, "MAINPID="+strconv.Itoa(pid))
	for _, c := range def.Service.ExecStop {
		s.runStep(st.name, "ExecStop", c, env, def, cg, nil, def.Service.TimeoutStopSec)
	}
}

// stopMain signals the unit's processes with KillSignal, waits up to
// TimeoutStopSec for the main process and then kills what is left.
func (s *Supervisor) stopMain(st *unitState, def *unit.Unit, cg *cgroup, pid int, wait <-chan syscall.WaitStatus) (syscall.WaitStatus, bool) {
	s.setActive(st, "deactivating", "stop-sigterm")
	sig := def.Service.KillSignal
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	syscall.Kill(pid, sig)
	cg.signal(sig)
	var timeout <-chan time.Time
	if t := def.Service.TimeoutStopSec; t > 0 {
		timeout = time.After(t)
	}
	select {
	case ws := <-wait:
		return ws, false
	case <-timeout:
		s.journal.logf(st.name, "State 'stop-sigterm' timed out. Killing.")
		s.setActive(st, "deactivating", "stop-sigkill")
		syscall.Kill(pid, syscall.SIGKILL)
		cg.kill(time.Now().Add(5 * time.Second))
		return <-wait, true
	}
}

// runStep runs one auxiliary command (ExecStartPre, oneshot ExecStart,
// ExecStartPost, ExecStop) to completion. ok is false when it failed and
// its failure is not ignored ("-" prefix), or when a stop was requested.
func (s *Supervisor) runStep(name, what string, c unit.Command, env []string, def *unit.Unit, cg *cgroup, r *run, timeout time.Duration) (outcome, bool) {
	argv := c.Expand(envMap(env))
	pid, wait, err := s.spawn(name, argv, env, def, cg)
	if err != nil {
		s.journal.logf(name, "%s: %v", what, err)
		return outcome{result: "resources", exit: "status=203/EXEC"}, c.IgnoreFailure
	}
	var stop <-chan struct{}
	if r != nil {
		stop = r.stop
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		deadline = time.After(timeout)
	}
	select {
	case ws := <-wait:
		o := exitOutcome(ws)
		if o.result != "success" {
			s.journal.logf(name, "%s %s: process exited, %s", what, argv[0], describeWait(ws))
			return o, c.IgnoreFailure
		}
		return o, true
	case <-deadline:
		s.journal.logf(name, "%s %s timed out after %s. Killing.", what, argv[0], timeout)
		cg.signal(syscall.SIGKILL)
		syscall.Kill(pid, syscall.SIGKILL)
		<-wait
		return outcome{result: "timeout"}, false
	case <-stop:
		cg.signal(syscall.SIGTERM)
		syscall.Kill(pid, syscall.SIGTERM)
		<-wait
		return outcome{result: "success", clean: true}, false
	}
}

// spawn starts argv as a process of the unit: its own session, stdin from
// /dev/null, stdout and stderr into the journal, inside the unit's cgroup.
func (s *Supervisor) spawn(name string, argv, env []string, def *unit.Unit, cg *cgroup) (int, <-chan syscall.WaitStatus, error) {
	if len(argv) == 0 {
		return 0, nil, errors.New("empty command line")
	}
	path, err := lookPath(argv[0], env)
	if err != nil {
		return 0, nil, err
	}
	dir := def.Service.WorkingDirectory
	if dir == "" {
		dir = "/"
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer null.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, nil, err
	}
	defer pw.Close()
	cgfd, err := cg.openFD()
	if err != nil {
		pr.Close()
		return 0, nil, err
	}
	if cgfd >= 0 {
		defer syscall.Close(cgfd)
	}
	cred, err := credential(def.Service.User, def.Service.Group)
	if err != nil {
		pr.Close()
		return 0, nil, err
	}
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{null.Fd(), pw.Fd(), pw.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true, UseCgroupFD: cgfd >= 0, CgroupFD: max(cgfd, 0), Credential: cred},
	}
	pid, wait, err := s.reaper.spawn(func() (int, error) {
		return syscall.ForkExec(path, argv, attr)
	})
	if err != nil {
		pr.Close()
		return 0, nil, fmt.Errorf("executing %s: %w", path, err)
	}
	cg.groups = append(cg.groups, pid) // a session leader: its pgid is its pid
	if err := cg.adopt(pid); err != nil {
		s.journal.logf(name, "moving pid %d into %s: %v", pid, cg.path, err)
	}
	go s.journal.pump(name, pr)
	return pid, wait, nil
}

// credential resolves User= and Group= (names or numbers); nil means root,
// unchanged. A user's primary group is used when Group= is empty, and its
// supplementary groups are set.
func credential(userName, groupName string) (*syscall.Credential, error) {
	if userName == "" && groupName == "" {
		return nil, nil
	}
	cred := &syscall.Credential{}
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			if u, err = user.LookupId(userName); err != nil {
				return nil, fmt.Errorf("User=%s: %w", userName, err)
			}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
		if ids, err := u.GroupIds(); err == nil {
			for _, id := range ids {
				if g, err := strconv.Atoi(id); err == nil {
					cred.Groups = append(cred.Groups, uint32(g))
				}
			}
		}
	}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if g, err = user.LookupGroupId(groupName); err != nil {
				return nil, fmt.Errorf("Group=%s: %w", groupName, err)
			}
		}
		gid, _ := strconv.Atoi(g.Gid)
		cred.Gid = uint32(gid)
	}
	return cred, nil
}

// lookPath resolves a command name against the unit's PATH; absolute and
// relative-with-slash names are used as they are.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if _, err := os.Stat(file); err != nil {
			return "", fmt.Errorf("executable %s: %w", file, err)
		}
		return file, nil
	}
	path := envMap(env)["PATH"]
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("executable %q: %w in PATH %q", file, exec.ErrNotFound, path)
}

// environment is the base environment, then Environment=, then the
// EnvironmentFile= files (later wins).
func (s *Supervisor) environment(def *unit.Unit) ([]string, error) {
	env := append([]string{}, s.cfg.Env...)
	env = append(env, def.Service.Environment...)
	for _, ef := range def.Service.EnvironmentFiles {
		f, err := os.Open(ef.Path)
		if err != nil {
			if ef.Optional {
				continue
			}
			return nil, fmt.Errorf("EnvironmentFile: %w", err)
		}
		vars, err := unit.ParseEnvironmentFile(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("EnvironmentFile %s: %w", ef.Path, err)
		}
		env = append(env, vars...)
	}
	return dedupEnv(env), nil
}

// dedupEnv keeps the last value of each variable, in first-seen order.
func dedupEnv(env []string) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func exitOutcome(ws syscall.WaitStatus) outcome {
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return outcome{result: "success", clean: true, exit: "status=0/SUCCESS"}
	case ws.Exited():
		return outcome{result: "exit-code", exit: fmt.Sprintf("status=%d", ws.ExitStatus())}
	case ws.Signaled():
		sig := ws.Signal()
		clean := sig == syscall.SIGHUP || sig == syscall.SIGINT || sig == syscall.SIGTERM || sig == syscall.SIGPIPE
		return outcome{result: "signal", clean: clean, exit: "signal=" + signalName(sig)}
	}
	return outcome{result: "exit-code", exit: fmt.Sprintf("wait status %#x", uint32(ws))}
}

func describeWait(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "code=killed, signal=" + signalName(ws.Signal())
	}
	return fmt.Sprintf("code=exited, status=%d", ws.ExitStatus())
}

func describe(o outcome) string {
	if o.exit != "" {
		return o.result + " (" + o.exit + ")"
	}
	return o.result
}

func describeUnit(def *unit.Unit) string {
	if def.Description != "" {
		return def.Description
	}
	return def.Name
}

func signalName(sig syscall.Signal) string {
	n := unixSignalName(sig)
	return strings.TrimPrefix(n, "SIG")
}

func (s *Supervisor) setSub(st *unitState, sub string) {
	s.mu.Lock()
	st.sub = sub
	s.mu.Unlock()
}

func (s *Supervisor) setActive(st *unitState, active, sub string) {
	s.mu.Lock()
	st.active, st.sub = active, sub
	s.mu.Unlock()
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func withErr(o outcome, err error) outcome {
	o.err = err
	return o
}
