package unit

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// A Unit is a parsed unit file. Values have their quotes, escapes and
// specifiers resolved; environment variables in commands are left for
// Command.Expand.
type Unit struct {
	Name string // file base name, e.g. "etcd.service"
	Path string // where it was read from ("" for Parse)

	// [Unit]
	Description                    string
	Documentation                  []string    // URLs, kept for systemctl status
	After, Before, Requires, Wants []string    // unit names, each once, in order of first mention
	Conditions                     []Condition // ConditionPathExists=, all must hold

	Service Service // [Service]; the zero value for a .target
	Install Install // [Install]

	// Extra holds the sections named X-* (such as fleet's [X-Fleet]):
	// section -> key -> values in order, verbatim (no specifiers; an empty
	// assignment is an empty value, not a reset). A section that appears
	// without keys has an empty map; Extra is nil when there are none.
	Extra map[string]map[string][]string

	Source []byte // the exact bytes parsed, for `systemctl cat`
}

// A Condition is one ConditionPathExists=: the unit starts only if Path
// exists, or with Negate ("!" prefix) only if it does not.
type Condition struct {
	Path   string // absolute
	Negate bool
}

// Service is the [Service] section of a .service unit.
type Service struct {
	Type string // "simple" (default), "oneshot" or "exec"

	// Commands in the order they are given. Types other than oneshot have
	// exactly one ExecStart command. A oneshot service may have several, or
	// none if it has RemainAfterExit=yes and an ExecStop command (systemd's
	// rules).
	ExecStartPre, ExecStart, ExecStartPost, ExecStop []Command

	Restart    string        // "no" (default), "always" or "on-failure"
	RestartSec time.Duration // default 100ms

	// Timeouts; 0 means none (written "0" or "infinity"). TimeoutStopSec
	// defaults to 90s; TimeoutStartSec defaults to 90s, and to none for
	// Type=oneshot.
	TimeoutStopSec  time.Duration
	TimeoutStartSec time.Duration

	// Environment holds "NAME=value" entries in the order the names first
	// appear; a name set again keeps its place and takes the later value.
	Environment      []string
	EnvironmentFiles []EnvironmentFile // in order; read them with ParseEnvironmentFile

	WorkingDirectory string         // absolute, or "" for the default
	User, Group      string         // name or number to run as; "" for root
	KillSignal       syscall.Signal // default SIGTERM
	RemainAfterExit  bool
}

// Install is the [Install] section: the units that want or require this one
// when it is enabled.
type Install struct {
	WantedBy, RequiredBy []string
}

// A Command is one command line of an Exec*= key.
type Command struct {
	Argv          []string // program and arguments; variables not yet expanded (see Expand)
	IgnoreFailure bool     // "-" prefix: a failure exit status is not a failure of the unit
}

// An EnvironmentFile is one EnvironmentFile= entry.
type EnvironmentFile struct {
	Path     string // absolute
	Optional bool   // "-" prefix: a missing file is not an error
}

// A SyntaxError reports a unit file (or environment file) that cannot be
// used: where, and what is wrong with which key and value. Line is 1-based,
// and for a value continued over several lines it is the first of them; it
// is 0 for an error about the whole file, such as a bad unit name or a
// service without ExecStart=. File is the path given to ParseFile, the name
// given to Parse, and empty for ParseEnvironmentFile.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	switch {
	case e.File != "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	case e.File != "":
		return e.File + ": " + e.Msg
	}
	return e.Msg
}

// ParseOptions adjust parsing.
type ParseOptions struct {
	// Specifiers gives the values of specifiers that need host data, such
	// as 'H' (host name) and 'm' (machine ID). The unit-name specifiers %n,
	// %N, %p, %i and %% always come from the unit name; entries for them
	// here are ignored. Any other specifier not in the map is an error.
	Specifiers map[rune]string
}

// maxSourceSize bounds what Parse and ParseEnvironmentFile read.
const maxSourceSize = 4 << 20

