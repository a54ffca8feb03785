// Command testinit is the init of the initramfs that vmtest's own tests
// boot: it stands in for corebox so that the harness can be tested without
// it. As PID 1 it mounts /proc, /sys and /dev, prints "testinit ready" and
// then reads command lines from the console, enough of a shell for vmtest.Run:
// statements split on ';', words with single and double quotes, and $? for
// the last status. Its commands:
//
//	echo WORD...               print the words
//	cat FILE...                print files
//	ls DIR                     print a directory's names, one a line
//	true, false                status 0, 1
//	ifup IFACE [ADDR/PREFIX]   bring a link up, with an IPv4 address
//	sendframe IFACE TEXT       broadcast TEXT in an Ethernet frame (type 0x88b5)
//	recvframe IFACE SECONDS    wait for such a frame; print "SRCMAC TEXT"
//	serve PORT TEXT            in the background, answer TCP connections on PORT with TEXT
//	poweroff, reboot           end the machine
//
// An unknown command has status 127, as in a shell.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// etherType marks the frames of sendframe and recvframe (IEEE's local
// experimental type).
const etherType = 0x88b5

func main() {
	for _, m := range []struct{ fstype, dir string }{
		{"proc", "/proc"}, {"sysfs", "/sys"}, {"devtmpfs", "/dev"},
	} {
		os.MkdirAll(m.dir, 0o755)
		if err := syscall.Mount(m.fstype, m.dir, m.fstype, 0, ""); err != nil {
			fmt.Printf("testinit: mounting %s: %v\n", m.dir, err)
		}
	}
	fmt.Println("testinit ready")
	status := 0
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		for _, stmt := range splitStatements(in.Text()) {
			words := splitWords(stmt, status)
			if len(words) == 0 {
				continue
			}
			status = run(os.Stdout, words)
		}
	}
	fmt.Printf("testinit: reading the console: %v\n", in.Err())
	powerOff()
}

// splitStatements splits a line on the semicolons outside quotes.
func splitStatements(line string) []string {
	var stmts []string
	var quote rune
	start := 0
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == ';':
			stmts = append(stmts, line[start:i])
			start = i + 1
		}
	}
	return append(stmts, line[start:])
}

// splitWords splits a statement into words, removing quotes and expanding $?
// outside single quotes.
func splitWords(stmt string, status int) []string {
	var words []string
	var word strings.Builder
	inWord := false
	var quote rune
	rs := []rune(stmt)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'' && r == '\'', quote == '"' && r == '"':
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote, inWord = r, true
		case quote != '\'' && r == '$' && i+1 < len(rs) && rs[i+1] == '?':
			word.WriteString(strconv.Itoa(status))
			inWord = true
			i++
		case quote == 0 && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// run executes one command and returns its status.
func run(out io.Writer, w []string) int {
	err := func() error {
		switch w[0] {
		case "echo":
			fmt.Fprintln(out, strings.Join(w[1:], " "))
		case "cat":
			for _, f := range w[1:] {
				b, err := os.ReadFile(f)
				if err != nil {
					return err
				}
				out.Write(b)
			}
		case "ls":
			if len(w) != 2 {
				return errors.New("usage: ls DIR")
			}
			ents, err := os.ReadDir(w[1])
			if err != nil {
				return err
			}
			for _, e := range ents {
				fmt.Fprintln(out, e.Name())
			}
		case "true":
		case "false":
			return errFalse
		case "ifup":
			if len(w) != 2 && len(w) != 3 {
				return errors.New("usage: ifup IFACE [ADDR/PREFIX]")
			}
			return ifup(w[1:])
		case "sendframe":
			if len(w) != 3 {
				return errors.New("usage: sendframe IFACE TEXT")
			}
			return sendFrame(w[1], w[2])
		case "recvframe":
			if len(w) != 3 {
				return errors.New("usage: recvframe IFACE SECONDS")
			}
			return recvFrame(out, w[1], w[2])
		case "serve":
			if len(w) != 3 {
				return errors.New("usage: serve PORT TEXT")
			}
			return serve(w[1], w[2])
		case "poweroff":
			powerOff()
		case "reboot":
			syscall.Sync()
			return syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
		default:
			fmt.Fprintf(out, "testinit: %s: not found\n", w[0])
			return errNotFound
		}
		return nil
	}()
	switch {
	case err == nil:
		return 0
	case err == errFalse:
		return 1
	case err == errNotFound:
		return 127
	}
	fmt.Fprintf(out, "testinit: %s: %v\n", w[0], err)
	return 2
}

var (
	errFalse    = errors.New("false")
	errNotFound = errors.New("not found")
)

func powerOff() {
	syscall.Sync()
	err := syscall.Reboot(syscall.LINUX_REBOOT_CMD_POWER_OFF)
	fmt.Printf("testinit: poweroff: %v\n", err)
}

// ifreq is struct ifreq with room for a flags word or a sockaddr_in.
type ifreq struct {
	name [16]byte
	data [24]byte
}

func ioctl(fd int, req uintptr, r *ifreq) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(r))); e != 0 {
		return e
	}
	return nil
}

