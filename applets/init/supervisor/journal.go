package supervisor

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Entry is one line of a unit's output or one message of the supervisor
// about a unit.
type Entry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Unit    string    `json:"unit"`
	Source  string    `json:"source"` // "stdout" (the unit's stdout and stderr) or "init"
	Message string    `json:"message"`
}

// journal keeps the last lines of every unit in memory and, when dir is
// set, appends every line to dir/UNIT.log as JSON.
type journal struct {
	perUnit int
	dir     string

	mu     sync.Mutex
	seq    uint64
	rings  map[string]*ring
	notify chan struct{} // closed and replaced on every append
	files  map[string]*os.File
}

type ring struct {
	entries []Entry
	next    int
	full    bool
}

func newJournal(perUnit int, dir string) *journal {
	return &journal{perUnit: perUnit, dir: dir, rings: map[string]*ring{}, notify: make(chan struct{}), files: map[string]*os.File{}}
}

func (j *journal) append(unit, source, msg string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.seq++
	e := Entry{Seq: j.seq, Time: time.Now(), Unit: unit, Source: source, Message: msg}
	r := j.rings[unit]
	if r == nil {
		r = &ring{entries: make([]Entry, 0, 64)}
		j.rings[unit] = r
	}
	if len(r.entries) < j.perUnit {
		r.entries = append(r.entries, e)
	} else {
		r.entries[r.next] = e
		r.next = (r.next + 1) % j.perUnit
		r.full = true
	}
	close(j.notify)
	j.notify = make(chan struct{})
	if j.dir != "" {
		j.persist(e)
	}
}

// persist appends e to its unit's log file; failures are not fatal (the
// in-memory ring still has the line).
func (j *journal) persist(e Entry) {
	f := j.files[e.Unit]
	if f == nil {
		var err error
		f, err = os.OpenFile(filepath.Join(j.dir, e.Unit+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return
		}
		j.files[e.Unit] = f
	}
	b, _ := json.Marshal(e)
	f.Write(append(b, '\n'))
}

// since returns the entries with Seq > after for unit ("" for all units),
// in order, and the channel that is closed at the next append.
func (j *journal) since(unit string, after uint64) ([]Entry, <-chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []Entry
	for name, r := range j.rings {
		if unit != "" && name != unit {
			continue
		}
		n := len(r.entries)
		for i := 0; i < n; i++ {
			e := r.entries[(r.next+i)%n]
			if e.Seq > after {
				out = append(out, e)
			}
		}
	}
	sortEntries(out)
	return out, j.notify
}

// Tail returns the last n entries of unit ("" for all units); n <= 0 means all kept.
func (j *journal) tail(unit string, n int) []Entry {
	all, _ := j.since(unit, 0)
	if n > 0 && len(all) > n {
		all = all[len(all)-n:]
	}
	return all
}

// follow sends the entries after 'after' and then every new one until ctx ends.
func (j *journal) follow(ctx context.Context, unit string, after uint64, send func(Entry) error) error {
	for {
		entries, wait := j.since(unit, after)
		for _, e := range entries {
			if err := send(e); err != nil {
				return err
			}
			after = e.Seq
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait:
		}
	}
}

func (j *journal) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, f := range j.files {
		f.Close()
	}
	j.files = map[string]*os.File{}
}

func sortEntries(es []Entry) {
	slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
}

// pump turns the stream r into journal lines of unit until r ends, then closes r.
func (j *journal) pump(unit string, r *os.File) {
	defer r.Close()
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 4096)
	for {
		n, err := r.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			j.append(unit, "stdout", string(buf[:i]))
			buf = buf[i+1:]
		}
		if len(buf) >= 16*1024 { // a very long line without newline: cut it
			j.append(unit, "stdout", string(buf))
			buf = buf[:0]
		}
		if err != nil {
			if len(buf) > 0 {
				j.append(unit, "stdout", string(buf))
			}
			return
		}
	}
}

func (j *journal) logf(unit, format string, args ...any) {
	j.append(unit, "init", fmt.Sprintf(format, args...))
}