// Parse parses the unit file read from r as the unit called name, with no
// host specifiers. See ParseWith.
func Parse(name string, r io.Reader) (*Unit, error) {
	return ParseWith(name, r, ParseOptions{})
}

// ParseWith parses the unit file read from r as the unit called name (a base
// name such as "etcd.service" or "apache@8080.service", which the unit-name
// specifiers come from). It reads r to its end and does not close it. A file
// that is not a valid unit gives a *SyntaxError; a read error is returned
// wrapped.
func ParseWith(name string, r io.Reader, opts ParseOptions) (*Unit, error) {
	return parse(name, "", name, r, opts)
}

// ParseFile parses the unit file at path, named by its base name.
func ParseFile(path string) (*Unit, error) {
	return ParseFileWith(path, ParseOptions{})
}

// ParseFileWith is ParseFile with options; see ParseWith.
func ParseFileWith(path string, opts ParseOptions) (*Unit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading unit file: %w", err)
	}
	defer f.Close()
	return parse(filepath.Base(path), path, path, f, opts)
}

func parse(name, path, file string, r io.Reader, opts ParseOptions) (*Unit, error) {
	if err := CheckName(name); err != nil {
		return nil, &SyntaxError{File: file, Msg: err.Error()}
	}
	src, err := io.ReadAll(io.LimitReader(r, maxSourceSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading unit %s: %w", file, err)
	}
	if len(src) > maxSourceSize {
		return nil, &SyntaxError{File: file, Msg: fmt.Sprintf("unit file is larger than %d bytes", maxSourceSize)}
	}
	p := &parser{
		file:  file,
		spec:  newSpecifiers(name, opts.Specifiers),
		unit:  &Unit{Name: name, Path: path, Source: src},
		seen:  map[string]map[string]bool{},
		envAt: map[string]int{},
	}
	p.isService = suffix(name) == "service"
	if p.isService {
		p.unit.Service = Service{
			Type:            "simple",
			Restart:         "no",
			RestartSec:      100 * time.Millisecond,
			TimeoutStopSec:  90 * time.Second,
			TimeoutStartSec: 90 * time.Second,
			KillSignal:      syscall.SIGTERM,
		}
	}
	for _, l := range logicalLines(src) {
		if err := p.line(l.n, l.text); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return p.unit, nil
}

// A logicalLine is a line after continuation lines are joined.
type logicalLine struct {
	n    int // number of its first physical line
	text string
}

// logicalLines splits src into lines as systemd's config_parse reads them:
// a line ending in an odd number of backslashes continues on the next, the
// last backslash becoming a space; comment lines are dropped, even inside a
// continuation. A UTF-8 byte order mark at the start is ignored.
func logicalLines(src []byte) []logicalLine {
	src = bytes.TrimPrefix(src, []byte("\xef\xbb\xbf"))
	var out []logicalLine
	var cont []byte
	start := 0
	n := 0
	for len(src) > 0 || cont != nil {
		if len(src) == 0 { // EOF in a continuation
			out = append(out, logicalLine{start, string(cont)})
			break
		}
		n++
		raw := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			raw, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		raw = bytes.TrimSuffix(raw, []byte("\r"))
		if t := bytes.TrimLeft(raw, " \t\n\r"); len(t) > 0 && (t[0] == '#' || t[0] == ';') {
			continue
		}
		if cont == nil {
			start = n
			cont = []byte{}
		}
		cont = append(cont, raw...)
		backslashes := len(cont) - len(bytes.TrimRight(cont, `\`))
		if backslashes%2 == 1 {
			cont[len(cont)-1] = ' '
			continue
		}
		out = append(out, logicalLine{start, string(cont)})
		cont = nil
	}
	return out
}

type parser struct {
	file      string
	spec      specifiers
	unit      *Unit
	isService bool
	section   string // "" before the first section header

	seen            map[string]map[string]bool // list key -> names in it
	envAt           map[string]int             // variable -> index in Service.Environment
	execStartLines  []int                      // line of each Service.ExecStart command
	timeoutStartSet bool
}

func (p *parser) errorf(n int, format string, args ...any) error {
	return &SyntaxError{File: p.file, Line: n, Msg: fmt.Sprintf(format, args...)}
}

// badValue reports an unusable value of key.
func (p *parser) badValue(n int, key, value string, err error) error {
	return p.errorf(n, "invalid %s= value %q: %v", key, value, err)
}

func (p *parser) line(n int, text string) error {
	text = trimSpace(text)
	switch {
	case text == "":
		return nil
	case !utf8.ValidString(text):
		return p.errorf(n, "invalid UTF-8 in line %q", text)
	case strings.IndexByte(text, 0) >= 0:
		return p.errorf(n, "NUL byte in line %q", text)
	case text[0] == '[':
		return p.header(n, text)
	}
	k, v, ok := strings.Cut(text, "=")
	if !ok {
		return p.errorf(n, "line is not KEY=VALUE: %q", text)
	}
	key, value := trimSpace(k), trimSpace(v)
	switch {
	case key == "":
		return p.errorf(n, "missing key name before '=' in %q", text)
	case p.section == "":
		return p.errorf(n, "key %q outside of any section", key)
	}
	switch p.section {
	case "Unit":
		return p.unitKey(n, key, value)
	case "Service":
		return p.serviceKey(n, key, value)
	case "Install":
		return p.installKey(n, key, value)
	}
	m := p.unit.Extra[p.section]
	m[key] = append(m[key], value)
	return nil
}

func (p *parser) header(n int, text string) error {
	if len(text) < 2 || text[len(text)-1] != ']' {
		return p.errorf(n, "invalid section header %q", text)
	}
	name := text[1 : len(text)-1]
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r < ' ' || r == 0x7f || r == '\\' || r == '"' || r == '\''
	}) {
		return p.errorf(n, "invalid section name in header %q", text)
	}
	switch {
	case name == "Unit" || name == "Install":
	case name == "Service":
		if !p.isService {
			return p.errorf(n, "[Service] section in %s unit %s", suffix(p.unit.Name), p.unit.Name)
		}
	case strings.HasPrefix(name, "X-"):
		if p.unit.Extra == nil {
			p.unit.Extra = map[string]map[string][]string{}
		}
		if p.unit.Extra[name] == nil {
			p.unit.Extra[name] = map[string][]string{}
		}
	default:
		return p.errorf(n, "unknown section [%s]", name)
	}
	p.section = name
	return nil
}

func (p *parser) unknownKey(n int, key string) error {
	if strings.HasPrefix(key, "X-") {
		return nil // systemd's extension keys: ignored, as systemd does
	}
	return p.errorf(n, "unknown key %q in section [%s]", key, p.section)
}

// expand resolves the specifiers of a value of key.
func (p *parser) expand(n int, key, value string) (string, error) {
	s, err := p.spec.expand(value)
	if err != nil {
		return "", p.badValue(n, key, value, err)
	}
	return s, nil
}

func (p *parser) unitKey(n int, key, value string) error {
	u := p.unit
	switch key {
	case "Description":
		d, err := p.expand(n, key, value)
		u.Description = d
		return err
	case "Documentation":
		if value == "" {
			u.Documentation = nil
			return nil
		}
		u.Documentation = append(u.Documentation, strings.Fields(value)...)
		return nil
	case "After":
		return p.names(n, key, value, &u.After)
	case "Before":
		return p.names(n, key, value, &u.Before)
	case "Requires":
		return p.names(n, key, value, &u.Requires)
	case "Wants":
		return p.names(n, key, value, &u.Wants)
	case "ConditionPathExists":
		if value == "" {
			u.Conditions = nil
			return nil
		}
		c := Condition{}
		v := value
		if v[0] == '|' {
			return p.badValue(n, key, value, fmt.Errorf("triggering conditions (%q prefix) are not supported", "|"))
		}
		if v[0] == '!' {
			c.Negate = true
			v = trimLeftSpace(v[1:])
		}
		path, err := p.spec.expand(v)
		if err == nil {
			err = checkAbsolute(path)
		}
		if err != nil {
			return p.badValue(n, key, value, err)
		}
		c.Path = path
		u.Conditions = append(u.Conditions, c)
		return nil
	}
	return p.unknownKey(n, key)
}

func (p *parser) installKey(n int, key, value string) error {
	switch key {
	case "WantedBy":
		return p.names(n, key, value, &p.unit.Install.WantedBy)
	case "RequiredBy":
		return p.names(n, key, value, &p.unit.Install.RequiredBy)
	}
	return p.unknownKey(n, key)
}

// names adds the unit names of a space-separated list value to list, once
// each; an empty value empties the list.
func (p *parser) names(n int, key, value string, list *[]string) error {
	if value == "" {
		*list = nil
		delete(p.seen, key)
		return nil
	}
	seen := p.seen[key]
	if seen == nil {
		seen = map[string]bool{}
		p.seen[key] = seen
	}
	for _, w := range splitFields(value) {
		name, err := p.expand(n, key, w)
		if err != nil {
			return err
		}
		if err := checkUnitName(name, false); err != nil {
			return p.badValue(n, key, value, err)
		}
		if !seen[name] {
			seen[name] = true
			*list = append(*list, name)
		}
	}
	return nil
}

func (p *parser) serviceKey(n int, key, value string) error {
	s := &p.unit.Service
	switch key {
	case "Type":
		switch value {
		case "":
			s.Type = "simple"
		case "simple", "oneshot", "exec":
			s.Type = value
		default:
			return p.badValue(n, key, value, fmt.Errorf("want simple, oneshot or exec"))
		}
	case "Restart":
		switch value {
		case "":
			s.Restart = "no"
		case "no", "always", "on-failure":
			s.Restart = value
		default:
			return p.badValue(n, key, value, fmt.Errorf("want no, always or on-failure"))
		}
	case "ExecStartPre":
		return p.commands(n, key, value, &s.ExecStartPre)
	case "ExecStart":
		if value == "" {
			p.execStartLines = nil
		}
		if err := p.commands(n, key, value, &s.ExecStart); err != nil {
			return err
		}
		for len(p.execStartLines) < len(s.ExecStart) {
			p.execStartLines = append(p.execStartLines, n)
		}
	case "ExecStartPost":
		return p.commands(n, key, value, &s.ExecStartPost)
	case "ExecStop":
		return p.commands(n, key, value, &s.ExecStop)
	case "RestartSec":
		if value == "" {
			s.RestartSec = 100 * time.Millisecond
			return nil
		}
		d, inf, err := parseDuration(value)
		if err == nil && inf {
			err = fmt.Errorf("a restart delay cannot be infinite")
		}
		if err != nil {
			return p.badValue(n, key, value, err)
		}
		s.RestartSec = d
	case "TimeoutStopSec":
		return p.timeout(n, key, value, &s.TimeoutStopSec)
	case "TimeoutStartSec":
		p.timeoutStartSet = value != ""
		return p.timeout(n, key, value, &s.TimeoutStartSec)
	case "Environment":
		return p.environment(n, key, value)
	case "EnvironmentFile":
		if value == "" {
			s.EnvironmentFiles = nil
			return nil
		}
		f := EnvironmentFile{}
		v := value
		if v[0] == '-' {
			f.Optional = true
			v = v[1:]
		}
		path, err := p.spec.expand(v)
		if err == nil {
			err = checkAbsolute(path)
		}
		if err != nil {
			return p.badValue(n, key, value, err)
		}
		f.Path = path
		s.EnvironmentFiles = append(s.EnvironmentFiles, f)
	case "User", "Group":
		name, err := p.expand(n, key, value)
		if err != nil {
			return err
		}
		if strings.ContainsAny(name, " \t:/") {
			return p.badValue(n, key, value, fmt.Errorf("not a user or group name"))
		}
		if key == "User" {
			s.User = name
		} else {
			s.Group = name
		}
	case "WorkingDirectory":
		dir, err := p.expand(n, key, value)
		if err != nil {
			return err
		}
		if dir != "" {
			if err := checkAbsolute(dir); err != nil {
				return p.badValue(n, key, value, err)
			}
		}
		s.WorkingDirectory = dir
	case "KillSignal":
		if value == "" {
			s.KillSignal = syscall.SIGTERM
			return nil
		}
		sig, err := parseSignal(value)
		if err != nil {
			return p.badValue(n, key, value, err)
		}
		s.KillSignal = sig
	case "RemainAfterExit":
		if value == "" {
			s.RemainAfterExit = false
			return nil
		}
		b, err := parseBool(value)
		if err != nil {
			return p.badValue(n, key, value, err)
		}
		s.RemainAfterExit = b
	default:
		return p.unknownKey(n, key)
	}
	return nil
}

// commands appends the command lines of an Exec*= value to list; an empty
// value empties the list.
func (p *parser) commands(n int, key, value string, list *[]Command) error {
	if value == "" {
		*list = nil
		return nil
	}
	cmds, err := parseCommands(value, p.spec)
	if err != nil {
		return p.badValue(n, key, value, err)
	}
	*list = append(*list, cmds...)
	return nil
}

// timeout parses a TimeoutStartSec=/TimeoutStopSec= value into d, where "0"
// and "infinity" both mean no timeout and an empty value is the 90s default.
func (p *parser) timeout(n int, key, value string, d *time.Duration) error {
	if value == "" {
		*d = 90 * time.Second
		return nil
	}
	v, inf, err := parseDuration(value)
	if err != nil {
		return p.badValue(n, key, value, err)
	}
	if inf {
		v = 0
	}
	*d = v
	return nil
}

// environment adds the assignments of an Environment= value; an empty value
// removes all earlier ones.
func (p *parser) environment(n int, key, value string) error {
	s := &p.unit.Service
	if value == "" {
		s.Environment = nil
		clear(p.envAt)
		return nil
	}
	for rest := value; ; {
		w, r, found, err := nextWord(rest, unquote|cunescape)
		if err != nil {
			return p.badValue(n, key, value, err)
		}
		if !found {
			return nil
		}
		rest = r
		if w, err = p.expand(n, key, w); err != nil {
			return err
		}
		if err := checkAssignment(w); err != nil {
			return p.badValue(n, key, value, err)
		}
		name, _, _ := strings.Cut(w, "=")
		if i, ok := p.envAt[name]; ok {
			s.Environment[i] = w
		} else {
			p.envAt[name] = len(s.Environment)
			s.Environment = append(s.Environment, w)
		}
	}
}

// finish applies the defaults that depend on other keys and the rules a
// service as a whole must follow (systemd's service_verify).
func (p *parser) finish() error {
	if !p.isService {
		return nil
	}
	s := &p.unit.Service
	if s.Type == "oneshot" && !p.timeoutStartSet {
		s.TimeoutStartSec = 0
	}
	switch {
	case s.Type != "oneshot" && len(s.ExecStart) == 0:
		return p.errorf(0, "service has no ExecStart= (only Type=oneshot services may omit it)")
	case s.Type != "oneshot" && len(s.ExecStart) > 1:
		return p.errorf(p.execStartLines[1], "more than one ExecStart= command in a Type=%s service (only Type=oneshot services may have several)", s.Type)
	case len(s.ExecStart) == 0 && !s.RemainAfterExit:
		return p.errorf(0, "service has no ExecStart= and no RemainAfterExit=yes")
	case len(s.ExecStart) == 0 && len(s.ExecStop) == 0:
		return p.errorf(0, "service has no ExecStart= and no ExecStop=")
	}
	return nil
}

// checkAbsolute checks that a path value is absolute.
func checkAbsolute(path string) error {
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("path %q is not absolute", path)
	}
	return nil
}
