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

	"github.com/corebox/corebox/applets/etcd/internal/wire"

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
//	uint32 length of the rest | uint64 request id | body
//
// with a body as encodeOutcome or encodeReadIndex write it.
const (
	streamMagic byte = '!'

	frameProposal  byte = 'p' // body: a raft entry; reply: an outcome
	frameReadIndex byte = 'r' // no body; reply: a read index

	// maxReplyBytes bounds a reply frame (an event may carry two values).
	maxReplyBytes = 64 << 20
)

// Kinds of outcome of a forwarded proposal (the first byte of its reply).
const (
	outcomeApplied byte = 'a' // applied: the rendered event or the store's refusal
	outcomeRaft    byte = 'r' // not committed: an etcd error (300, 301)
	outcomeOther   byte = 'o' // not committed: another error, as text
)

// rendered is a write's answer as the member that applied it renders it
// for the client, so that a follower passes it on without decoding it.
type rendered struct {
	status    int
	etcdIndex uint64
	action    string
	body      []byte // the event's JSON, newline-terminated
}

// render renders ev as etcd's HTTP layer answers it.
func render(ev *store.Event) (*rendered, error) {
	b, err := json.Marshal(wireEvent(ev))
	if err != nil {
		return nil, err
	}
	return &rendered{status: eventStatus(ev), etcdIndex: ev.EtcdIndex, action: ev.Action, body: append(b, '\n')}, nil
}

// encodeOutcome encodes a proposal's outcome for the follower that
// forwarded it. An applied outcome is: raft index, then a flag byte (1: an
// event follows, 2: a store error follows), then the event as status,
// etcd index, action and rendered body, then the error as JSON; numbers as
// uvarints, byte strings with a uvarint length.
func encodeOutcome(p proposed) []byte {
	if p.err != nil {
		if se, ok := p.err.(*store.Error); ok {
			b, _ := json.Marshal(se)
			return append([]byte{outcomeRaft}, b...)
		}
		return append([]byte{outcomeOther}, p.err.Error()...)
	}
	var ev *rendered
	if p.res.Event != nil {
		var err error
		if ev, err = render(p.res.Event); err != nil {
			return append([]byte{outcomeOther}, err.Error()...)
		}
	}
	var errJSON []byte
	if p.res.Err != nil {
		se, ok := p.res.Err.(*store.Error)
		if !ok {
			return append([]byte{outcomeOther}, p.res.Err.Error()...)
		}
		errJSON, _ = json.Marshal(se)
	}
	e := wire.Encoder{B: []byte{outcomeApplied}}
	e.Uvarint(p.index)
	var flags byte
	if ev != nil {
		flags |= 1
	}
	if errJSON != nil {
		flags |= 2
	}
	e.Byte(flags)
	if ev != nil {
		e.Uvarint(uint64(ev.status))
		e.Uvarint(ev.etcdIndex)
		e.String(ev.action)
		e.Bytes(ev.body)
	}
	if errJSON != nil {
		e.Bytes(errJSON)
	}
	return e.B
}

// decodeOutcome decodes what encodeOutcome wrote: the result and raft
// index of an applied proposal, or the error that kept it from raft.
func decodeOutcome(b []byte) (result, uint64, error) {
	if len(b) == 0 {
		return result{}, 0, errors.New("empty outcome")
	}
	kind, b := b[0], b[1:]
	switch kind {
	case outcomeRaft:
		var se store.Error
		if err := json.Unmarshal(b, &se); err != nil {
			return result{}, 0, fmt.Errorf("outcome: %w", err)
		}
		return result{}, 0, &se
	case outcomeOther:
		return result{}, 0, errRaft(string(b))
	case outcomeApplied:
	default:
		return result{}, 0, fmt.Errorf("outcome of unknown kind %q", kind)
	}
	d := wire.Decoder{B: b}
	index := d.Uvarint()
	flags := d.Byte()
	var r result
	if flags&1 != 0 {
		ev := &rendered{}
		ev.status = int(d.Uvarint())
		ev.etcdIndex = d.Uvarint()
		ev.action = d.String()
		ev.body = d.Bytes()
		r.rendered = ev
	}
	if flags&2 != 0 {
		var se store.Error
		if err := json.Unmarshal(d.Bytes(), &se); err != nil {
			d.Fail(err)
		}
		r.Err = &se
	}
	switch {
	case d.Err != nil:
		return result{}, 0, fmt.Errorf("outcome: %w", d.Err)
	case flags&^3 != 0:
		return result{}, 0, fmt.Errorf("outcome: unknown flags %#x", flags)
	case len(d.B) != 0:
		return result{}, 0, fmt.Errorf("outcome: %d bytes too many", len(d.B))
	case r.rendered != nil && (r.rendered.status < 100 || r.rendered.status > 599):
		return result{}, 0, fmt.Errorf("outcome: status %d", r.rendered.status)
	}
	return r, index, nil
}

