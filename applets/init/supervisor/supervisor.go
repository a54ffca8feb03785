package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/corebox/corebox/applets/init/unit"
)

// Config says where units come from and how they run. The zero value of
// an optional field takes the default documented on it.
type Config struct {
	// UnitDirs are searched for unit files, highest precedence first: a
	// file in an earlier directory hides one of the same name in a later one.
	UnitDirs []string
	// RuntimeDir is where AddUnit writes unit files (normally one of UnitDirs).
	RuntimeDir string
	// CgroupRoot is the cgroup directory under which each unit gets one of
	// its own (v2, or one v1 hierarchy). Empty: no cgroups, process groups only.
	CgroupRoot string
	// EnableControllers turns on every available cgroup v2 controller for
	// the units' cgroups (in CgroupRoot's parent and CgroupRoot). PID 1
	// does; a supervisor under a host's cgroup tree should not.
	EnableControllers bool
	// LogDir, when set, receives UNIT.log files with every journal line.
	LogDir string
	// LogLines is how many lines of each unit the journal keeps in memory (default 1000).
	LogLines int
	// Env is the base environment of every unit (default: PATH only).
	Env []string
	// Specifiers adds values for unit-file specifiers such as %H and %m.
	Specifiers map[rune]string
	// MaxRestartDelay caps the growing delay between automatic restarts (default 30s).
	MaxRestartDelay time.Duration
	// Logger receives the supervisor's own messages (default: discarded).
	Logger *slog.Logger
}

// Status is what `systemctl status` shows of a unit.
type Status struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Path        string    `json:"path,omitempty"`
	LoadState   string    `json:"load_state"` // loaded, not-found, error
	LoadError   string    `json:"load_error,omitempty"`
	ActiveState string    `json:"active_state"` // inactive, activating, active, deactivating, failed
	SubState    string    `json:"sub_state"`    // dead, start-pre, running, exited, stop, auto-restart, failed
	Enabled     bool      `json:"enabled"`      // wanted by multi-user.target or default.target
	MainPID     int       `json:"main_pid,omitempty"`
	Since       time.Time `json:"since"`
	Result      string    `json:"result"` // success, exit-code, signal, timeout, resources, dependency, condition
	ExitStatus  string    `json:"exit_status,omitempty"`
	Restarts    int       `json:"restarts"`
	CGroup      string    `json:"cgroup,omitempty"`
	Tasks       []int     `json:"tasks,omitempty"`
}

// ErrNotFound is returned for a unit name that no unit file has.
var ErrNotFound = errors.New("unit not found")

// Supervisor runs units. Its methods are safe for concurrent use.
type Supervisor struct {
	cfg     Config
	log     *slog.Logger
	kind    cgroupKind
	reaper  *reaper
	journal *journal

	jobs sync.Mutex // serializes start transactions

	mu    sync.Mutex
	units map[string]*unitState
}

type unitState struct {
	name     string
	def      *unit.Unit // nil when not found or not loadable
	loadErr  error
	active   string
	sub      string
	mainPID  int
	since    time.Time
	result   string
	exit     string
	restarts int
	cg       *cgroup
	run      *run // the lifecycle in progress, nil when none
}

// run is one lifecycle of a unit: start, (restarts), stop.
type run struct {
	stopOnce sync.Once
	stop     chan struct{} // closed to ask for a stop
	done     chan struct{} // closed when every process of the unit is gone
	started  chan error    // the outcome of the first start, sent once
}

func (r *run) requestStop() { r.stopOnce.Do(func() { close(r.stop) }) }

