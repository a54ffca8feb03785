package faulttest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Member is one `corebox etcd` process: its URLs, data dir and log file,
// and the process while it runs. A member can be started again after it
// stopped, with the same flags and data dir.
type Member struct {
	Name string
	// ClientURL is where the member serves the v2 API.
	ClientURL string
	// PeerURL is the member's advertised peer URL, the one the others dial
	// (a proxy port when the cluster runs behind a Proxy); ListenPeerURL is
	// where the process itself listens.
	PeerURL       string
	ListenPeerURL string
	DataDir       string
	// LogFile collects the process's stdout and stderr over all its runs.
	LogFile string

	bin  string
	args []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has exited
	paused   bool
	stopping bool     // the test signalled the process to end
	crashes  []string // exits nobody asked for
}

// Start starts the process. It does not wait for the member to serve.
func (m *Member) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		select {
		case <-m.done: // it exited by itself
		default:
			return fmt.Errorf("starting %s: already running as pid %d", m.Name, m.cmd.Process.Pid)
		}
	}
	log, err := os.OpenFile(m.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("starting %s: %w", m.Name, err)
	}
	defer log.Close()
	cmd := exec.Command(m.bin, append([]string{"etcd"}, m.args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	// No ETCD_* variable of the test's environment reaches the member.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "GOTRACEBACK=all"}
	// The member dies with the test process, even when a test times out
	// and no cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(log, "=== faulttest: %s starting: %s etcd %s\n", time.Now().Format(time.RFC3339Nano), m.bin, strings.Join(m.args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", m.Name, err)
	}
	done := make(chan struct{})
	m.cmd, m.done, m.paused, m.stopping = cmd, done, false, false
	go func() {
		err := cmd.Wait()
		m.mu.Lock()
		if !m.stopping {
			m.crashes = append(m.crashes, fmt.Sprintf("pid %d exited by itself at %s: %v", cmd.Process.Pid, time.Now().Format(time.RFC3339Nano), err))
		}
		m.mu.Unlock()
		close(done)
	}()
	return nil
}

// Crashes lists the times the process exited without being asked to.
func (m *Member) Crashes() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.crashes...)
}

// Running reports whether the process runs (paused or not).
func (m *Member) Running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Paused reports whether the process is stopped by SIGSTOP.
func (m *Member) Paused() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cmd != nil && m.paused
}

// Pid is the process's pid, or 0 when it does not run.
func (m *Member) Pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return 0
	}
	return m.cmd.Process.Pid
}

// Kill kills the process with SIGKILL (paused or not) and waits for it
// to be gone.
func (m *Member) Kill() error {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.stopping = true
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing %s (pid %d): %w", m.Name, cmd.Process.Pid, err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", m.Name, cmd.Process.Pid)
	}
	m.mu.Lock()
	m.cmd, m.done, m.paused = nil, nil, false
	m.mu.Unlock()
	return nil
}

// Pause stops the process with SIGSTOP.
func (m *Member) Pause() error { return m.signal(syscall.SIGSTOP, true) }

// Resume continues a paused process with SIGCONT.
func (m *Member) Resume() error { return m.signal(syscall.SIGCONT, false) }

func (m *Member) signal(sig syscall.Signal, paused bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return fmt.Errorf("%v to %s: not running", sig, m.Name)
	}
	if err := m.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%v to %s (pid %d): %w", sig, m.Name, m.cmd.Process.Pid, err)
	}
	m.paused = paused
	return nil
}

// Log returns the member's log so far.
func (m *Member) Log() string {
	b, _ := os.ReadFile(m.LogFile)
	return string(b)
}
