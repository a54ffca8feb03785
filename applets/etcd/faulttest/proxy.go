package faulttest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mode is what a partition does to the connections it cuts.
type Mode int

const (
	// Stall holds the bytes: a cut connection stays open and nothing
	// crosses it until the partition heals, as when a network drops packets
	// and TCP retransmits them later. A new connection is accepted and
	// waits. Timeouts at the ends are what notice.
	Stall Mode = iota + 1
	// Refuse closes the cut connections at once, and every new one, as a
	// firewall rejecting them would.
	Refuse
)

func (m Mode) String() string {
	switch m {
	case Stall:
		return "stall"
	case Refuse:
		return "refuse"
	}
	return "open"
}

// Proxy is a TCP proxy in front of every member's peer port: member i's
// peers dial Addr(i), and the proxy forwards to member i's real peer port.
// It learns which member dialled a connection from the kernel's socket
// table (the dialling socket's inode, found among the members' open files
// under /proc), so that it can cut the links between chosen pairs of
// members, for raft's RPCs and for the forwarded proposals alike.
// Connections from a process that is not a member are never cut.
//
// Linux only: it reads /proc/net/tcp (IPv4, little-endian hosts).
type Proxy struct {
	targets []string
	lns     []net.Listener
	pid     func(i int) int

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever cut or closed change
	cut     map[[2]int]Mode
	conns   map[*proxied]struct{}
	closed  bool
	unknown int // connections whose dialling member was not found

	wg sync.WaitGroup
}

// NewProxy listens on a loopback port for each target (a member's real
// peer host:port). pid(i) is member i's pid, 0 when it does not run.
func NewProxy(targets []string, pid func(i int) int) (*Proxy, error) {
	p := &Proxy{targets: targets, pid: pid, changed: make(chan struct{}), cut: map[[2]int]Mode{}, conns: map[*proxied]struct{}{}}
	for i := range targets {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("proxy for %s: %w", targets[i], err)
		}
		p.lns = append(p.lns, ln)
	}
	for i, ln := range p.lns {
		p.wg.Add(1)
		go p.serve(i, ln)
	}
	return p, nil
}

// Addr is the proxy's host:port for member i.
func (p *Proxy) Addr(i int) string { return p.lns[i].Addr().String() }

// Partition cuts every link between members of different groups (member
// indexes), in both directions, and heals every other link. A member in
// no group keeps all its links.
func (p *Proxy) Partition(mode Mode, groups ...[]int) {
	group := map[int]int{}
	for g, members := range groups {
		for _, i := range members {
			group[i] = g + 1
		}
	}
	cut := map[[2]int]Mode{}
	for i, gi := range group {
		for j, gj := range group {
			if gi != gj {
				cut[[2]int{i, j}] = mode
			}
		}
	}
	p.set(cut)
}

// Heal restores every link.
func (p *Proxy) Heal() { p.set(map[[2]int]Mode{}) }

func (p *Proxy) set(cut map[[2]int]Mode) {
	p.mu.Lock()
	p.cut = cut
	var refused []*proxied
	for c := range p.conns {
		if cut[[2]int{c.src, c.dst}] == Refuse {
			refused = append(refused, c)
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	for _, c := range refused {
		c.close()
	}
}

// Unidentified is how many connections came from a process the proxy did
// not recognise as a member (they are never cut).
func (p *Proxy) Unidentified() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unknown
}

// Close stops listening and closes every proxied connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.changed)
	p.changed = make(chan struct{})
	conns := make([]*proxied, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, ln := range p.lns {
		ln.Close()
	}
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
	return nil
}

func (p *Proxy) serve(dst int, ln net.Listener) {
	defer p.wg.Done()
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(dst, in)
	}
}

// proxied is one connection through the proxy, from member src (-1 when
// unknown) to member dst.
type proxied struct {
	src, dst int
	in       net.Conn
	done     chan struct{}

	mu  sync.Mutex
	out net.Conn
}

func (c *proxied) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	close(c.done)
	c.in.Close()
	if c.out != nil {
		c.out.Close()
	}
}

// connect records out as c's far side unless c was closed meanwhile.
func (c *proxied) connect(out net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return false
	default:
		c.out = out
		return true
	}
}

func (p *Proxy) handle(dst int, in net.Conn) {
	defer p.wg.Done()
	c := &proxied{src: p.identify(in), dst: dst, in: in, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		in.Close()
		return
	}
	p.conns[c] = struct{}{}
	if c.src < 0 {
		p.unknown++
	}
	p.mu.Unlock()
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	if !p.gate(c) {
		return
	}
	out, err := net.DialTimeout("tcp", p.targets[dst], 5*time.Second)
	if err != nil {
		return
	}
	if !c.connect(out) {
		out.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.pipe(c, out, in)
		c.close()
	}()
	go func() {
		defer wg.Done()
		p.pipe(c, in, out)
		c.close()
	}()
	wg.Wait()
}

// pipe copies src to dst while c's link is open, holding the bytes while
// it is stalled.
func (p *Proxy) pipe(c *proxied, dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate(c) {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// gate waits while c's link is stalled; it reports whether the link is
// open (false: refused, or c or the proxy closed).
func (p *Proxy) gate(c *proxied) bool {
	for {
		p.mu.Lock()
		mode, changed, closed := p.cut[[2]int{c.src, c.dst}], p.changed, p.closed
		p.mu.Unlock()
		switch {
		case closed || mode == Refuse:
			return false
		case mode == 0:
			return true
		}
		select {
		case <-changed:
		case <-c.done:
			return false
		}
	}
}

// identify finds the member whose process holds the dialling end of in:
// the socket whose local address is in's remote address and whose remote
// address is in's local address. It returns -1 when none does.
func (p *Proxy) identify(in net.Conn) int {
	local, ok1 := in.RemoteAddr().(*net.TCPAddr) // the dialler's local address
	remote, ok2 := in.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return -1
	}
	inode, err := socketInode(procTCPAddr(local), procTCPAddr(remote))
	if err != nil {
		return -1
	}
	link := "socket:[" + inode + "]"
	for i := range p.targets {
		pid := p.pid(i)
		if pid <= 0 {
			continue
		}
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "fd", fd.Name())); err == nil && l == link {
				return i
			}
		}
	}
	return -1
}

// procTCPAddr formats a as /proc/net/tcp does: the IPv4 address as a
// host-order (little-endian) hex word, then the port in hex.
func procTCPAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		return ""
	}
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
}

// socketInode finds the inode of the TCP socket from local to remote in
// /proc/net/tcp.
func socketInode(local, remote string) (string, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 10 && fields[1] == local && fields[2] == remote {
			return fields[9], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no socket %s -> %s in /proc/net/tcp", local, remote)
}
