package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/corebox/corebox/applets/etcd/store"
)

// The forwarding stream carries a follower's proposals and read-index
// requests to the leader over one long-lived peer connection per follower,
// instead of one HTTP request each: requests and replies are framed and
// pipelined, each side writes whatever is queued before it flushes, so
// that under load many requests share each write system call.
//
// A connection starts with streamMagic (which sorts it away from raft's
// RPCs and from HTTP on the peer port). Then each request is
//
//	uint32 length of the rest | kind byte | uint64 request id | body
//
// and each reply, in the order of the requests, is
//
//	uint32 length of the rest | uint64 request id | body (JSON)
const (
	streamMagic byte = '!'

	frameProposal  byte = 'p' // body: a raft entry; reply: forwarded
	frameReadIndex byte = 'r' // no body; reply: readIndexReply

	// maxReplyBytes bounds a reply frame (an event may carry two values).
	maxReplyBytes = 64 << 20
)

// forwarded is the leader's answer to a forwarded proposal.
type forwarded struct {
	Event     *store.Event `json:"event,omitempty"`
	EtcdIndex uint64       `json:"etcd_index"`
	Error     *store.Error `json:"error,omitempty"`
	Other     string       `json:"other,omitempty"` // a non-etcd error
	Index     uint64       `json:"index"`           // the entry's raft index
}

// readIndexReply is the leader's answer to a read-index request.
type readIndexReply struct {
	Index uint64       `json:"index"`
	Error *store.Error `json:"error,omitempty"`
}

func writeFrame(w *bufio.Writer, head []byte, body []byte) error {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(head)+len(body)))
	w.Write(n[:])
	w.Write(head)
	_, err := w.Write(body)
	return err
}

// readFrame reads one frame of at most max bytes (after the length).
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if int64(size) > int64(max) {
		return nil, fmt.Errorf("frame of %d bytes exceeds the limit of %d", size, max)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// ---- the leader's side ----

// queuedReply is one request of a stream in progress at the leader.
type queuedReply struct {
	id    uint64
	reply func() any // blocks until the answer is known
}

// serveStream answers one follower's stream until it closes. Proposals go
// to raft as they arrive (raft batches them); the replies are written in
// order by a second goroutine.
func (s *Server) serveStream(c net.Conn) {
	defer c.Close()
	queue := make(chan queuedReply, 4096)
	written := make(chan struct{})
	go s.writeReplies(c, queue, written)
	defer func() {
		close(queue)
		<-written
	}()
	br := bufio.NewReaderSize(c, 64<<10)
	for {
		f, err := readFrame(br, int(2*s.cfg.MaxRequestBytes)+1024)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.log.Debug("forwarding stream", "peer", c.RemoteAddr(), "err", err)
			}
			return
		}
		if len(f) < 9 {
			s.log.Warn("forwarding stream: short frame", "peer", c.RemoteAddr())
			return
		}
		kind, id, body := f[0], binary.BigEndian.Uint64(f[1:9]), f[9:]
		var q queuedReply
		switch kind {
		case frameProposal:
			q = queuedReply{id: id, reply: s.applyForwarded(body)}
		case frameReadIndex:
			done := make(chan readIndexReply, 1)
			go func() { done <- s.answerReadIndex() }()
			q = queuedReply{id: id, reply: func() any { return <-done }}
		default:
			s.log.Warn("forwarding stream: unknown frame kind", "peer", c.RemoteAddr(), "kind", kind)
			return
		}
		select {
		case queue <- q:
		case <-s.stop:
			return
		}
	}
}

func (s *Server) writeReplies(c net.Conn, queue <-chan queuedReply, written chan<- struct{}) {
	defer close(written)
	bw := bufio.NewWriterSize(c, 64<<10)
	var head [8]byte
	broken := false
	for q := range queue {
		r := q.reply()
		if broken {
			continue // drain, so that the reader never blocks
		}
		b, err := json.Marshal(r)
		if err == nil {
			binary.BigEndian.PutUint64(head[:], q.id)
			err = writeFrame(bw, head[:], b)
		}
		if err == nil && len(queue) == 0 {
			err = bw.Flush()
		}
		if err != nil {
			broken = true
			c.Close()
		}
	}
}