// New loads the units and returns a supervisor ready to start them. Unit
// files that do not parse are kept as units in the "error" load state; their
// errors are returned joined, together with the supervisor.
func New(cfg Config) (*Supervisor, error) {
	if cfg.LogLines <= 0 {
		cfg.LogLines = 1000
	}
	if cfg.MaxRestartDelay <= 0 {
		cfg.MaxRestartDelay = 30 * time.Second
	}
	if len(cfg.Env) == 0 {
		cfg.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	if cfg.Specifiers == nil {
		host, _ := os.Hostname()
		id, _ := os.ReadFile("/etc/machine-id")
		cfg.Specifiers = map[rune]string{'H': host, 'm': strings.TrimSpace(string(id))}
	}
	if cfg.RuntimeDir != "" && !slices.Contains(cfg.UnitDirs, cfg.RuntimeDir) {
		cfg.UnitDirs = append(slices.Clone(cfg.UnitDirs), cfg.RuntimeDir)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	kind, err := detectCgroups(cfg.CgroupRoot)
	if err != nil {
		return nil, err
	}
	if kind != noCgroups {
		if err := os.MkdirAll(cfg.CgroupRoot, 0o755); err != nil {
			return nil, fmt.Errorf("creating cgroup root: %w", err)
		}
		if kind == cgroupV2 && cfg.EnableControllers {
			enableControllers(filepath.Dir(cfg.CgroupRoot))
			enableControllers(cfg.CgroupRoot)
		}
	}
	if cfg.LogDir != "" {
		if err := os.MkdirAll(cfg.LogDir, 0o750); err != nil {
			return nil, fmt.Errorf("creating log directory: %w", err)
		}
	}
	if os.Getpid() != 1 {
		// Orphaned grandchildren of units come back to us to be reaped.
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("becoming a child subreaper: %w", err)
		}
	}
	s := &Supervisor{
		cfg:     cfg,
		log:     log,
		kind:    kind,
		reaper:  processReaper(),
		journal: newJournal(cfg.LogLines, cfg.LogDir),
		units:   map[string]*unitState{},
	}
	log.Info("supervisor", "cgroups", kind.String(), "cgroup_root", cfg.CgroupRoot, "unit_dirs", cfg.UnitDirs)
	return s, s.Reload()
}

// Close closes the journal's files. It does not stop units: call StopAll first.
func (s *Supervisor) Close() {
	s.journal.close()
}

// CgroupKind names the cgroup mode in use: "v2", "v1" or "none".
func (s *Supervisor) CgroupKind() string { return s.kind.String() }

// Reload re-reads every unit directory. Running units keep running; their
// new definition takes effect at their next start. A unit whose file is gone
// is forgotten once it is inactive.
func (s *Supervisor) Reload() error {
	defs, errs := s.loadDefinitions()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, st := range s.units {
		if _, ok := defs[name]; !ok {
			if st.run == nil {
				delete(s.units, name)
			} else {
				st.def, st.loadErr = nil, nil
			}
		}
	}
	for name, d := range defs {
		st := s.units[name]
		if st == nil {
			st = &unitState{name: name, active: "inactive", sub: "dead", since: time.Now()}
			s.units[name] = st
		}
		st.def, st.loadErr = d.unit, d.err
	}
	return errors.Join(errs...)
}

type definition struct {
	unit *unit.Unit
	err  error
}

func (s *Supervisor) loadDefinitions() (map[string]definition, []error) {
	defs := map[string]definition{}
	var errs []error
	for _, dir := range s.cfg.UnitDirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading unit directory: %w", err))
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".service") && !strings.HasSuffix(name, ".target") {
				continue
			}
			if _, seen := defs[name]; seen {
				continue // hidden by a higher-precedence directory
			}
			path := filepath.Join(dir, name)
			u, err := s.parseFile(path)
			if err != nil {
				errs = append(errs, err)
				defs[name] = definition{err: err}
				continue
			}
			defs[name] = definition{unit: u}
		}
	}
	return defs, errs
}

func (s *Supervisor) parseFile(path string) (*unit.Unit, error) {
	return unit.ParseFileWith(path, unit.ParseOptions{Specifiers: s.cfg.Specifiers})
}

