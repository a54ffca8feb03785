package unit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// parseBool parses a boolean as systemd's parse_boolean does.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, errors.New("want yes, no, true, false, 1, 0, on or off")
}

// maxUsec is the largest time span, in microseconds, a time.Duration holds.
const maxUsec = math.MaxInt64 / int64(time.Microsecond)

// timeUnit returns the multiplier, in microseconds, of the unit name that s
// starts with, and the rest of s; systemd's extract_multiplier, whose order
// (longest match first within each letter) it keeps.
func timeUnit(s string) (rest string, usec uint64, ok bool) {
	const (
		sec   = 1000 * 1000
		min   = 60 * sec
		hour  = 60 * min
		day   = 24 * hour
		week  = 7 * day
		month = 2629800 * sec
		year  = 31557600 * sec
	)
	units := [...]struct {
		name string
		usec uint64
	}{
		{"seconds", sec}, {"second", sec}, {"sec", sec}, {"s", sec},
		{"minutes", min}, {"minute", min}, {"min", min},
		{"months", month}, {"month", month}, {"M", month},
		{"msec", 1000}, {"ms", 1000}, {"m", min},
		{"hours", hour}, {"hour", hour}, {"hr", hour}, {"h", hour},
		{"days", day}, {"day", day}, {"d", day},
		{"weeks", week}, {"week", week}, {"w", week},
		{"years", year}, {"year", year}, {"y", year},
		{"usec", 1}, {"us", 1}, {"\u03bcs", 1}, {"\u00b5s", 1},
	}
	for _, u := range units {
		if r, found := strings.CutPrefix(s, u.name); found {
			return r, u.usec, true
		}
	}
	return s, 0, false
}

// parseDuration parses a systemd time span as parse_sec does: a sum of
// numbers, each with an optional unit (seconds when it has none), with
// optional whitespace anywhere between them ("5", "500ms", "1min 30s",
// "1.5h"), or "infinity", which sets infinite. The result is truncated to
// whole microseconds, systemd's resolution.
func parseDuration(s string) (d time.Duration, infinite bool, err error) {
	s = trimSpace(s)
	if s == "infinity" {
		return 0, true, nil
	}
	if s == "" {
		return 0, false, errors.New("empty time span")
	}
	var total uint64
	add := func(v uint64) error {
		if v > uint64(maxUsec)-total {
			return errors.New("time span out of range")
		}
		total += v
		return nil
	}
	for p := s; ; {
		p = trimLeftSpace(p)
		if p == "" {
			break
		}
		i := 0
		for i < len(p) && p[i] >= '0' && p[i] <= '9' {
			i++
		}
		whole, frac := p[:i], ""
		p = p[i:]
		if strings.HasPrefix(p, ".") {
			j := 1
			for j < len(p) && p[j] >= '0' && p[j] <= '9' {
				j++
			}
			frac, p = p[1:j], p[j:]
			if frac == "" {
				return 0, false, errors.New("no digits after '.'")
			}
		} else if whole == "" {
			return 0, false, fmt.Errorf("want a number at %q", p)
		}
		rest, mult, ok := timeUnit(trimLeftSpace(p))
		if !ok {
			if p != "" && !isSpace(p[0]) {
				return 0, false, fmt.Errorf("unknown time unit at %q", p)
			}
			mult = 1000 * 1000
		}
		p = rest
		if whole != "" {
			n, err := strconv.ParseUint(whole, 10, 64)
			if err != nil || n > uint64(maxUsec)/mult {
				return 0, false, errors.New("time span out of range")
			}
			if err := add(n * mult); err != nil {
				return 0, false, err
			}
		}
		m := mult / 10
		for k := 0; k < len(frac) && m > 0; k, m = k+1, m/10 {
			if err := add(uint64(frac[k]-'0') * m); err != nil {
				return 0, false, err
			}
		}
	}
	return time.Duration(total) * time.Microsecond, false, nil
}

// maxSignal is the highest Linux signal number (_NSIG - 1).
const maxSignal = 64

// parseSignal parses a signal given by name, with or without "SIG", or by
// number, as systemd's signal_from_string does (without the RTMIN+n forms).
func parseSignal(s string) (syscall.Signal, error) {
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxSignal {
			return 0, fmt.Errorf("want a signal number from 1 to %d", maxSignal)
		}
		return syscall.Signal(n), nil
	}
	switch strings.TrimPrefix(s, "SIG") {
	case "HUP":
		return syscall.SIGHUP, nil
	case "INT":
		return syscall.SIGINT, nil
	case "QUIT":
		return syscall.SIGQUIT, nil
	case "ILL":
		return syscall.SIGILL, nil
	case "TRAP":
		return syscall.SIGTRAP, nil
	case "ABRT", "IOT":
		return syscall.SIGABRT, nil
	case "BUS":
		return syscall.SIGBUS, nil
	case "FPE":
		return syscall.SIGFPE, nil
	case "KILL":
		return syscall.SIGKILL, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "SEGV":
		return syscall.SIGSEGV, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	case "PIPE":
		return syscall.SIGPIPE, nil
	case "ALRM":
		return syscall.SIGALRM, nil
	case "TERM":
		return syscall.SIGTERM, nil
	case "CHLD":
		return syscall.SIGCHLD, nil
	case "CONT":
		return syscall.SIGCONT, nil
	case "STOP":
		return syscall.SIGSTOP, nil
	case "TSTP":
		return syscall.SIGTSTP, nil
	case "TTIN":
		return syscall.SIGTTIN, nil
	case "TTOU":
		return syscall.SIGTTOU, nil
	case "URG":
		return syscall.SIGURG, nil
	case "XCPU":
		return syscall.SIGXCPU, nil
	case "XFSZ":
		return syscall.SIGXFSZ, nil
	case "VTALRM":
		return syscall.SIGVTALRM, nil
	case "PROF":
		return syscall.SIGPROF, nil
	case "WINCH":
		return syscall.SIGWINCH, nil
	case "IO", "POLL":
		return syscall.SIGIO, nil
	case "SYS":
		return syscall.SIGSYS, nil
	}
	return 0, errors.New("want a signal name such as SIGTERM or TERM, or a number")
}

// validEnvName reports whether s is a valid environment variable name
// (systemd's env_name_is_valid: letters, digits and '_', not starting with a
// digit).
func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkAssignment checks that kv is a valid "NAME=value" environment entry.
func checkAssignment(kv string) error {
	name, value, ok := strings.Cut(kv, "=")
	switch {
	case !ok:
		return fmt.Errorf("%q is not NAME=VALUE", kv)
	case !validEnvName(name):
		return fmt.Errorf("invalid variable name %q", name)
	}
	return checkEnvValue(name, value)
}

// checkEnvValue checks that the value of variable name is valid UTF-8, as
// systemd requires. (NUL bytes never get this far: sources with one, "\x00"
// escapes and specifier values with one are refused earlier.)
func checkEnvValue(name, value string) error {
	if !utf8.ValidString(value) {
		return fmt.Errorf("value of %s is not valid UTF-8", name)
	}
	return nil
}
