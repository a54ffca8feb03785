package unit

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxNameLen is systemd's UNIT_NAME_MAX less the terminating NUL.
const maxNameLen = 255

// CheckName reports whether name can be the name of a unit this package
// parses: a systemd unit name (prefix, optional "@instance", ".suffix") whose
// suffix is "service" or "target". Templates such as "apache@.service" are
// accepted; %i expands to "" in them.
func CheckName(name string) error {
	if err := checkUnitName(name, true); err != nil {
		return err
	}
	switch suffix(name) {
	case "service", "target":
		return nil
	}
	return fmt.Errorf("invalid unit name %q: only .service and .target units are supported", name)
}

// checkUnitName checks name against systemd's unit_name_is_valid for plain
// and instance names, and template names when template is set.
func checkUnitName(name string, template bool) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid unit name %q: %s", name, why)
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > maxNameLen {
		return bad(fmt.Sprintf("longer than %d bytes", maxNameLen))
	}
	dot := strings.LastIndexByte(name, '.')
	if dot <= 0 {
		return bad("want NAME.TYPE")
	}
	if !knownUnitType(name[dot+1:]) {
		return bad(fmt.Sprintf("unknown unit type %q", name[dot+1:]))
	}
	stem := name[:dot]
	at := strings.IndexByte(stem, '@')
	for i := 0; i < len(stem); i++ {
		// The first '@' ends the prefix; an instance may hold more of them.
		if c := stem[i]; !nameByte(c) && c != '@' {
			r, _ := utf8.DecodeRuneInString(stem[i:])
			return bad(fmt.Sprintf("invalid character %q", r))
		}
	}
	switch {
	case at == 0:
		return bad("empty prefix before '@'")
	case at > 0 && at == len(stem)-1 && !template:
		return bad("a template cannot be named here")
	}
	return nil
}

// nameByte reports whether c may appear in a unit name prefix.
func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == ':' || c == '-' || c == '_' || c == '.' || c == '\\'
}

func knownUnitType(t string) bool {
	switch t {
	case "service", "socket", "target", "device", "mount", "automount",
		"swap", "timer", "path", "slice", "scope":
		return true
	}
	return false
}

// suffix returns the unit type of name: the part after its last dot.
func suffix(name string) string {
	return name[strings.LastIndexByte(name, '.')+1:]
}

// specifiers resolves the %-specifiers of one unit.
type specifiers struct {
	name     string // %n
	stem     string // %N: name without the type suffix
	prefix   string // %p: before the first '@', or the stem
	instance string // %i: after the first '@'
	extra    map[rune]string
}

func newSpecifiers(name string, extra map[rune]string) specifiers {
	s := specifiers{name: name, stem: name, extra: extra}
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		s.stem = name[:dot]
	}
	s.prefix = s.stem
	if at := strings.IndexByte(s.stem, '@'); at >= 0 {
		s.prefix, s.instance = s.stem[:at], s.stem[at+1:]
	}
	return s
}

func (s specifiers) lookup(r rune) (string, bool) {
	switch r {
	case 'n':
		return s.name, true
	case 'N':
		return s.stem, true
	case 'p':
		return s.prefix, true
	case 'i':
		return s.instance, true
	case '%':
		return "%", true
	}
	v, ok := s.extra[r]
	return v, ok
}

// expand replaces the specifiers in v as systemd's specifier_printf does: an
// unknown specifier is an error and a lone '%' at the very end stays. A
// value holding a NUL byte is refused, so that no parsed string has one.
func (s specifiers) expand(v string) (string, error) {
	if strings.IndexByte(v, '%') < 0 {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		c := v[i]
		if c != '%' {
			b.WriteByte(c)
			i++
			continue
		}
		if i+1 == len(v) {
			b.WriteByte('%')
			break
		}
		r, size := utf8.DecodeRuneInString(v[i+1:])
		val, ok := s.lookup(r)
		switch {
		case !ok:
			return "", fmt.Errorf("unknown specifier %q", v[i:i+1+size])
		case strings.IndexByte(val, 0) >= 0:
			return "", fmt.Errorf("specifier %q has a NUL byte in its value", v[i:i+1+size])
		}
		b.WriteString(val)
		i += 1 + size
	}
	return b.String(), nil
}

// ExpandSpecifiers replaces the systemd specifiers in s as Parse does for a
// unit called name: %n is name, %N name without its type suffix, %p the part
// before "@" (or %N), %i the part after "@" and before the suffix, %% a
// percent sign; any other letter is looked up in extra (for example 'H' for
// the host name, 'm' for the machine ID) and is an error when missing. Fleet
// uses it for the values of [X-Fleet], which Parse keeps verbatim.
func ExpandSpecifiers(name, s string, extra map[rune]string) (string, error) {
	return newSpecifiers(name, extra).expand(s)
}