// applyForwarded submits a forwarded entry and returns how to wait for
// its answer.
func (s *Server) applyForwarded(entry []byte) func() any {
	if s.raft.State() != raft.Leader {
		return func() any { return forwarded{Error: store.NewError(store.EcodeLeaderElect, "", 0)} }
	}
	done := s.submit(entry)
	return func() any {
		p := <-done
		var fw forwarded
		if p.err != nil {
			se, ok := p.err.(*store.Error)
			if !ok {
				se = store.NewError(store.EcodeRaftInternal, p.err.Error(), 0)
			}
			fw.Error = se
			return fw
		}
		fw.Index = p.index
		select { // let the followers learn the commit index now
		case s.nudge <- p.index:
		default:
		}
		if p.res.Event != nil {
			fw.Event, fw.EtcdIndex = p.res.Event, p.res.Event.EtcdIndex
		}
		if p.res.Err != nil {
			if se, ok := p.res.Err.(*store.Error); ok {
				fw.Error = se
			} else {
				fw.Other = p.res.Err.Error()
			}
		}
		return fw
	}
}

func (s *Server) answerReadIndex() readIndexReply {
	if s.raft.State() != raft.Leader {
		return readIndexReply{Error: store.NewError(store.EcodeLeaderElect, "", 0)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := s.leaderReadIndex(ctx)
	if err != nil {
		se, ok := err.(*store.Error)
		if !ok {
			se = store.NewError(store.EcodeRaftInternal, err.Error(), 0)
		}
		return readIndexReply{Error: se}
	}
	return readIndexReply{Index: idx}
}

// ---- the follower's side ----

// forwarder keeps the stream to the current leader.
type forwarder struct {
	dial func(addr raft.ServerAddress) (net.Conn, error)
	mu   sync.Mutex
	cur  *stream
}

// stream is one connection to a leader.
type stream struct {
	addr raft.ServerAddress
	conn net.Conn
	out  chan *call
	done chan struct{} // closed when the stream broke

	mu    sync.Mutex
	next  uint64
	calls map[uint64]*call
	err   error
}

type call struct {
	kind  byte
	id    uint64
	body  []byte
	reply chan []byte // buffered: the reader never blocks on it
}

// do sends one request to the leader at addr and returns its reply.
func (fw *forwarder) do(ctx context.Context, addr raft.ServerAddress, kind byte, body []byte) ([]byte, error) {
	st, err := fw.stream(addr)
	if err != nil {
		return nil, err
	}
	c := &call{kind: kind, body: body, reply: make(chan []byte, 1)}
	st.mu.Lock()
	if st.err != nil {
		st.mu.Unlock()
		return nil, st.err
	}
	st.next++
	c.id = st.next
	st.calls[c.id] = c
	st.mu.Unlock()
	forget := func() {
		st.mu.Lock()
		delete(st.calls, c.id)
		st.mu.Unlock()
	}
	select {
	case st.out <- c:
	case <-st.done:
		forget()
		return nil, st.broken()
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
	select {
	case b := <-c.reply:
		return b, nil
	case <-st.done:
		forget()
		return nil, st.broken()
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

// stream returns a working stream to addr, dialing one if needed.
func (fw *forwarder) stream(addr raft.ServerAddress) (*stream, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if st := fw.cur; st != nil {
		select {
		case <-st.done:
		default:
			if st.addr == addr {
				return st, nil
			}
			st.fail(errors.New("the leader changed"))
		}
	}
	conn, err := fw.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to the leader at %s: %w", addr, err)
	}
	if _, err := conn.Write([]byte{streamMagic}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("connecting to the leader at %s: %w", addr, err)
	}
	st := &stream{addr: addr, conn: conn, out: make(chan *call, 1024), done: make(chan struct{}), calls: map[uint64]*call{}}
	go st.writeLoop()
	go st.readLoop()
	fw.cur = st
	return st, nil
}

// close ends the current stream.
func (fw *forwarder) close() {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.cur != nil {
		fw.cur.fail(net.ErrClosed)
	}
}

func (st *stream) writeLoop() {
	bw := bufio.NewWriterSize(st.conn, 64<<10)
	var head [9]byte
	for {
		select {
		case <-st.done:
			return
		case c := <-st.out:
			head[0] = c.kind
			binary.BigEndian.PutUint64(head[1:], c.id)
			err := writeFrame(bw, head[:], c.body)
			if err == nil && len(st.out) == 0 {
				err = bw.Flush()
			}
			if err != nil {
				st.fail(err)
				return
			}
		}
	}
}

func (st *stream) readLoop() {
	br := bufio.NewReaderSize(st.conn, 64<<10)
	for {
		f, err := readFrame(br, maxReplyBytes)
		if err == nil && len(f) < 8 {
			err = errors.New("short reply frame")
		}
		if err != nil {
			st.fail(err)
			return
		}
		id := binary.BigEndian.Uint64(f[:8])
		st.mu.Lock()
		c := st.calls[id]
		delete(st.calls, id)
		st.mu.Unlock()
		if c != nil {
			c.reply <- f[8:]
		}
	}
}

// fail breaks the stream: every call waiting on it gets err.
func (st *stream) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.err != nil {
		return
	}
	st.err = fmt.Errorf("forwarding to the leader at %s: %w", st.addr, err)
	close(st.done)
	st.conn.Close()
	st.calls = nil
}

func (st *stream) broken() error {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.err
}

// forward commits an entry through the leader and returns its result and
// raft index.
func (s *Server) forward(ctx context.Context, entry []byte) (result, uint64, error) {
	addr, err := s.leaderAddr(ctx)
	if err != nil {
		return result{}, 0, err
	}
	if addr == "" {
		r, err := s.propose(ctx, entry)
		return r, 0, err
	}
	b, err := s.forwarder.do(ctx, addr, frameProposal, entry)
	if err != nil {
		return result{}, 0, errRaft(err.Error())
	}
	var fw forwarded
	if err := json.Unmarshal(b, &fw); err != nil {
		return result{}, 0, errRaft(fmt.Sprintf("the leader's answer: %v", err))
	}
	switch {
	case fw.Other != "":
		return result{}, 0, errRaft(fw.Other)
	case fw.Error != nil && fw.Event == nil && fw.Index == 0:
		return result{}, 0, fw.Error // raft trouble at the leader (300/301)
	}
	if fw.Event != nil {
		fw.Event.EtcdIndex = fw.EtcdIndex
	}
	r := result{Event: fw.Event}
	if fw.Error != nil {
		r.Err = fw.Error
	}
	return r, fw.Index, nil
}

// readIndex makes a following local read linearizable: it learns the
// leader's commit index after the leader confirmed it still leads, and
// waits until this member has applied that far.
func (s *Server) readIndex(ctx context.Context) error {
	if s.raft.State() == raft.Leader {
		idx, err := s.leaderReadIndex(ctx)
		if err != nil {
			return err
		}
		return s.waitApplied(ctx, idx)
	}
	addr, err := s.leaderAddr(ctx)
	if err != nil {
		return err
	}
	if addr == "" {
		return s.readIndex(ctx)
	}
	b, err := s.forwarder.do(ctx, addr, frameReadIndex, nil)
	if err != nil {
		return errRaft(fmt.Sprintf("asking the leader for a read index: %v", err))
	}
	var ri readIndexReply
	if err := json.Unmarshal(b, &ri); err != nil {
		return errRaft(fmt.Sprintf("the leader's read index: %v", err))
	}
	if ri.Error != nil {
		return ri.Error
	}
	return s.waitApplied(ctx, ri.Index)
}

// leaderAddr waits for a leader and returns its peer address, or "" when
// this member is the leader.
func (s *Server) leaderAddr(ctx context.Context) (raft.ServerAddress, error) {
	deadline := time.Now().Add(2 * s.cfg.ElectionTimeout)
	for {
		addr, id := s.raft.LeaderWithID()
		if addr != "" && string(id) != s.id {
			return addr, nil
		}
		if addr != "" && string(id) == s.id && s.raft.State() == raft.Leader {
			return "", nil // we became the leader meanwhile
		}
		if time.Now().After(deadline) {
			return "", errLeaderElection()
		}
		select {
		case <-ctx.Done():
			return "", errLeaderElection()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readRound is one leadership confirmation shared by the read-index
// requests that arrived before it began.
type readRound struct {
	done chan struct{}
	idx  uint64
	err  error
}

// leaderReadIndex returns a read index: a commit index taken after the
// request arrived, confirmed by a quorum still following this leader.
// Concurrent requests share one confirmation round.
func (s *Server) leaderReadIndex(ctx context.Context) (uint64, error) {
	s.leaderMu.Lock()
	ready := s.leaderReady
	s.leaderMu.Unlock()
	select {
	case <-ready:
	case <-ctx.Done():
		return 0, errLeaderElection()
	case <-time.After(2 * s.cfg.ElectionTimeout):
		return 0, errLeaderElection()
	}
	s.readMu.Lock()
	r := s.nextRead
	if r == nil {
		r = &readRound{done: make(chan struct{})}
		s.nextRead = r
		if !s.reading {
			s.reading = true
			go s.readRounds()
		}
	}
	s.readMu.Unlock()
	select {
	case <-r.done:
		return r.idx, r.err
	case <-ctx.Done():
		return 0, errLeaderElection()
	}
}

// readRounds runs confirmation rounds while requests wait for one.
func (s *Server) readRounds() {
	for {
		s.readMu.Lock()
		r := s.nextRead
		s.nextRead = nil
		if r == nil {
			s.reading = false
			s.readMu.Unlock()
			return
		}
		s.readMu.Unlock()
		// Every request of r arrived before this point: the commit index
		// read now covers every write they could have seen acknowledged.
		r.idx = s.raft.CommitIndex()
		if err := s.raft.VerifyLeader().Error(); err != nil {
			r.err = raftError(err)
		}
		close(r.done)
	}
}
