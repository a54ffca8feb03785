package unit

import (
	"fmt"
	"io"
	"strings"
)

// ParseEnvironmentFile reads the KEY=VALUE lines of a file named by
// EnvironmentFile= and returns them as "KEY=VALUE" entries in the order the
// keys first appear; a key given again keeps its place and takes the later
// value. The syntax is systemd's (load_env_file):
//
//   - Lines whose first non-blank character is '#' or ';' are comments. A
//     '#' after a value is part of the value.
//   - Whitespace around the key and before the value is dropped, and so is
//     trailing whitespace of an unquoted value.
//   - A value may start with '…' (taken literally) or "…" (where a backslash
//     escapes '"', '\', '`', '$' and a newline, and is kept before anything
//     else); quoted values may span lines. After a closing quote, blanks are
//     skipped and what follows is joined on; another quote there opens
//     another quoted part, but quotes after unquoted text are literal.
//   - Unquoted, a backslash takes the next character literally, and a
//     backslash at the end of a line joins the next line.
//   - No variables are expanded and "export " is not understood.
//
// Where systemd skips a line it cannot use, ParseEnvironmentFile returns a
// *SyntaxError (with an empty File, for the caller to fill in) naming the
// line: a line without '=', an invalid variable name, an unterminated quote,
// a NUL byte or invalid UTF-8.
func ParseEnvironmentFile(r io.Reader) ([]string, error) {
	src, err := io.ReadAll(io.LimitReader(r, maxSourceSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading environment file: %w", err)
	}
	if len(src) > maxSourceSize {
		return nil, &SyntaxError{Msg: fmt.Sprintf("environment file is larger than %d bytes", maxSourceSize)}
	}
	return parseEnvironment(string(src))
}

func parseEnvironment(src string) ([]string, error) {
	const (
		preKey = iota
		key
		preValue
		value
		valueEscape
		singleQuote
		doubleQuote
		doubleQuoteEscape
		comment
	)
	var (
		env      []string
		index    = map[string]int{}
		state    = preKey
		line     = 1 // current line
		keyLine  = 1 // line the current key starts on
		k, v     []byte
		keyEnd   = -1 // length of k without trailing whitespace
		valueEnd = -1 // length of v without trailing whitespace, when unquoted
	)
	fail := func(n int, format string, args ...any) error {
		return &SyntaxError{Line: n, Msg: fmt.Sprintf(format, args...)}
	}
	push := func() error {
		if keyEnd >= 0 {
			k = k[:keyEnd]
		}
		if state == value && valueEnd >= 0 {
			v = v[:valueEnd]
		}
		name, val := string(k), string(v)
		if !validEnvName(name) {
			return fail(keyLine, "invalid variable name %q", name)
		}
		if err := checkEnvValue(name, val); err != nil {
			return fail(keyLine, "%v", err)
		}
		if i, ok := index[name]; ok {
			env[i] = name + "=" + val
		} else {
			index[name] = len(env)
			env = append(env, name+"="+val)
		}
		k, v, keyEnd, valueEnd = k[:0], v[:0], -1, -1
		return nil
	}
	if i := strings.IndexByte(src, 0); i >= 0 {
		return nil, fail(1+strings.Count(src[:i], "\n"), "NUL byte")
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		newline := c == '\n' || c == '\r'
		switch state {
		case preKey:
			switch {
			case c == '#' || c == ';':
				state = comment
			case !isSpace(c):
				state, keyLine, keyEnd = key, line, -1
				k = append(k, c)
			}
		case key:
			switch {
			case newline:
				return nil, fail(keyLine, "line is not KEY=VALUE: %q", string(k))
			case c == '=':
				state, valueEnd = preValue, -1
			default:
				if !isSpace(c) {
					keyEnd = -1
				} else if keyEnd < 0 {
					keyEnd = len(k)
				}
				k = append(k, c)
			}
		case preValue:
			switch {
			case newline:
				if err := push(); err != nil {
					return nil, err
				}
				state = preKey
			case c == '\'':
				state = singleQuote
			case c == '"':
				state = doubleQuote
			case c == '\\':
				state = valueEscape
			case !isSpace(c):
				state = value
				v = append(v, c)
			}
		case value:
			switch {
			case newline:
				if err := push(); err != nil {
					return nil, err
				}
				state = preKey
			case c == '\\':
				state, valueEnd = valueEscape, -1
			default:
				if !isSpace(c) {
					valueEnd = -1
				} else if valueEnd < 0 {
					valueEnd = len(v)
				}
				v = append(v, c)
			}
		case valueEscape:
			state = value
			if !newline {
				v = append(v, c)
			}
		case singleQuote:
			if c == '\'' {
				state = preValue
			} else {
				v = append(v, c)
			}
		case doubleQuote:
			switch c {
			case '"':
				state = preValue
			case '\\':
				state = doubleQuoteEscape
			default:
				v = append(v, c)
			}
		case doubleQuoteEscape:
			state = doubleQuote
			switch {
			case strings.IndexByte("\"\\`$", c) >= 0:
				v = append(v, c)
			case c != '\n':
				v = append(v, '\\', c)
			}
		case comment:
			if newline {
				state = preKey
			}
		}
		if c == '\n' {
			line++
		}
	}
	switch state {
	case key:
		return nil, fail(keyLine, "line is not KEY=VALUE: %q", string(k))
	case singleQuote, doubleQuote, doubleQuoteEscape:
		return nil, fail(keyLine, "unterminated quote in value of %s", string(k))
	case preValue, value, valueEscape:
		if err := push(); err != nil {
			return nil, err
		}
	}
	return env, nil
}