// encodeReadIndex encodes a read index, or the error that kept the
// leader from giving one (as JSON after a zero byte).
func encodeReadIndex(idx uint64, err *store.Error) []byte {
	if err != nil {
		b, _ := json.Marshal(err)
		return append([]byte{0}, b...)
	}
	return binary.AppendUvarint([]byte{1}, idx)
}

func decodeReadIndex(b []byte) (uint64, error) {
	switch {
	case len(b) > 1 && b[0] == 0:
		var se store.Error
		if err := json.Unmarshal(b[1:], &se); err != nil {
			return 0, fmt.Errorf("read index: %w", err)
		}
		return 0, &se
	case len(b) > 1 && b[0] == 1:
		idx, n := binary.Uvarint(b[1:])
		if n <= 0 || n != len(b)-1 {
			return 0, errors.New("read index: bad number")
		}
		return idx, nil
	}
	return 0, errors.New("read index: bad reply")
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
	reply func() []byte // blocks until the answer is known
}

// serveStream answers one follower's stream until it closes. Proposals go
// to the batcher as they arrive; the replies are written in order by a
// second goroutine.
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
			done := make(chan []byte, 1)
			go func() { done <- s.answerReadIndex() }()
			q = queuedReply{id: id, reply: func() []byte { return <-done }}
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
		b := q.reply()
		if broken {
			continue // drain, so that the reader never blocks
		}
		binary.BigEndian.PutUint64(head[:], q.id)
		err := writeFrame(bw, head[:], b)
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
// its encoded outcome.
func (s *Server) applyForwarded(entry []byte) func() []byte {
	if s.raft.State() != raft.Leader {
		return func() []byte { return encodeOutcome(proposed{err: errLeaderElection()}) }
	}
	done := s.submit(entry)
	return func() []byte {
		var p proposed
		select {
		case p = <-done:
		case <-s.stop: // the batcher is gone: nobody will answer
			p = proposed{err: errLeaderElection()}
		}
		if p.err == nil {
			select { // let the followers learn the commit index now
			case s.nudge <- p.index:
			default:
			}
		}
		return encodeOutcome(p)
	}
}

func (s *Server) answerReadIndex() []byte {
	if s.raft.State() != raft.Leader {
		return encodeReadIndex(0, store.NewError(store.EcodeLeaderElect, "", 0))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	idx, err := s.leaderReadIndex(ctx)
	if err != nil {
		se, ok := err.(*store.Error)
		if !ok {
			se = store.NewError(store.EcodeRaftInternal, err.Error(), 0)
		}
		return encodeReadIndex(0, se)
	}
	return encodeReadIndex(idx, nil)
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
	r, index, err := decodeOutcome(b)
	if err != nil {
		if _, ok := err.(*store.Error); ok {
			return result{}, 0, err // raft trouble at the leader (300/301)
		}
		return result{}, 0, errRaft(fmt.Sprintf("the leader's answer: %v", err))
	}
	return r, index, nil
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
	idx, err := decodeReadIndex(b)
	if err != nil {
		if _, ok := err.(*store.Error); ok {
			return err
		}
		return errRaft(fmt.Sprintf("the leader's read index: %v", err))
	}
	return s.waitApplied(ctx, idx)
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
