package vmtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
)

// Network is an Ethernet switch in the test process that joins VMs on one
// segment. Each VM started with Config.Net set gets a NIC whose QEMU backend
// (-netdev stream) connects to the switch's unix socket; frames travel as a
// 4-byte big-endian length followed by the Ethernet frame. The switch learns
// source MACs, sends a unicast frame to a known MAC's port only and floods
// the rest (broadcast, multicast, unknown) to every other port. A port whose
// queue is full loses the frame, as on a real switch.
//
// The segment has no DHCP server and no router: guests configure their
// addresses on it themselves (the user-mode NIC, eth0, still has slirp's).
type Network struct {
	dir string
	ln  *net.UnixListener

	mu       sync.Mutex
	vms      int                // VMs attached so far; numbers their MACs
	ports    map[*port]struct{} // connected QEMU backends
	macTable map[[6]byte]*port  // learnt source MACs
	closed   bool
	wg       sync.WaitGroup
}

// port is one QEMU backend's connection to the switch.
type port struct {
	conn net.Conn
	out  chan []byte // frames to write, framing included
}

// maxFrame bounds the length field of the stream framing; QEMU's own limit
// is the size of its receive buffer (69632 bytes).
const maxFrame = 69632

// NewNetwork starts a switch listening on a unix socket in a new temporary
// directory. Close stops it and removes the directory.
func NewNetwork() (*Network, error) {
	dir, err := os.MkdirTemp("", "vmtest-net-")
	if err != nil {
		return nil, fmt.Errorf("vmtest: creating the switch's directory: %w", err)
	}
	sock := filepath.Join(dir, "switch.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("vmtest: listening on %s: %w", sock, err)
	}
	n := &Network{
		dir:      dir,
		ln:       ln,
		ports:    make(map[*port]struct{}),
		macTable: make(map[[6]byte]*port),
	}
	n.wg.Add(1)
	go n.accept()
	return n, nil
}

// Socket returns the path of the unix socket that QEMU's stream backends
// connect to.
func (n *Network) Socket() string {
	return n.ln.Addr().String()
}

// attach reserves the next VM's MAC, 52:54:00:12:34:NN with NN counting from
// 01 and skipping 56, the user-mode NIC's.
func (n *Network) attach() (sock, mac string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return "", "", errors.New("vmtest: attaching a VM to a closed Network")
	}
	n.vms++
	nn := n.vms
	if nn >= 0x56 {
		nn++
	}
	if nn > 0xff {
		return "", "", fmt.Errorf("vmtest: a Network has room for %d VMs", 0xfe)
	}
	return n.Socket(), fmt.Sprintf("52:54:00:12:34:%02x", nn), nil
}

// Close stops the switch, disconnects every VM's backend (QEMU keeps running
// with its NIC unplugged from any wire) and removes the socket's directory.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	err := n.ln.Close()
	for p := range n.ports {
		p.conn.Close()
	}
	n.mu.Unlock()
	n.wg.Wait()
	if rmErr := os.RemoveAll(n.dir); err == nil {
		err = rmErr
	}
	return err
}

func (n *Network) accept() {
	defer n.wg.Done()
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			return // closed
		}
		p := &port{conn: conn, out: make(chan []byte, 256)}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			conn.Close()
			return
		}
		n.ports[p] = struct{}{}
		n.mu.Unlock()
		n.wg.Add(2)
		go n.readPort(p)
		go n.writePort(p)
	}
}

// readPort switches the frames that come from p until p's connection ends.
func (n *Network) readPort(p *port) {
	defer n.wg.Done()
	defer n.detach(p)
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(p.conn, hdr[:]); err != nil {
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size > maxFrame {
			return // not our framing; drop the port
		}
		msg := make([]byte, 4+size)
		copy(msg, hdr[:])
		if _, err := io.ReadFull(p.conn, msg[4:]); err != nil {
			return
		}
		if size >= 14 {
			n.forward(p, msg)
		}
	}
}

// forward learns the source of msg (a framed Ethernet frame) and queues it
// on the ports it goes to.
func (n *Network) forward(from *port, msg []byte) {
	var dst, src [6]byte
	copy(dst[:], msg[4:10])
	copy(src[:], msg[10:16])
	n.mu.Lock()
	defer n.mu.Unlock()
	if src[0]&1 == 0 {
		n.macTable[src] = from
	}
	if to, ok := n.macTable[dst]; ok && dst[0]&1 == 0 {
		if to != from {
			to.send(msg)
		}
		return
	}
	for p := range n.ports {
		if p != from {
			p.send(msg)
		}
	}
}

// send queues msg on p, dropping it when p's queue is full. The caller holds
// the Network's lock, which keeps p.out open.
func (p *port) send(msg []byte) {
	select {
	case p.out <- msg:
	default:
	}
}

func (n *Network) writePort(p *port) {
	defer n.wg.Done()
	for msg := range p.out {
		if _, err := p.conn.Write(msg); err != nil {
			p.conn.Close() // readPort then detaches p
		}
	}
}

// detach forgets p and the MACs learnt on it, and ends its writer.
func (n *Network) detach(p *port) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p.conn.Close()
	delete(n.ports, p)
	for mac, q := range n.macTable {
		if q == p {
			delete(n.macTable, mac)
		}
	}
	close(p.out)
}
