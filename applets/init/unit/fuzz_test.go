package unit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fuzzHost gives the fuzzed units the host specifiers the fixtures use.
func fuzzHost() ParseOptions {
	return ParseOptions{Specifiers: map[rune]string{'H': "node1", 'm': "4f1c0d1e2a"}}
}

// fixtures returns the contents of the testdata files whose names match
// pattern, by base name.
func fixtures(f *testing.F, pattern string) map[string][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures %s: %v", pattern, err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func FuzzParse(f *testing.F) {
	for name, src := range fixtures(f, "*.service") {
		f.Add(name, src)
		if strings.Contains(name, "@.") {
			f.Add(strings.Replace(name, "@.", "@80.", 1), src)
		}
	}
	for name, src := range fixtures(f, "*.target") {
		f.Add(name, src)
	}
	f.Add("t.service", []byte("[Service]\nType=oneshot\nExecStart=/bin/a ; -/bin/b \\;\nExecStart=\"x\"\\\n y\n"))
	f.Add("t.service", []byte("[Service]\nEnvironment=\"A=b c\" D=\\x41\nTimeoutStopSec=1min 30s\nKillSignal=9\n"))
	f.Add("t@i.target", []byte("[Unit]\nAfter=%p.service %i.target\n[X-Fleet]\nA=%n\n"))

	f.Fuzz(func(t *testing.T, name string, src []byte) {
		if CheckName(name) != nil {
			_, err := ParseWith(name, bytes.NewReader(src), fuzzHost())
			var se *SyntaxError
			if !errors.As(err, &se) || se.File != name || se.Line != 0 {
				t.Fatalf("bad name %q: error %#v, want a *SyntaxError for the file", name, err)
			}
			name = "fuzz@i.service" // and go on with the content
		}
		u, err := ParseWith(name, bytes.NewReader(src), fuzzHost())
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *SyntaxError", err, err)
			}
			if se.File != name || se.Line < 0 || !strings.HasPrefix(err.Error(), name+":") {
				t.Fatalf("error %#v does not name %q", se, name)
			}
			return
		}
		if u.Name != name || u.Path != "" || !bytes.Equal(u.Source, src) {
			t.Fatalf("Name %q, Path %q, Source %q: want %q, \"\", the input", u.Name, u.Path, u.Source, name)
		}
		checkUnit(t, u)
		again, err := ParseWith(name, bytes.NewReader(src), fuzzHost())
		if err != nil || !reflect.DeepEqual(u, again) {
			t.Fatalf("second parse differs: %v\n%+v\n%+v", err, u, again)
		}
	})
}

// checkUnit checks what every successfully parsed unit promises.
func checkUnit(t *testing.T, u *Unit) {
	t.Helper()
	if err := CheckName(u.Name); err != nil {
		t.Fatal(err)
	}
	parsed := *u
	parsed.Source = nil
	if text := fmt.Sprint(parsed); strings.IndexByte(text, 0) >= 0 {
		t.Fatalf("a parsed string holds a NUL byte: %q", text)
	}
	for key, list := range map[string][]string{
		"After": u.After, "Before": u.Before, "Requires": u.Requires, "Wants": u.Wants,
		"WantedBy": u.Install.WantedBy, "RequiredBy": u.Install.RequiredBy,
	} {
		seen := map[string]bool{}
		for _, n := range list {
			if err := checkUnitName(n, false); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if seen[n] {
				t.Fatalf("%s names %q twice", key, n)
			}
			seen[n] = true
		}
	}
	for _, c := range u.Conditions {
		if checkAbsolute(c.Path) != nil {
			t.Fatalf("condition path %q", c.Path)
		}
	}
	for section := range u.Extra {
		if !strings.HasPrefix(section, "X-") {
			t.Fatalf("Extra holds section %q", section)
		}
	}
	s := u.Service
	if suffix(u.Name) == "target" {
		if !reflect.DeepEqual(s, Service{}) {
			t.Fatalf("target has a Service: %+v", s)
		}
		return
	}
	switch s.Type {
	case "simple", "exec":
		if len(s.ExecStart) != 1 {
			t.Fatalf("Type=%s with %d ExecStart", s.Type, len(s.ExecStart))
		}
	case "oneshot":
		if len(s.ExecStart) == 0 && (!s.RemainAfterExit || len(s.ExecStop) == 0) {
			t.Fatalf("oneshot without ExecStart, RemainAfterExit=%v, %d ExecStop", s.RemainAfterExit, len(s.ExecStop))
		}
	default:
		t.Fatalf("Type %q", s.Type)
	}
	switch s.Restart {
	case "no", "always", "on-failure":
	default:
		t.Fatalf("Restart %q", s.Restart)
	}
	for _, d := range []time.Duration{s.RestartSec, s.TimeoutStartSec, s.TimeoutStopSec} {
		if d < 0 {
			t.Fatalf("negative duration %v", d)
		}
	}
	if s.KillSignal < 1 || s.KillSignal > maxSignal {
		t.Fatalf("KillSignal %d", s.KillSignal)
	}
	for _, list := range [][]Command{s.ExecStartPre, s.ExecStart, s.ExecStartPost, s.ExecStop} {
		for _, c := range list {
			if len(c.Argv) == 0 {
				t.Fatal("command without Argv")
			}
			if err := checkExecutable(c.Argv[0]); err != nil {
				t.Fatal(err)
			}
		}
	}
	names := map[string]bool{}
	for _, kv := range s.Environment {
		if err := checkAssignment(kv); err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(kv, "=")
		if names[name] {
			t.Fatalf("Environment sets %s twice", name)
		}
		names[name] = true
	}
	for _, ef := range s.EnvironmentFiles {
		if checkAbsolute(ef.Path) != nil {
			t.Fatalf("EnvironmentFile %q", ef.Path)
		}
	}
	if s.WorkingDirectory != "" && checkAbsolute(s.WorkingDirectory) != nil {
		t.Fatalf("WorkingDirectory %q", s.WorkingDirectory)
	}
}

