package container

import (
	"errors"
	"fmt"
	"net"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newPty opens a pseudo-terminal in the container's devpts and returns its
// master and slave.
func newPty(size *specs.Box) (master, slave int, err error) {
	master, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, -1, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(master)
		return -1, -1, fmt.Errorf("unlocking the pty: %w", err)
	}
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(master), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		unix.Close(master)
		return -1, -1, fmt.Errorf("opening the pty's peer: %w", errno)
	}
	slave = int(r)
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws)
	}
	return master, slave, nil
}

// sendConsole passes the pty master over the console socket, as runc
// does: one SCM_RIGHTS message whose payload is the master's name.
func sendConsole(sock, master int) error {
	name := []byte("/dev/ptmx")
	if err := unix.Sendmsg(sock, name, unix.UnixRights(master), nil, 0); err != nil {
		return fmt.Errorf("sending the console to the console socket: %w", err)
	}
	return nil
}

// ReceiveConsole accepts one connection on l and returns the pty master a
// container sends over it (the receiving end of Options.ConsoleSocket).
func ReceiveConsole(l *net.UnixListener) (*os.File, error) {
	conn, err := l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("accepting the console connection: %w", err)
	}
	defer conn.Close()
	return RecvConsole(conn)
}

// RecvConsole reads one pty master from conn.
func RecvConsole(conn *net.UnixConn) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(name, oob)
	if err != nil {
		return nil, fmt.Errorf("receiving the console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receiving the console: no descriptor in the message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("receiving the console: no descriptor in the message")
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}
