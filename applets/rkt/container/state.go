package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ErrNotExist is wrapped by errors about a container id with no state.
var ErrNotExist = errors.New("container does not exist")

// ErrExist is wrapped by Create's error when the id is taken.
var ErrExist = errors.New("container with given ID already exists")

// stateFile is the name of the record in a container's state directory.
const stateFile = "state.json"

// startSocket is the name of the socket Start connects to.
const startSocket = "start.sock"

// record is what state.json holds.
type record struct {
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
	// Pid is the init process in the caller's pid namespace; StartTime
	// (field 22 of /proc/PID/stat) tells it from a later process that
	// reuses the number.
	Pid       int       `json:"pid"`
	StartTime uint64    `json:"startTime"`
	Created   time.Time `json:"created"`
	// Started is set once Start has let the process run.
	Started bool `json:"started"`
	// Paused is set by Pause, cleared by Resume.
	Paused bool `json:"paused,omitempty"`
	// Cgroup is the cgroup's path as cgroups.Load takes it ("" for none).
	Cgroup string      `json:"cgroup,omitempty"`
	Owner  string      `json:"owner"`
	Spec   *specs.Spec `json:"spec"`
}

// readRecord loads dir/state.json.
func readRecord(dir, id string) (*record, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state of container %q: %w", id, err)
	}
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("reading the state of container %q: %s: %w", id, filepath.Join(dir, stateFile), err)
	}
	return &r, nil
}

// writeRecord replaces dir/state.json atomically.
func writeRecord(dir string, r *record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding the state of container %q: %w", r.ID, err)
	}
	tmp := filepath.Join(dir, stateFile+".new")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing the state of container %q: %w", r.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing the state of container %q: %w", r.ID, err)
	}
	return nil
}

// lock takes an exclusive flock on the state directory; the returned
// function releases it.
func lockDir(dir, id string) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("locking container %q: %w", id, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("locking container %q: %w", id, err)
	}
	return func() { unix.Close(fd) }, nil
}

// procStat is what the engine reads of /proc/PID/stat.
type procStat struct {
	state     byte
	startTime uint64
}

// readProcStat parses /proc/PID/stat; the command name may hold spaces
// and parentheses, so fields are counted from the last ')'.
func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("parsing /proc/PID/stat %q: no command field", b)
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 || len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("parsing /proc/PID/stat %q: too few fields", b)
	}
	st, err := strconv.ParseUint(string(fields[19]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parsing /proc/PID/stat start time %q: %w", fields[19], err)
	}
	return procStat{state: fields[0][0], startTime: st}, nil
}

// alive reports whether the process the record names still runs: same
// pid, same start time, not a zombie.
func (r *record) alive() bool {
	if r.Pid <= 0 {
		return false
	}
	st, err := readProcStat(r.Pid)
	if err != nil {
		return false
	}
	return st.startTime == r.StartTime && st.state != 'Z' && st.state != 'X'
}

// statePaused is runc's status for a frozen container (the OCI states
// have no name for it).
const statePaused specs.ContainerState = "paused"