func FuzzExpand(f *testing.F) {
	for _, src := range fixtures(f, "*.service") {
		sc := bufio.NewScanner(bytes.NewReader(src))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "Exec") {
				f.Add(v, "a b")
			}
		}
	}
	f.Add(`/bin/echo $V ${V} $$V a${V}b ${V:-x} $`, `x "y z" \q`)
	f.Add(`/bin/sh -c 'echo ${V}' \; ; -/bin/b $V`, "")
	f.Add(`/bin/e "\x41\u00e9" %i %H`, "'unterminated")

	spec := newSpecifiers("fuzz@i.service", fuzzHost().Specifiers)
	f.Fuzz(func(t *testing.T, line, value string) {
		cmds, err := parseCommands(line, spec)
		if err != nil {
			return
		}
		env := map[string]string{"V": value, "A": "x y"}
		for _, c := range cmds {
			before := append([]string(nil), c.Argv...)
			c.Expand(env)
			if !reflect.DeepEqual(c.Argv, before) {
				t.Fatalf("Expand changed Argv from %q to %q", before, c.Argv)
			}
			// Doubling every '$' protects every word.
			escaped := Command{Argv: make([]string, len(c.Argv))}
			for i, w := range c.Argv {
				escaped.Argv[i] = strings.ReplaceAll(w, "$", "$$")
			}
			if got := escaped.Expand(env); !reflect.DeepEqual(got, c.Argv) {
				t.Fatalf("escaped %q expanded to %q, want %q", escaped.Argv, got, c.Argv)
			}
			// Words without '$' pass through.
			if !strings.Contains(strings.Join(c.Argv, ""), "$") {
				if got := c.Expand(env); !reflect.DeepEqual(got, c.Argv) {
					t.Fatalf("Expand(%q) = %q", c.Argv, got)
				}
			}
		}
		// "${V}" is the value verbatim; "$V" its words.
		if got := (Command{Argv: []string{"${V}"}}).Expand(env); len(got) != 1 || got[0] != value {
			t.Fatalf("${V} with V=%q expanded to %q", value, got)
		}
		words := (Command{Argv: []string{"$V"}}).Expand(env)
		if !strings.ContainsAny(value, `"'\`) {
			if want := splitFields(value); len(want) != len(words) || len(want) > 0 && !reflect.DeepEqual(words, want) {
				t.Fatalf("$V with V=%q expanded to %q, want %q", value, words, want)
			}
		}
	})
}

func FuzzParseEnvironmentFile(f *testing.F) {
	for _, src := range fixtures(f, "*.env") {
		f.Add(src)
	}
	f.Add([]byte("A=\"x\\\ny\" B='z'w\\ \n# c\nC = d \\\ne\n"))
	f.Add([]byte("A=1\r\nA=2\r\n  ;c\r\n"))

	f.Fuzz(func(t *testing.T, src []byte) {
		env, err := ParseEnvironmentFile(bytes.NewReader(src))
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.File != "" || se.Line < 1 {
				t.Fatalf("error %#v, want a *SyntaxError with a line", err)
			}
			return
		}
		names := map[string]bool{}
		var out strings.Builder
		for _, kv := range env {
			if err := checkAssignment(kv); err != nil {
				t.Fatal(err)
			}
			name, value, _ := strings.Cut(kv, "=")
			if names[name] {
				t.Fatalf("%s twice", name)
			}
			names[name] = true
			out.WriteString(name + "=\"")
			for i := 0; i < len(value); i++ {
				if strings.IndexByte("\"\\`$", value[i]) >= 0 {
					out.WriteByte('\\')
				}
				out.WriteByte(value[i])
			}
			out.WriteString("\"\n")
		}
		// What it returns, written out double-quoted, reads back the same.
		again, err := ParseEnvironmentFile(strings.NewReader(out.String()))
		if err != nil || !reflect.DeepEqual(again, env) {
			t.Fatalf("round trip of %q through %q gave %q, %v", env, out.String(), again, err)
		}
	})
}
