package rkt

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// openPty opens a pseudo-terminal pair. The master stays non-blocking
// (its reads end when it is closed); ioctls on it go through ptyControl.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	var n int
	err = ptyControl(master, func(fd int) error {
		if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
			return fmt.Errorf("unlocking the pty: %w", err)
		}
		var err error
		n, err = unix.IoctlGetInt(fd, unix.TIOCGPTN)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	return master, slave
}

// ptyControl runs do on f's descriptor without making it blocking, as
// File.Fd would.
func ptyControl(f *os.File, do func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var derr error
	if err := rc.Control(func(fd uintptr) { derr = do(int(fd)) }); err != nil {
		return err
	}
	return derr
}

// ptyOutput collects what is read from a pty master.
type ptyOutput struct {
	mu  sync.Mutex
	buf strings.Builder
}

func readPty(master *os.File) *ptyOutput {
	o := &ptyOutput{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			o.mu.Lock()
			o.buf.Write(b[:n])
			o.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return o
}

func (o *ptyOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output matches re, and reports whether it did.
func (o *ptyOutput) waitFor(re *regexp.Regexp, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !re.MatchString(o.String()) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestRunInteractive runs `rkt run --interactive` on a terminal, as a
// user would: the app's stdio is a terminal of its own with rkt's size,
// resizes reach it, its exit status is rkt's, and rkt's terminal is as
// it was once rkt exits.
func TestRunInteractive(t *testing.T) {
	needRoot(t, "pods need namespaces")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	master, slave := openPty(t)
	if err := ptyControl(master, func(fd int) error {
		return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 31, Col: 97})
	}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("/proc/self/exe", "--dir="+dir, "run", "--interactive", "--net=none", ref, "--exec=/bin/sh")
	cmd.Env = append(os.Environ(), "RKT_TEST_AS_RKT=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	out := readPty(master)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	t.Cleanup(func() {
		if !exited {
			for _, l := range strings.Split(rktIn(t, dir, "list", "--no-legend", "--full").stdout, "\n") {
				if f := strings.Fields(l); len(f) > 0 {
					rktIn(t, dir, "stop", "--force", f[0])
				}
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		rktIn(t, dir, "gc", "--grace-period=0s")
	})
	send := func(s string) {
		t.Helper()
		if _, err := master.Write([]byte(s)); err != nil {
			t.Fatalf("writing %q to the terminal: %v", s, err)
		}
	}

	// The prompt shows that the shell runs, and rkt copies (its terminal
	// is raw by then).
	if !out.waitFor(regexp.MustCompile(`/ # `), 30*time.Second) {
		t.Fatalf("no prompt from the app:\n%q", out)
	}
	send("tty; echo size1 $(stty size); echo in-pod-$((6*7))\n")
	if !out.waitFor(regexp.MustCompile(`in-pod-42`), 10*time.Second) {
		t.Fatalf("no answer from the app:\n%q", out)
	}
	if s := out.String(); !regexp.MustCompile(`(?m)^/dev/(pts/\d+|console)\r?$`).MatchString(s) {
		t.Errorf("the app's stdin is not a terminal:\n%q", s)
	}
	if s := out.String(); !strings.Contains(s, "size1 31 97") {
		t.Errorf("the app's terminal is not 31x97:\n%q", s)
	}

	// A resize of rkt's terminal signals rkt (the kernel does, to the
	// foreground group; the explicit signal does not depend on it).
	if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 132}); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGWINCH)
	resized := regexp.MustCompile(`size2 50 132`)
	for i := 0; ; i++ {
		send("echo size2 $(stty size)\n")
		if out.waitFor(resized, 500*time.Millisecond) {
			break
		}
		if i == 20 {
			t.Errorf("the resize did not reach the app:\n%q", out)
			break
		}
	}

	send("exit 3\n")
	select {
	case err = <-done:
		exited = true
	case <-time.After(30 * time.Second):
		t.Fatalf("rkt did not exit after the app did:\n%q", out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("rkt exited with %v, want status 3:\n%q", err, out)
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before || after.Lflag&(unix.ICANON|unix.ECHO) != unix.ICANON|unix.ECHO {
		t.Errorf("rkt's terminal not restored:\nbefore %+v\nafter  %+v", *before, *after)
	}
}
