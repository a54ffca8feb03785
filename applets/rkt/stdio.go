package rkt

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/corebox/corebox/applets/rkt/container"
)

// stdioFiles returns files for the apps' stdin, stdout and stderr: rkt's
// own when they are files, otherwise pipes copied to and from the writers
// (in-process callers such as tests). The returned function waits for the
// copies to finish and closes what it opened.
func (c *cli) stdioFiles() ([3]*os.File, func(), error) {
	var files [3]*os.File
	var toClose []*os.File
	var wg sync.WaitGroup
	cleanup := func() {
		for _, f := range toClose {
			f.Close()
		}
		wg.Wait()
	}
	if c.env.Stdin != nil {
		files[0] = c.env.Stdin
	} else {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return files, nil, err
		}
		files[0], toClose = f, append(toClose, f)
	}
	for i, w := range []io.Writer{c.env.Stdout, c.env.Stderr} {
		if f, ok := w.(*os.File); ok {
			files[i+1] = f
			continue
		}
		r, pw, err := os.Pipe()
		if err != nil {
			cleanup()
			return files, nil, fmt.Errorf("creating a pipe for the apps' output: %w", err)
		}
		files[i+1] = pw
		toClose = append(toClose, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(w, r)
			r.Close()
		}()
	}
	return files, cleanup, nil
}

// podConsole is the terminal of an --interactive pod: the engine hands
// the pty master over a unix socket; rkt copies between it and its own
// terminal, which it puts in raw mode and restores afterwards.
type podConsole struct {
	sock     string
	listener *net.UnixListener
	master   *os.File
	in       *os.File
	out      io.Writer
	saved    *unix.Termios // rkt's terminal before raw mode; nil if not a tty
	copied   sync.WaitGroup
}

func newPodConsole(podDir string, in *os.File, out io.Writer) (*podConsole, error) {
	sock := filepath.Join(podDir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("--interactive: console socket: %w", err)
	}
	return &podConsole{sock: sock, listener: l, in: in, out: out}, nil
}

// accept receives the pty master once the container is created, and
// starts copying.
func (pc *podConsole) accept() error {
	m, err := container.ReceiveConsole(pc.listener)
	if err != nil {
		return fmt.Errorf("--interactive: receiving the terminal: %w", err)
	}
	pc.master = m
	if pc.in != nil {
		if t, err := unix.IoctlGetTermios(int(pc.in.Fd()), unix.TCGETS); err == nil {
			pc.saved = t
			raw := *t
			raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
			raw.Oflag &^= unix.OPOST
			raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
			raw.Cflag &^= unix.CSIZE | unix.PARENB
			raw.Cflag |= unix.CS8
			raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
			unix.IoctlSetTermios(int(pc.in.Fd()), unix.TCSETS, &raw)
			pc.resize()
		}
		go io.Copy(m, pc.in)
	}
	pc.copied.Add(1)
	go func() {
		defer pc.copied.Done()
		io.Copy(pc.out, m)
	}()
	return nil
}

// resize copies rkt's terminal size to the pod's.
func (pc *podConsole) resize() {
	if pc.master == nil || pc.in == nil {
		return
	}
	if ws, err := unix.IoctlGetWinsize(int(pc.in.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(pc.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// drain waits for the app's last output once it has exited.
func (pc *podConsole) drain() {
	if pc.master != nil {
		pc.copied.Wait()
	}
}

// Close restores rkt's terminal and closes the console.
func (pc *podConsole) Close() error {
	if pc.saved != nil {
		unix.IoctlSetTermios(int(pc.in.Fd()), unix.TCSETS, pc.saved)
	}
	if pc.master != nil {
		pc.master.Close()
	}
	return pc.listener.Close()
}
