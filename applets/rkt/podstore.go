package rkt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// podPhase is the directory under DIR/pods/ a pod lives in: moving a pod
// between phases is a rename, so that every reader sees it in exactly one.
type podPhase string

const (
	phaseEmbryo        podPhase = "embryo"         // being created, lock taken right after mkdir
	phasePrepare       podPhase = "prepare"        // being prepared (locked), or abandoned (unlocked)
	phasePrepared      podPhase = "prepared"       // ready for run-prepared
	phaseRun           podPhase = "run"            // running (locked by its rkt) or exited
	phaseExitedGarbage podPhase = "exited-garbage" // exited, marked by gc, deleted after the grace period
	phaseGarbage       podPhase = "garbage"        // to delete now (aborted prepares, expired prepared pods)
)

// podPhases in the order a pod goes through them.
var podPhases = []podPhase{phaseEmbryo, phasePrepare, phasePrepared, phaseRun, phaseExitedGarbage, phaseGarbage}

// Pod states as rkt prints them.
const (
	stateEmbryo         = "embryo"
	statePreparing      = "preparing"
	stateAbortedPrepare = "aborted prepare"
	statePrepared       = "prepared"
	stateRunning        = "running"
	stateExited         = "exited"
	stateExitedGarbage  = "exited garbage"
	stateGarbage        = "garbage"
)

// podStore is the pods part of rkt's data directory.
type podStore struct {
	dir string // DIR/pods
}

func newPodStore(dataDir string) (*podStore, error) {
	s := &podStore{dir: filepath.Join(dataDir, "pods")}
	for _, p := range podPhases {
		if err := os.MkdirAll(filepath.Join(s.dir, string(p)), 0o750); err != nil {
			return nil, fmt.Errorf("creating pod directory: %w", err)
		}
	}
	return s, nil
}

func (s *podStore) path(phase podPhase, uuid string) string {
	return filepath.Join(s.dir, string(phase), uuid)
}

// podHandle is an open pod directory. Its file descriptor carries the
// pod's flock: exclusive for whoever prepares, runs or deletes the pod.
// The lock follows the directory through renames between phases.
type podHandle struct {
	store  *podStore
	UUID   string
	phase  podPhase
	dir    *os.File
	locked bool
}

// Path is the pod's directory now.
func (p *podHandle) Path() string { return p.store.path(p.phase, p.UUID) }

// Close releases the lock, if held, and the directory.
func (p *podHandle) Close() error {
	return p.dir.Close()
}

// create makes a new pod directory in the embryo phase, locked.
func (s *podStore) create(uuid string) (*podHandle, error) {
	path := s.path(phaseEmbryo, uuid)
	if err := os.Mkdir(path, 0o750); err != nil {
		return nil, fmt.Errorf("creating pod %s: %w", uuid, err)
	}
	f, err := os.Open(path)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("opening pod %s: %w", uuid, err)
	}
	p := &podHandle{store: s, UUID: uuid, phase: phaseEmbryo, dir: f}
	if err := p.lock(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	return p, nil
}

// errPodBusy says another rkt holds the pod's lock.
var errPodBusy = errors.New("pod is in use by another rkt process")

// lock takes the exclusive lock without waiting, retrying briefly while
// readers hold a shared one to look at the pod.
func (p *podHandle) lock() error {
	deadline := time.Now().Add(200 * time.Millisecond)
	for {
		err := unix.Flock(int(p.dir.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			p.locked = true
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("locking pod %s: %w", p.UUID, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pod %s: %w", p.UUID, errPodBusy)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lockedByOther reports whether another process holds the exclusive lock:
// a shared lock taken and dropped right away tells.
func (p *podHandle) lockedByOther() bool {
	if p.locked {
		return false
	}
	fd := int(p.dir.Fd())
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(fd, unix.LOCK_UN)
	return false
}

// waitUnlocked blocks until nobody holds the exclusive lock (status --wait).
func (p *podHandle) waitUnlocked(deadline time.Time) error {
	for p.lockedByOther() {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("pod %s: timed out waiting for it to exit", p.UUID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// move renames the pod into another phase; the caller holds its lock.
func (p *podHandle) move(to podPhase) error {
	if !p.locked {
		return fmt.Errorf("moving pod %s to %s: not locked", p.UUID, to)
	}
	if err := os.Rename(p.Path(), p.store.path(to, p.UUID)); err != nil {
		return fmt.Errorf("moving pod %s from %s to %s: %w", p.UUID, p.phase, to, err)
	}
	p.phase = to
	return nil
}

// open finds the pod with this exact UUID in any phase. The directory can
// move between the lookup and the open: open retries through the phases.
func (s *podStore) open(uuid string) (*podHandle, error) {
	for range 3 {
		for _, ph := range podPhases {
			f, err := os.Open(s.path(ph, uuid))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("opening pod %s: %w", uuid, err)
			}
			// A rename after the open leaves f valid but the phase stale:
			// check that the directory is still where we found it.
			st1, err1 := f.Stat()
			st2, err2 := os.Stat(s.path(ph, uuid))
			if err1 == nil && err2 == nil && os.SameFile(st1, st2) {
				return &podHandle{store: s, UUID: uuid, phase: ph, dir: f}, nil
			}
			f.Close()
		}
	}
	return nil, fmt.Errorf("no pod %s", uuid)
}

// list returns the UUIDs of all pods, each once, sorted.
func (s *podStore) list() ([]string, error) {
	var uuids []string
	for _, ph := range podPhases {
		ents, err := os.ReadDir(filepath.Join(s.dir, string(ph)))
		if err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		for _, e := range ents {
			if isUUID(e.Name()) {
				uuids = append(uuids, e.Name())
			}
		}
	}
	slices.Sort(uuids)
	return slices.Compact(uuids), nil
}

// resolve turns a UUID or a unique prefix of one into a pod's UUID.
func (s *podStore) resolve(prefix string) (string, error) {
	p, err := checkUUIDPrefix(prefix)
	if err != nil {
		return "", err
	}
	uuids, err := s.list()
	if err != nil {
		return "", err
	}
	var found []string
	for _, u := range uuids {
		if strings.HasPrefix(strings.ReplaceAll(u, "-", ""), p) {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no pod matches UUID %q", prefix)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("UUID prefix %q is ambiguous: it matches %s", prefix, strings.Join(found, ", "))
}

// openPrefix resolves a UUID prefix and opens the pod.
func (s *podStore) openPrefix(prefix string) (*podHandle, error) {
	uuid, err := s.resolve(prefix)
	if err != nil {
		return nil, err
	}
	return s.open(uuid)
}
