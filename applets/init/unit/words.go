package unit

import (
	"errors"
	"unicode/utf8"
)

// wordFlags select how nextWord treats quotes and backslashes, mirroring the
// EXTRACT_* flags of systemd's extract_first_word.
type wordFlags uint8

const (
	// unquote: '…' and "…" group whitespace into one word and are removed.
	unquote wordFlags = 1 << iota
	// cunescape: a backslash starts a C escape (\n, \x41, \s …); an unknown
	// escape is an error. Without it a backslash takes the next byte literally.
	cunescape
	// relax: an unterminated quote or a trailing backslash ends the word
	// instead of being an error.
	relax
)

// isSpace reports whether c is one of systemd's WHITESPACE bytes.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

// trimSpace strips systemd's WHITESPACE (not Unicode space) from both ends.
func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && isSpace(s[i]) {
		i++
	}
	for j > i && isSpace(s[j-1]) {
		j--
	}
	return s[i:j]
}

func trimLeftSpace(s string) string {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return s[i:]
}

// splitFields splits s on systemd's WHITESPACE, with no quote handling.
func splitFields(s string) []string {
	var out []string
	for {
		s = trimLeftSpace(s)
		if s == "" {
			return out
		}
		i := 0
		for i < len(s) && !isSpace(s[i]) {
			i++
		}
		out = append(out, s[:i])
		s = s[i:]
	}
}

// nextWord extracts the first whitespace-separated word of s the way
// systemd's extract_first_word does. It returns the word, the rest of s after
// the word and the whitespace that follows it, and whether there was a word
// at all (a quoted empty string "" is a word).
func nextWord(s string, flags wordFlags) (word, rest string, found bool, err error) {
	s = trimLeftSpace(s)
	if s == "" {
		return "", "", false, nil
	}
	var b []byte
	var quote byte
	i := 0
	for {
		if i == len(s) {
			if quote != 0 && flags&relax == 0 {
				return "", "", false, errors.New("unterminated quote")
			}
			return string(b), "", true, nil
		}
		c := s[i]
		switch {
		case c == '\\':
			i++
			if i == len(s) {
				if flags&relax != 0 {
					return string(b), "", true, nil
				}
				return "", "", false, errors.New("trailing backslash")
			}
			if flags&cunescape == 0 {
				b = append(b, s[i])
				i++
				continue
			}
			out, n, ok := unescapeOne(s[i:])
			if !ok {
				return "", "", false, errors.New("invalid escape sequence")
			}
			b = append(b, out...)
			i += n
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b = append(b, c)
			}
			i++
		case (c == '"' || c == '\'') && flags&unquote != 0:
			quote = c
			i++
		case isSpace(c):
			return string(b), trimLeftSpace(s[i:]), true, nil
		default:
			b = append(b, c)
			i++
		}
	}
}

// unescapeOne decodes the C escape at the start of s (s begins just after the
// backslash) as systemd's cunescape_one does, refusing NUL. It returns the
// bytes it stands for and how many bytes of s it used.
func unescapeOne(s string) (out []byte, n int, ok bool) {
	switch s[0] {
	case 'a':
		return []byte{'\a'}, 1, true
	case 'b':
		return []byte{'\b'}, 1, true
	case 'f':
		return []byte{'\f'}, 1, true
	case 'n':
		return []byte{'\n'}, 1, true
	case 'r':
		return []byte{'\r'}, 1, true
	case 't':
		return []byte{'\t'}, 1, true
	case 'v':
		return []byte{'\v'}, 1, true
	case '\\', '"', '\'':
		return []byte{s[0]}, 1, true
	case 's':
		return []byte{' '}, 1, true
	case 'x':
		v, ok := digits(s[1:], 2, 16)
		if !ok || v == 0 {
			return nil, 0, false
		}
		return []byte{byte(v)}, 3, true
	case 'u', 'U':
		width := 4
		if s[0] == 'U' {
			width = 8
		}
		v, ok := digits(s[1:], width, 16)
		if !ok || v == 0 || v > utf8.MaxRune || !utf8.ValidRune(rune(v)) {
			return nil, 0, false
		}
		return utf8.AppendRune(nil, rune(v)), 1 + width, true
	case '0', '1', '2', '3', '4', '5', '6', '7':
		v, ok := digits(s, 3, 8)
		if !ok || v == 0 || v > 255 {
			return nil, 0, false
		}
		return []byte{byte(v)}, 3, true
	}
	return nil, 0, false
}

// digits reads exactly n digits of the given base from the start of s.
func digits(s string, n int, base uint32) (uint32, bool) {
	if len(s) < n {
		return 0, false
	}
	var v uint32
	for i := 0; i < n; i++ {
		var d uint32
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			d = uint32(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint32(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint32(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		v = v*base + d
	}
	return v, true
}
