// Package systemctl is the systemctl applet: it controls corebox init's
// units through the control socket with systemctl's familiar verbs, flags,
// output and exit codes. It owns only the command line and its output.
package systemctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/corebox/corebox/applets/init/control"
)

// Exit codes as systemctl's (LSB): 3 not active, 4 no such unit.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitInactive = 3
	exitNoUnit   = 4
)

// options are systemctl's flags that corebox honours.
type options struct {
	all    bool
	quiet  bool
	socket string
	lines  int
	kexec  control.PowerRequest // --kernel, --initrd, --append for kexec
}

// Main runs `systemctl VERB [UNIT…]`.
func Main(ctx context.Context, args []string) int {
	return Run(ctx, args, os.Stdout, os.Stderr)
}

// Run is Main with explicit output streams.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opt := options{socket: os.Getenv("COREBOX_INIT_SOCKET"), lines: 10}
	var words []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-a" || a == "--all":
			opt.all = true
		case a == "-q" || a == "--quiet":
			opt.quiet = true
		case a == "--no-pager" || a == "--no-legend" || a == "-l" || a == "--full" || a == "--no-block" || a == "--system":
		case a == "--socket" && i+1 < len(args):
			i++
			opt.socket = args[i]
		case strings.HasPrefix(a, "--socket="):
			opt.socket = strings.TrimPrefix(a, "--socket=")
		case (a == "--kernel" || a == "--initrd" || a == "--append") && i+1 < len(args):
			i++
			*map[string]*string{"--kernel": &opt.kexec.Kernel, "--initrd": &opt.kexec.Initrd, "--append": &opt.kexec.Cmdline}[a] = args[i]
		case (a == "-n" || a == "--lines") && i+1 < len(args):
			i++
			fmt.Sscan(args[i], &opt.lines)
		case a == "-h" || a == "--help":
			usage(stdout)
			return exitOK
		case strings.HasPrefix(a, "-") && a != "-":
			fmt.Fprintf(stderr, "systemctl: unrecognized option '%s'\n", a)
			return exitUsage
		default:
			words = append(words, a)
		}
	}
	verb := "list-units"
	if len(words) > 0 {
		verb, words = words[0], words[1:]
	}
	c := control.NewClient(opt.socket)
	needUnits := map[string]bool{"status": false, "start": true, "stop": true, "restart": true, "cat": true, "is-active": true, "is-failed": true}
	if need, ok := needUnits[verb]; ok && need && len(words) == 0 {
		fmt.Fprintf(stderr, "systemctl: too few arguments: %s needs a unit name\n", verb)
		return exitUsage
	}
	words = normalize(words)
	switch verb {
	case "list-units":
		return listUnits(ctx, c, opt, stdout, stderr)
	case "status":
		return status(ctx, c, opt, words, stdout, stderr)
	case "start", "stop", "restart":
		return act(ctx, c, verb, words, stderr)
	case "cat":
		return cat(ctx, c, words, stdout, stderr)
	case "is-active", "is-failed":
		return isState(ctx, c, verb, opt, words, stdout, stderr)
	case "daemon-reload":
		if err := c.Reload(ctx); err != nil {
			fmt.Fprintf(stderr, "systemctl: daemon-reload: %v\n", err)
			return exitFailure
		}
		return exitOK
	case "kexec":
		if opt.kexec.Kernel == "" {
			fmt.Fprintln(stderr, "systemctl: kexec needs --kernel PATH (and optionally --initrd PATH, --append CMDLINE)")
			return exitUsage
		}
		if err := c.Kexec(ctx, opt.kexec); err != nil {
			fmt.Fprintf(stderr, "systemctl: kexec: %v\n", err)
			return exitFailure
		}
		return exitOK
	case "reboot", "poweroff", "halt":
		if err := c.System(ctx, verb); err != nil {
			fmt.Fprintf(stderr, "systemctl: %s: %v\n", verb, err)
			return exitFailure
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "systemctl: unknown command verb %q\n", verb)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: systemctl [OPTIONS] COMMAND [UNIT…]
commands: list-units [--all], status [UNIT…], start UNIT…, stop UNIT…,
          restart UNIT…, cat UNIT…, is-active UNIT…, is-failed UNIT…,
          daemon-reload, reboot, poweroff, halt,
          kexec --kernel PATH [--initrd PATH] [--append CMDLINE]
options:  -a/--all, -q/--quiet, -n/--lines N, --socket PATH (or $COREBOX_INIT_SOCKET)
`)
}

// normalize adds ".service" to names without a unit suffix, as systemctl does.
func normalize(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		if !strings.HasSuffix(n, ".service") && !strings.HasSuffix(n, ".target") {
			n += ".service"
		}
		out[i] = n
	}
	return out
}

func listUnits(ctx context.Context, c *control.Client, opt options, stdout, stderr io.Writer) int {
	units, err := c.List(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "systemctl: %v\n", err)
		return exitFailure
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "  UNIT\tLOAD\tACTIVE\tSUB\tDESCRIPTION")
	n := 0
	for _, u := range units {
		if !opt.all && u.ActiveState == "inactive" && u.LoadState == "loaded" {
			continue
		}
		mark := " "
		if u.ActiveState == "failed" || u.LoadState != "loaded" {
			mark = "●"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%s\n", mark, u.Name, u.LoadState, u.ActiveState, u.SubState, u.Description)
		n++
	}
	tw.Flush()
	fmt.Fprintf(stdout, "\n%d loaded units listed.", n)
	if !opt.all {
		fmt.Fprint(stdout, " Pass --all to see loaded but inactive units, too.")
	}
	fmt.Fprintln(stdout)
	return exitOK
}

func status(ctx context.Context, c *control.Client, opt options, names []string, stdout, stderr io.Writer) int {
	if len(names) == 0 {
		units, err := c.List(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "systemctl: %v\n", err)
			return exitFailure
		}
		for _, u := range units {
			if u.ActiveState != "inactive" {
				names = append(names, u.Name)
			}
		}
	}
	code := exitOK
	for i, name := range names {
		st, err := c.Status(ctx, name)
		if errors.Is(err, control.ErrNotFound) {
			fmt.Fprintf(stderr, "Unit %s could not be found.\n", name)
			code = exitNoUnit
			continue
		}
		if err != nil {
			fmt.Fprintf(stderr, "systemctl: %v\n", err)
			return exitFailure
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printStatus(stdout, st)
		if opt.lines > 0 {
			var lines []control.Entry
			c.Logs(ctx, name, opt.lines, false, func(e control.Entry) error {
				lines = append(lines, e)
				return nil
			})
			if len(lines) > 0 {
				fmt.Fprintln(stdout)
				host, _ := os.Hostname()
				for _, e := range lines {
					fmt.Fprintln(stdout, control.FormatShort(e, host))
				}
			}
		}
		if st.ActiveState != "active" && code == exitOK {
			code = exitInactive
		}
	}
	return code
}

func printStatus(w io.Writer, st control.Status) {
	dot := "○"
	switch st.ActiveState {
	case "active", "activating", "deactivating":
		dot = "●"
	case "failed":
		dot = "×"
	}
	title := st.Name
	if st.Description != "" {
		title += " - " + st.Description
	}
	fmt.Fprintf(w, "%s %s\n", dot, title)
	switch st.LoadState {
	case "loaded":
		en := "disabled"
		if st.Enabled {
			en = "enabled"
		}
		fmt.Fprintf(w, "     Loaded: loaded (%s; %s)\n", st.Path, en)
	case "error":
		fmt.Fprintf(w, "     Loaded: error (Reason: %s)\n", st.LoadError)
	default:
		fmt.Fprintf(w, "     Loaded: %s\n", st.LoadState)
	}
	active := fmt.Sprintf("%s (%s)", st.ActiveState, st.SubState)
	if st.ActiveState == "failed" && st.Result != "" {
		active += " (Result: " + st.Result + ")"
	}
	if !st.Since.IsZero() {
		active += fmt.Sprintf(" since %s; %s ago", st.Since.Format("Mon 2006-01-02 15:04:05 MST"), time.Since(st.Since).Round(time.Second))
	}
	fmt.Fprintf(w, "     Active: %s\n", active)
	if st.ExitStatus != "" && st.MainPID == 0 {
		fmt.Fprintf(w, "    Process: %s\n", st.ExitStatus)
	}
	if st.Restarts > 0 {
		fmt.Fprintf(w, "   Restarts: %d\n", st.Restarts)
	}
	if st.MainPID > 0 {
		fmt.Fprintf(w, "   Main PID: %d\n", st.MainPID)
	}
	if len(st.Tasks) > 0 {
		fmt.Fprintf(w, "      Tasks: %d\n", len(st.Tasks))
	}
	if st.CGroup != "" && len(st.Tasks) > 0 {
		fmt.Fprintf(w, "     CGroup: %s\n", st.CGroup)
		for i, pid := range st.Tasks {
			branch := "├─"
			if i == len(st.Tasks)-1 {
				branch = "└─"
			}
			fmt.Fprintf(w, "             %s%d %s\n", branch, pid, cmdline(pid))
		}
	}
}

// cmdline is a process's command line as ps shows it, or "" when gone.
func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

func act(ctx context.Context, c *control.Client, verb string, names []string, stderr io.Writer) int {
	code := exitOK
	for _, name := range names {
		var err error
		switch verb {
		case "start":
			_, err = c.Start(ctx, name)
		case "stop":
			_, err = c.Stop(ctx, name)
		case "restart":
			_, err = c.Restart(ctx, name)
		}
		switch {
		case errors.Is(err, control.ErrNotFound):
			fmt.Fprintf(stderr, "Failed to %s %s: Unit %s not found.\n", verb, name, name)
			code = exitNoUnit
		case err != nil:
			fmt.Fprintf(stderr, "Job for %s failed: %v\nSee \"systemctl status %s\" and \"journalctl -u %s\" for details.\n", name, err, name, name)
			code = exitFailure
		}
	}
	return code
}

func cat(ctx context.Context, c *control.Client, names []string, stdout, stderr io.Writer) int {
	code := exitOK
	for i, name := range names {
		f, err := c.UnitFile(ctx, name)
		if err != nil {
			fmt.Fprintf(stderr, "No files found for %s.\n", name)
			code = exitFailure
			continue
		}
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		fmt.Fprintf(stdout, "# %s\n%s", f.Path, f.Contents)
		if !strings.HasSuffix(f.Contents, "\n") {
			fmt.Fprintln(stdout)
		}
	}
	return code
}

func isState(ctx context.Context, c *control.Client, verb string, opt options, names []string, stdout, stderr io.Writer) int {
	want := strings.TrimPrefix(verb, "is-")
	code := exitInactive
	if verb == "is-failed" {
		code = exitFailure
	}
	for _, name := range names {
		state := "inactive"
		st, err := c.Status(ctx, name)
		switch {
		case errors.Is(err, control.ErrNotFound):
		case err != nil:
			fmt.Fprintf(stderr, "systemctl: %v\n", err)
			return exitFailure
		default:
			state = st.ActiveState
		}
		if !opt.quiet {
			fmt.Fprintln(stdout, state)
		}
		if state == want {
			code = exitOK
		}
	}
	return code
}