// Enabled returns the units wanted by multi-user.target or default.target:
// what init starts at boot.
func (s *Supervisor) Enabled() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, st := range s.units {
		if st.def != nil && enabled(st.def) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func enabled(u *unit.Unit) bool {
	return slices.Contains(u.Install.WantedBy, "multi-user.target") || slices.Contains(u.Install.WantedBy, "default.target")
}

// List returns the status of every known unit, sorted by name.
func (s *Supervisor) List() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.units))
	for _, st := range s.units {
		out = append(out, s.statusLocked(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status returns one unit's status.
func (s *Supervisor) Status(name string) (Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.units[name]
	if st == nil {
		return Status{}, fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return s.statusLocked(st), nil
}

func (s *Supervisor) statusLocked(st *unitState) Status {
	out := Status{
		Name: st.name, ActiveState: st.active, SubState: st.sub, MainPID: st.mainPID,
		Since: st.since, Result: st.result, ExitStatus: st.exit, Restarts: st.restarts,
		LoadState: "loaded",
	}
	switch {
	case st.loadErr != nil:
		out.LoadState, out.LoadError = "error", st.loadErr.Error()
	case st.def == nil:
		out.LoadState = "not-found"
	default:
		out.Description, out.Path, out.Enabled = st.def.Description, st.def.Path, enabled(st.def)
	}
	if st.cg != nil {
		out.CGroup = st.cg.path
		out.Tasks = st.cg.pids()
	}
	return out
}

// UnitFile returns the bytes and path of a unit's file.
func (s *Supervisor) UnitFile(name string) ([]byte, string, error) {
	s.mu.Lock()
	st := s.units[name]
	s.mu.Unlock()
	if st == nil || (st.def == nil && st.loadErr == nil) {
		return nil, "", fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if st.def != nil {
		return st.def.Source, st.def.Path, nil
	}
	for _, dir := range s.cfg.UnitDirs {
		p := filepath.Join(dir, name)
		if b, err := os.ReadFile(p); err == nil {
			return b, p, nil
		}
	}
	return nil, "", fmt.Errorf("%s: %w", name, ErrNotFound)
}

// AddUnit validates contents as a unit file named name, writes it to the
// runtime directory and reloads. A unit that does not parse is refused and
// nothing is written.
func (s *Supervisor) AddUnit(name string, contents []byte) error {
	if s.cfg.RuntimeDir == "" {
		return errors.New("adding a unit: no runtime unit directory configured")
	}
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("adding a unit: bad unit name %q", name)
	}
	if _, err := unit.ParseWith(name, strings.NewReader(string(contents)), unit.ParseOptions{Specifiers: s.cfg.Specifiers}); err != nil {
		return err
	}
	if err := os.MkdirAll(s.cfg.RuntimeDir, 0o755); err != nil {
		return fmt.Errorf("adding unit %s: %w", name, err)
	}
	path := filepath.Join(s.cfg.RuntimeDir, name)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, contents, 0o644); err != nil {
		return fmt.Errorf("adding unit %s: %w", name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("adding unit %s: %w", name, err)
	}
	return s.Reload()
}

// RemoveUnit stops a runtime unit, deletes its file from the runtime
// directory and reloads.
func (s *Supervisor) RemoveUnit(ctx context.Context, name string) error {
	if s.cfg.RuntimeDir == "" || name != filepath.Base(name) {
		return fmt.Errorf("removing unit %q: not a runtime unit", name)
	}
	path := filepath.Join(s.cfg.RuntimeDir, name)
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("removing unit %s: %w", name, ErrNotFound)
	}
	if err := s.Stop(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing unit %s: %w", name, err)
	}
	return s.Reload()
}

// Logs returns the last n journal entries of unit ("" for all; n <= 0 for all kept).
func (s *Supervisor) Logs(unit string, n int) []Entry { return s.journal.tail(unit, n) }

// FollowLogs sends the entries after seq 'after' and every new one until
// ctx ends or send fails.
func (s *Supervisor) FollowLogs(ctx context.Context, unit string, after uint64, send func(Entry) error) error {
	return s.journal.follow(ctx, unit, after, send)
}

// Log writes a line from init itself about unit into the journal.
func (s *Supervisor) Log(unit, format string, args ...any) { s.journal.logf(unit, format, args...) }
