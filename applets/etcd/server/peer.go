package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// peerListener serves the peer port for three protocols: hashicorp/raft's
// RPCs (whose first byte is a small RPC type), the forwarding stream
// (streamMagic) that carries followers' proposals and read-index requests
// to the leader, and HTTP (whose first byte is an ASCII method letter) for
// membership queries. Connections are sorted by their first byte.
type peerListener struct {
	ln       net.Listener
	tls      *tls.Config // client side, for Dial; nil for plain TCP
	addr     net.Addr    // the advertised address (raft's idea of ours)
	raftCh   chan net.Conn
	httpCh   chan net.Conn
	streamCh chan net.Conn
	done     chan struct{}
	once     sync.Once
}

func newPeerListener(ln net.Listener, dialTLS *tls.Config, advertise net.Addr) *peerListener {
	p := &peerListener{ln: ln, tls: dialTLS, addr: advertise, raftCh: make(chan net.Conn, 16), httpCh: make(chan net.Conn, 16), streamCh: make(chan net.Conn, 16), done: make(chan struct{})}
	go p.acceptLoop()
	return p
}

func (p *peerListener) acceptLoop() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			p.Close()
			return
		}
		go p.sort(c)
	}
}

// sort peeks at the first byte of c and hands c to raft, to the
// forwarding stream (without the magic byte) or to HTTP.
func (p *peerListener) sort(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	b, err := br.Peek(1)
	if err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	ch := p.raftCh
	switch {
	case b[0] == streamMagic:
		br.Discard(1)
		ch = p.streamCh
	case b[0] >= 'A':
		ch = p.httpCh
	}
	pc := &peekedConn{Conn: c, r: br}
	select {
	case ch <- pc:
	case <-p.done:
		c.Close()
	}
}

// Accept, Close and Addr make the raft side a net.Listener (raft.StreamLayer).
func (p *peerListener) Accept() (net.Conn, error) {
	select {
	case c := <-p.raftCh:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *peerListener) Close() error {
	p.once.Do(func() {
		close(p.done)
		p.ln.Close()
	})
	return nil
}

func (p *peerListener) Addr() net.Addr { return p.addr }

// Dial connects to another member's peer port for raft.
func (p *peerListener) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if p.tls != nil {
		return tls.DialWithDialer(d, "tcp", string(address), p.tls)
	}
	return d.Dial("tcp", string(address))
}

// streams delivers the forwarding streams that followers open; it is
// closed with the listener.
func (p *peerListener) streams() <-chan net.Conn {
	out := make(chan net.Conn)
	go func() {
		defer close(out)
		for {
			select {
			case c := <-p.streamCh:
				select {
				case out <- c:
				case <-p.done:
					c.Close()
					return
				}
			case <-p.done:
				return
			}
		}
	}()
	return out
}

// httpListener is the HTTP side of the peer port.
func (p *peerListener) httpListener() net.Listener {
	return &chanListener{p: p, closed: make(chan struct{})}
}

type chanListener struct {
	p      *peerListener
	once   sync.Once
	closed chan struct{}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.p.httpCh:
		return c, nil
	case <-l.p.done:
		return nil, net.ErrClosed
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.p.ln.Addr() }

type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }
