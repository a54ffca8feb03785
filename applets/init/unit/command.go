package unit

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// parseCommands parses the value of an Exec*= key as systemd's
// config_parse_exec does: words are split with quotes and C escapes, then
// their specifiers are expanded; a lone ";" word separates commands and "\;"
// is a literal ";" argument. The first word may carry the "-" prefix. The
// value must not be empty (an empty assignment is a reset, handled earlier).
func parseCommands(value string, spec specifiers) ([]Command, error) {
	var cmds []Command
	p := value
	for {
		first, rest, found, err := nextWord(p, unquote|cunescape)
		if err != nil {
			return nil, err
		}
		if !found {
			return cmds, nil
		}
		p = rest
		var cmd Command
		exe := first
	prefixes:
		for exe != "" {
			switch exe[0] {
			case '-':
				if cmd.IgnoreFailure {
					break prefixes
				}
				cmd.IgnoreFailure = true
			case '@', ':', '+', '!':
				return nil, fmt.Errorf("command prefix %q is not supported", exe[:1])
			default:
				break prefixes
			}
			exe = exe[1:]
		}
		exe, err = spec.expand(exe)
		if err != nil {
			return nil, err
		}
		if err := checkExecutable(exe); err != nil {
			return nil, err
		}
		cmd.Argv = []string{exe}
		semicolon := false
		for p != "" && !semicolon {
			switch {
			case p[0] == ';' && (len(p) == 1 || isSpace(p[1])):
				p = trimLeftSpace(p[1:])
				semicolon = true
				continue
			case strings.HasPrefix(p, `\;`) && (len(p) == 2 || isSpace(p[2])):
				cmd.Argv = append(cmd.Argv, ";")
				p = trimLeftSpace(p[2:])
				continue
			}
			var w string
			w, p, _, err = nextWord(p, unquote|cunescape)
			if err != nil {
				return nil, err
			}
			if w, err = spec.expand(w); err != nil {
				return nil, err
			}
			cmd.Argv = append(cmd.Argv, w)
		}
		cmds = append(cmds, cmd)
		if !semicolon {
			return cmds, nil
		}
	}
}

// checkExecutable applies systemd's rules to the program of a command line:
// an absolute, normalized path to a file, or a bare file name to be looked up
// in the search path.
func checkExecutable(exe string) error {
	switch {
	case exe == "":
		return errors.New("empty executable path")
	case exe[0] == '/':
		if strings.HasSuffix(exe, "/") {
			return fmt.Errorf("executable path %q names a directory", exe)
		}
		if path.Clean(exe) != exe {
			return fmt.Errorf("executable path %q is not normalized", exe)
		}
	case strings.IndexByte(exe, '/') >= 0:
		return fmt.Errorf("executable path %q is neither absolute nor a bare file name", exe)
	case exe == "." || exe == "..":
		return fmt.Errorf("executable %q is not a file name", exe)
	case len(exe) > maxNameLen:
		return fmt.Errorf("executable name %q is too long", exe)
	}
	return nil
}

// Expand substitutes environment variables into the command's words as
// systemd does when it starts a command, and returns the resulting argument
// vector; c is not modified. It applies to every word, Argv[0] included:
//
//   - A word that is exactly "$NAME" is replaced by the value of NAME split
//     into words at whitespace, honouring '…' and "…" quotes in the value
//     (so it may become several arguments, or none). When NAME is unset, or
//     is not a valid variable name, the word disappears.
//   - Elsewhere "${NAME}" is replaced by the value of NAME verbatim (the
//     empty string when unset), inside the same word.
//   - "$$" is a literal "$". Any other "$" is kept as it is; in particular
//     "$NAME" inside a longer word is not substituted, nor are the
//     "${NAME:-default}" forms of the shell.
//
// The result may be empty; the caller decides what that means.
func (c Command) Expand(env map[string]string) []string {
	out := make([]string, 0, len(c.Argv))
	for _, w := range c.Argv {
		if len(w) > 0 && w[0] == '$' && (len(w) == 1 || w[1] != '{' && w[1] != '$') {
			name := w[1:]
			if v, ok := env[name]; ok && validEnvName(name) {
				out = append(out, splitValue(v)...)
			}
			continue
		}
		out = append(out, replaceEnv(w, env))
	}
	return out
}

// splitValue splits a variable's value into words as systemd does for a
// "$NAME" word: quotes group and are removed, a backslash takes the next
// byte literally, and nothing is an error.
func splitValue(v string) []string {
	var words []string
	for {
		w, rest, found, _ := nextWord(v, unquote|relax)
		if !found {
			return words
		}
		words = append(words, w)
		v = rest
	}
}

// replaceEnv substitutes "${NAME}" and "$$" in s, as systemd's replace_env
// does without its braceless and extended forms.
func replaceEnv(s string, env map[string]string) string {
	if strings.IndexByte(s, '$') < 0 {
		return s
	}
	const (
		plain    = iota
		dollar   // just after a '$'
		variable // inside "${…"
	)
	var b strings.Builder
	state, start := plain, 0 // s[start:] is not written out yet
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch state {
		case plain:
			if c == '$' {
				state = dollar
			}
		case dollar:
			switch c {
			case '{':
				b.WriteString(s[start : i-1])
				start = i - 1
				state = variable
			case '$':
				b.WriteString(s[start:i])
				start = i + 1
				state = plain
			default:
				state = plain
			}
		case variable:
			switch c {
			case '}':
				b.WriteString(env[s[start+2:i]])
				start = i + 1
				state = plain
			case ':':
				state = plain // unsupported "${NAME:…}": kept as written
			}
		}
	}
	b.WriteString(s[start:])
	return b.String()
}