func ifup(args []string) error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var r ifreq
	copy(r.name[:], args[0])
	if len(args) == 2 {
		ip, ipnet, err := net.ParseCIDR(args[1])
		if err != nil || ip.To4() == nil {
			return fmt.Errorf("not an IPv4 ADDR/PREFIX: %q", args[1])
		}
		for _, a := range []struct {
			req uintptr
			ip  net.IP
		}{{syscall.SIOCSIFADDR, ip.To4()}, {syscall.SIOCSIFNETMASK, net.IP(ipnet.Mask).To4()}} {
			r.data = [24]byte{}
			binary.LittleEndian.PutUint16(r.data[0:], syscall.AF_INET)
			copy(r.data[4:8], a.ip)
			if err := ioctl(fd, a.req, &r); err != nil {
				return fmt.Errorf("setting %s on %s: %w", a.ip, args[0], err)
			}
		}
	}
	r.data = [24]byte{}
	if err := ioctl(fd, syscall.SIOCGIFFLAGS, &r); err != nil {
		return err
	}
	flags := binary.LittleEndian.Uint16(r.data[:]) | syscall.IFF_UP
	binary.LittleEndian.PutUint16(r.data[:], flags)
	return ioctl(fd, syscall.SIOCSIFFLAGS, &r)
}

// htons turns a protocol number into the byte order AF_PACKET wants.
func htons(v uint16) uint16 { return v<<8 | v>>8 }

func packetSocket(iface string) (int, *net.Interface, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return -1, nil, err
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(etherType)))
	if err != nil {
		return -1, nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: ifi.Index}); err != nil {
		syscall.Close(fd)
		return -1, nil, err
	}
	return fd, ifi, nil
}

func sendFrame(iface, text string) error {
	fd, ifi, err := packetSocket(iface)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	frame := make([]byte, 0, 60)
	frame = append(frame, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	frame = append(frame, ifi.HardwareAddr...)
	frame = binary.BigEndian.AppendUint16(frame, etherType)
	frame = binary.BigEndian.AppendUint16(frame, uint16(len(text)))
	frame = append(frame, text...)
	for len(frame) < 60 {
		frame = append(frame, 0)
	}
	to := &syscall.SockaddrLinklayer{Protocol: htons(etherType), Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], frame[:6])
	return syscall.Sendto(fd, frame, 0, to)
}

func recvFrame(out io.Writer, iface, seconds string) error {
	secs, err := strconv.Atoi(seconds)
	if err != nil {
		return err
	}
	fd, _, err := packetSocket(iface)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	buf := make([]byte, 2048)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return errors.New("no frame before the deadline")
		}
		tv := syscall.NsecToTimeval(left.Nanoseconds())
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		n, _, err := syscall.Recvfrom(fd, buf, 0)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		frame := buf[:n]
		if len(frame) < 16 || binary.BigEndian.Uint16(frame[12:]) != etherType {
			continue
		}
		size := int(binary.BigEndian.Uint16(frame[14:]))
		text := frame[16:]
		if size > len(text) {
			continue
		}
		fmt.Fprintf(out, "%s %s\n", net.HardwareAddr(frame[6:12]), text[:size])
		return nil
	}
}

func serve(port, text string) error {
	ln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, text)
			c.Close()
		}
	}()
	return nil
}
