package machine

import (
	"errors"
	"fmt"
)

// The corebox keys of the kernel command line.
const (
	KeyConfig    = "corebox.config"    // where the machine config is: an http(s) URL or an absolute path
	KeyDebug     = "corebox.debug"     // 1: verbose logs; 0: normal
	KeyHostname  = "corebox.hostname"  // host name, overriding the config's
	KeyEmergency = "corebox.emergency" // 1: start the emergency shell instead of the units
	KeyIP        = "ip"                // the kernel's nfsroot ip= syntax, overriding the config's network
)

// Param is one word of a kernel command line.
type Param struct {
	Key      string
	Value    string // without the quotes that grouped it
	HasValue bool   // the word had an "=": "quiet" has none, "quiet=" has an empty one
}

// Cmdline is a parsed kernel command line. Nothing is dropped: unknown keys
// are kept for whoever wants them.
type Cmdline struct {
	// Params maps each key before "--" to its value ("" for a bare word).
	// When a key repeats, the last value wins.
	Params map[string]string
	// Args holds every parameter before "--" in order, repeats included
	// (console= may rightly appear more than once).
	Args []Param
	// Init holds the words after "--", which the kernel passes to init as
	// its arguments, quotes removed.
	Init []string
}

// ParseCmdline splits s, the contents of /proc/cmdline, into parameters by
// the kernel's rules (lib/cmdline.c next_arg): words are separated by
// whitespace outside double quotes; a value that starts with a quote loses it
// and the word's closing quote (`key="a b"` is key → `a b`), as does a word
// that starts with one (`"key=a b"`); quotes elsewhere stay; an unclosed
// quote runs to the end. A bare "--" ends the kernel's parameters.
func ParseCmdline(s string) Cmdline {
	c := Cmdline{Params: map[string]string{}}
	afterDashes := false
	for rest := s; ; {
		p, word, next, ok := nextArg(rest)
		if !ok {
			break
		}
		rest = next
		if afterDashes {
			c.Init = append(c.Init, word)
			continue
		}
		if !p.HasValue && p.Key == "--" {
			afterDashes = true
			continue
		}
		c.Args = append(c.Args, p)
		c.Params[p.Key] = p.Value
	}
	return c
}

// nextArg takes the first parameter off s. word is the parameter with its
// grouping quotes removed, as the kernel hands it to init after "--".
func nextArg(s string) (p Param, word, rest string, ok bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	s = s[i:]
	if s == "" {
		return Param{}, "", "", false
	}
	quoted := false
	if s[0] == '"' {
		s = s[1:]
		quoted = true
	}
	inQuote := quoted
	equals := -1
	n := 0
	for ; n < len(s); n++ {
		if isSpace(s[n]) && !inQuote {
			break
		}
		if equals < 0 && s[n] == '=' {
			equals = n
		}
		if s[n] == '"' {
			inQuote = !inQuote
		}
	}
	arg := s[:n]
	if n < len(s) {
		rest = s[n+1:]
	}
	// The kernel strips one closing quote, whichever rule asked for it.
	closing := len(arg) > 0 && arg[len(arg)-1] == '"'
	if equals < 0 {
		if quoted && closing {
			arg = arg[:len(arg)-1]
		}
		return Param{Key: arg}, arg, rest, true
	}
	key, val := arg[:equals], arg[equals+1:]
	if val != "" && val[0] == '"' {
		val = val[1:]
		if closing && val != "" {
			val = val[:len(val)-1]
		}
	} else if quoted && closing && val != "" {
		val = val[:len(val)-1]
	}
	return Param{Key: key, Value: val, HasValue: true}, key + "=" + val, rest, true
}

// isSpace is the kernel's isspace for the ASCII range.
func isSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

// last returns the last parameter named key.
func (c Cmdline) last(key string) (Param, bool) {
	for i := len(c.Args) - 1; i >= 0; i-- {
		if c.Args[i].Key == key {
			return c.Args[i], true
		}
	}
	return Param{}, false
}

// keyError names the parameter a bad value came from, as `ip=: …`.
func keyError(key string, err error) error {
	return fmt.Errorf("%s=: %w", key, err)
}

// ConfigSource returns the corebox.config= value: "" when absent (use the
// embedded default), else an http(s) URL or an absolute path.
func (c Cmdline) ConfigSource() (string, error) {
	p, ok := c.last(KeyConfig)
	if !ok {
		return "", nil
	}
	if _, err := parseSource(p.Value); err != nil {
		return "", keyError(KeyConfig, err)
	}
	return p.Value, nil
}

// Debug reports corebox.debug=: "1" or a bare "corebox.debug" is true, "0"
// or absence false.
func (c Cmdline) Debug() (bool, error) { return c.flag(KeyDebug) }

// Emergency reports corebox.emergency=: "1" or a bare "corebox.emergency"
// asks for the emergency shell; "0" or absence does not.
func (c Cmdline) Emergency() (bool, error) { return c.flag(KeyEmergency) }

func (c Cmdline) flag(key string) (bool, error) {
	p, ok := c.last(key)
	switch {
	case !ok:
		return false, nil
	case !p.HasValue || p.Value == "1":
		return true, nil
	case p.Value == "0":
		return false, nil
	}
	return false, keyError(key, fmt.Errorf("want 1 or 0, got %q", p.Value))
}

// Hostname returns corebox.hostname=, "" when absent.
func (c Cmdline) Hostname() (string, error) {
	p, ok := c.last(KeyHostname)
	if !ok {
		return "", nil
	}
	if err := checkHostname(p.Value); err != nil {
		return "", keyError(KeyHostname, err)
	}
	return p.Value, nil
}

// IP returns the ip= parameter parsed by ParseIP; ok is false when there is
// none.
func (c Cmdline) IP() (ip IPConfig, ok bool, err error) {
	p, ok := c.last(KeyIP)
	if !ok {
		return IPConfig{}, false, nil
	}
	ip, err = ParseIP(p.Value)
	if err != nil {
		return IPConfig{}, true, keyError(KeyIP, err)
	}
	return ip, true, nil
}

// Validate checks every key that has a typed accessor and returns all their
// errors joined, or nil.
func (c Cmdline) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err := c.ConfigSource()
	add(err)
	_, err = c.Debug()
	add(err)
	_, err = c.Emergency()
	add(err)
	_, err = c.Hostname()
	add(err)
	_, _, err = c.IP()
	add(err)
	return errors.Join(errs...)
}
