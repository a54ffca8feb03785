package etcdctl

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// flagKind is the type of a flag's value.
type flagKind int

const (
	boolFlag flagKind = iota
	intFlag
	stringFlag
	durationFlag
)

// flagSpec is one flag as urfave/cli declares it: "recursive, r" names a
// flag and its alias.
type flagSpec struct {
	name  string
	kind  flagKind
	usage string
	value string // the default, as text
}

var (
	helpFlag    = flagSpec{name: "help, h", usage: "show help"}
	versionFlag = flagSpec{name: "version, v", usage: "print the version"}
)

func (f flagSpec) names() []string {
	parts := strings.Split(f.name, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// parsedFlags are the values of one parse.
type parsedFlags struct {
	set *flag.FlagSet
}

func (p *parsedFlags) bool(name string) bool {
	return p.set.Lookup(name).Value.(flag.Getter).Get().(bool)
}

func (p *parsedFlags) int(name string) int {
	return p.set.Lookup(name).Value.(flag.Getter).Get().(int)
}

func (p *parsedFlags) string(name string) string {
	return p.set.Lookup(name).Value.String()
}

func (p *parsedFlags) duration(name string) time.Duration {
	return p.set.Lookup(name).Value.(flag.Getter).Get().(time.Duration)
}

func (p *parsedFlags) args() []string { return p.set.Args() }

// parseFlags parses args with Go's flag package as urfave/cli does, so that
// its error messages are etcdctl's. With reorder, the flags of specs found
// after arguments are moved before them first, as urfave/cli does for a
// command's flags (not for the global ones).
func parseFlags(name string, specs []flagSpec, args []string, reorder bool) (*parsedFlags, error) {
	set := flag.NewFlagSet(name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, s := range specs {
		for _, n := range s.names() {
			switch s.kind {
			case boolFlag:
				set.Bool(n, s.value == "true", s.usage)
			case intFlag:
				var v int
				fmt.Sscan(s.value, &v)
				set.Int(n, v, s.usage)
			case stringFlag:
				set.String(n, s.value, s.usage)
			case durationFlag:
				v, _ := time.ParseDuration(s.value)
				set.Duration(n, v, s.usage)
			}
		}
	}
	if reorder {
		args = reorderArgs(specs, args)
	}
	err := set.Parse(args)
	if nerr := normalizeFlags(specs, set); nerr != nil {
		return nil, &normalizeError{nerr}
	}
	if err != nil {
		return nil, err
	}
	return &parsedFlags{set: set}, nil
}

// normalizeError is a flag given under two of its names; urfave/cli reports
// it apart from other parse errors.
type normalizeError struct{ error }

// normalizeFlags copies each given flag's value to its aliases, refusing a
// flag given under two names, as urfave/cli does.
func normalizeFlags(specs []flagSpec, set *flag.FlagSet) error {
	visited := map[string]bool{}
	set.Visit(func(f *flag.Flag) { visited[f.Name] = true })
	for _, s := range specs {
		names := s.names()
		if len(names) == 1 {
			continue
		}
		var given *flag.Flag
		for _, n := range names {
			if visited[n] {
				if given != nil {
					return errors.New("Cannot use two forms of the same flag: " + n + " " + given.Name)
				}
				given = set.Lookup(n)
			}
		}
		if given == nil {
			continue
		}
		for _, n := range names {
			if !visited[n] {
				set.Set(n, given.Value.String())
			}
		}
	}
	return nil
}

// reorderArgs moves the flags of specs (and a value after each) before the
// other arguments, stopping at "--", which it moves first: urfave/cli
// 1.22's reorderArgs, whose quirks etcdctl's users live with (exec-watch's
// argument order depends on it).
func reorderArgs(specs []flagSpec, args []string) []string {
	var remaining, reordered []string
	nextMayBeValue := false
	for i, arg := range args {
		switch {
		case nextMayBeValue && !isFlag(specs, arg):
			nextMayBeValue = false
			reordered = append(reordered, arg)
		case arg == "--":
			remaining = append([]string{"--"}, remaining...)
			remaining = append(remaining, args[i+1:]...)
			return append(reordered, remaining...)
		case isFlag(specs, arg):
			reordered = append(reordered, arg)
			nextMayBeValue = !strings.Contains(arg, "=")
		default:
			remaining = append(remaining, arg)
		}
	}
	return append(reordered, remaining...)
}

// isFlag reports whether arg names one of specs' flags.
func isFlag(specs []flagSpec, arg string) bool {
	if arg == "-" || arg == "--" || !strings.HasPrefix(arg, "-") {
		return false
	}
	if strings.HasPrefix(arg, "--") {
		arg = strings.Replace(arg, "-", "", 2)
	}
	if strings.HasPrefix(arg, "-") {
		arg = strings.Replace(arg, "-", "", 1)
	}
	arg = strings.Split(arg, "=")[0]
	for _, s := range specs {
		for _, n := range s.names() {
			if n == arg {
				return true
			}
		}
	}
	return false
}

// helpLine is a flag's line in a help text, before tab alignment.
func (f flagSpec) helpLine() string {
	placeholder, usage := unquoteUsage(f.usage)
	def := ""
	switch f.kind {
	case intFlag, durationFlag:
		def = " (default: " + f.value + ")"
	case stringFlag:
		if f.value != "" {
			def = fmt.Sprintf(" (default: %q)", f.value)
		}
	}
	if f.kind != boolFlag && placeholder == "" {
		placeholder = "value"
	}
	var names []string
	for _, n := range f.names() {
		p := "--"
		if len(n) == 1 {
			p = "-"
		}
		if placeholder != "" {
			n += " " + placeholder
		}
		names = append(names, p+n)
	}
	return strings.Join(names, ", ") + "\t" + strings.TrimSpace(usage+def)
}

// unquoteUsage takes a `placeholder` out of a usage text.
func unquoteUsage(usage string) (string, string) {
	i := strings.IndexByte(usage, '`')
	if i < 0 {
		return "", usage
	}
	j := strings.IndexByte(usage[i+1:], '`')
	if j < 0 {
		return "", usage
	}
	name := usage[i+1 : i+1+j]
	return name, usage[:i] + name + usage[i+2+j:]
}

// writeAligned writes text through a tabwriter set as urfave/cli's help.
func writeAligned(w io.Writer, text string) {
	tw := tabwriter.NewWriter(w, 1, 8, 2, ' ', 0)
	io.WriteString(tw, text)
	tw.Flush()
}
