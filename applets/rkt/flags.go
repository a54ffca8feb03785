package rkt

import (
	"fmt"
	"strconv"
	"strings"
)

// flagKind is how a flag takes its value, as spf13/pflag (rkt's parser) does.
type flagKind int

const (
	// boolFlag: --name means true; --name=true|false sets it. A following
	// word is never taken as its value.
	boolFlag flagKind = iota
	// valueFlag: --name=VALUE or --name VALUE.
	valueFlag
	// optionalFlag: --name alone means its implied value (status --wait),
	// --name=VALUE sets one; a following word is never taken.
	optionalFlag
)

// flagDef declares one long flag of a command.
type flagDef struct {
	name    string
	kind    flagKind
	implied string // optionalFlag: the value of a bare --name
	usage   string
}

// flagValues holds every value given to each flag, in command-line order
// (repeatable flags like --volume keep them all; others use the last).
type flagValues map[string][]string

// last returns the last value given to name, or def.
func (v flagValues) last(name, def string) string {
	if vs := v[name]; len(vs) > 0 {
		return vs[len(vs)-1]
	}
	return def
}

// bool returns the value of a boolFlag (false when absent).
func (v flagValues) bool(name string) bool {
	b, _ := strconv.ParseBool(v.last(name, "false"))
	return b
}

// flagSet is the flags a command accepts.
type flagSet []flagDef

func (s flagSet) lookup(name string) (flagDef, bool) {
	for _, d := range s {
		if d.name == name {
			return d, true
		}
	}
	return flagDef{}, false
}

// parseFlag reads the flag at args[0] (which starts with "--") and returns
// its name, its value and how many words it used.
func (s flagSet) parseFlag(args []string) (name, value string, used int, err error) {
	a := strings.TrimPrefix(args[0], "--")
	name, value, hasValue := strings.Cut(a, "=")
	def, ok := s.lookup(name)
	if !ok || name == "" {
		return "", "", 0, fmt.Errorf("unknown flag: --%s", name)
	}
	switch def.kind {
	case boolFlag:
		if !hasValue {
			return name, "true", 1, nil
		}
		b, err := strconv.ParseBool(value)
		if err != nil {
			return "", "", 0, fmt.Errorf("invalid argument %q for --%s: want true or false", value, name)
		}
		return name, strconv.FormatBool(b), 1, nil
	case optionalFlag:
		if !hasValue {
			return name, def.implied, 1, nil
		}
		return name, value, 1, nil
	default:
		if hasValue {
			return name, value, 1, nil
		}
		if len(args) < 2 {
			return "", "", 0, fmt.Errorf("flag needs an argument: --%s", name)
		}
		return name, args[1], 2, nil
	}
}

// parse splits args into flag values and positional words. With
// interspersed, flags may follow positional words (pflag's default);
// without it, the first positional word ends the flags. "--" always ends
// them. "-h" is --help.
func (s flagSet) parse(args []string, interspersed bool) (flagValues, []string, error) {
	vals := flagValues{}
	var words []string
	for i := 0; i < len(args); {
		a := args[i]
		switch {
		case a == "--":
			return vals, append(words, args[i+1:]...), nil
		case a == "-h":
			a = "--help"
			fallthrough
		case strings.HasPrefix(a, "--"):
			rest := append([]string{a}, args[i+1:]...)
			name, value, used, err := s.parseFlag(rest)
			if err != nil {
				return nil, nil, err
			}
			vals[name] = append(vals[name], value)
			i += used
		case strings.HasPrefix(a, "-") && a != "-":
			return nil, nil, fmt.Errorf("unknown shorthand flag: %q", a)
		default:
			if !interspersed {
				return vals, append(words, args[i:]...), nil
			}
			words = append(words, a)
			i++
		}
	}
	return vals, words, nil
}
