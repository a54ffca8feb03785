package rkt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
)

// exitError is rkt's exit status for its own failures (as rkt 1.x: apps'
// statuses are passed through, rkt's errors are 254).
const exitError = 254

// DefaultDir is rkt's data directory.
const DefaultDir = "/var/lib/rkt"

// Env is what the applet runs with besides its arguments.
type Env struct {
	Stdin          *os.File
	Stdout, Stderr io.Writer
	// Signals are forwarded to a running pod's apps by run and
	// run-prepared; for other commands the first one cancels the command.
	// nil: none arrive.
	Signals <-chan os.Signal
	// Environ is rkt's environment (for --inherit-env).
	Environ []string
	// Executable is the corebox binary (for the engine's re-exec); "" means
	// /proc/self/exe.
	Executable string
}

// Main runs `rkt ARGS…` with the process's streams; it handles SIGINT,
// SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 itself (forwarding them to a
// running pod).
func Main(ctx context.Context, args []string) int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	return Run(ctx, args, Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Signals: sigs, Environ: os.Environ()})
}

// globalFlags are accepted by every command.
var globalFlags = flagSet{
	{name: "dir", kind: valueFlag, usage: "rkt data directory (default " + DefaultDir + ")"},
	{name: "insecure-options", kind: valueFlag, usage: "comma-separated security features to disable: none, image, tls, ondisk, http, pubkey, capabilities, paths, seccomp, all-fetch, all-run, all"},
	{name: "debug", kind: boolFlag, usage: "print out more debug information to stderr"},
	{name: "local-config", kind: valueFlag, usage: "ignored (rkt compatibility)"},
	{name: "system-config", kind: valueFlag, usage: "ignored (rkt compatibility)"},
	{name: "user-config", kind: valueFlag, usage: "ignored (rkt compatibility)"},
	{name: "trust-keys-from-https", kind: boolFlag, usage: "ignored (rkt compatibility)"},
}

// insecureOptions are the values of --insecure-options.
var insecureOptions = []string{"none", "image", "tls", "ondisk", "http", "pubkey", "capabilities", "paths", "seccomp", "all-fetch", "all-run", "all"}

// cli is one invocation: the global options and where the state lives.
type cli struct {
	ctx      context.Context
	env      Env
	dir      string
	insecure map[string]bool
	log      *slog.Logger
	cmd      string     // the command being run, for messages
	globals  flagValues // the global flags given
}

// command is one rkt subcommand.
type command struct {
	name    string
	usage   string
	summary string
	flags   flagSet
	// interspersed: flags may follow positional arguments.
	interspersed bool
	run          func(c *cli, vals flagValues, args []string) int
	// raw commands parse their own arguments (run, prepare).
	raw func(c *cli, args []string) int
}

func commands() []command {
	return []command{
		{name: "cat-manifest", usage: "cat-manifest [--pretty-print] UUID", summary: "Inspect and print the pod manifest", flags: flagSet{{name: "pretty-print", kind: boolFlag}, {name: "uuid-file", kind: valueFlag}}, interspersed: true, run: (*cli).catManifest},
		{name: "enter", usage: "enter [--app=APPNAME] UUID [CMD [ARGS ...]]", summary: "Enter the namespaces of an app within a rkt pod", flags: flagSet{{name: "app", kind: valueFlag}}, run: (*cli).enter},
		{name: "fetch", usage: "fetch IMAGE_URL...", summary: "Fetch image(s) and store them in the local store", flags: flagSet{{name: "full", kind: boolFlag}, {name: "pull-policy", kind: valueFlag}}, interspersed: true, run: (*cli).fetch},
		{name: "gc", usage: "gc [--grace-period=duration] [--expire-prepared=duration]", summary: "Garbage collect rkt pods no longer in use", flags: flagSet{{name: "grace-period", kind: valueFlag}, {name: "expire-prepared", kind: valueFlag}, {name: "mark-only", kind: boolFlag}}, interspersed: true, run: (*cli).gc},
		{name: "image", usage: "image list|rm|gc|export|extract|cat-manifest ...", summary: "Operate on image(s) in the local store", raw: (*cli).image},
		{name: "list", usage: "list [--full] [--no-legend] [--format=json|json-pretty]", summary: "List pods", flags: flagSet{{name: "full", kind: boolFlag}, {name: "no-legend", kind: boolFlag}, {name: "format", kind: valueFlag}}, interspersed: true, run: (*cli).list},
		{name: "prepare", usage: "prepare [--volume=...] IMAGE [--exec=...] [-- ARGS...] [--- IMAGE ...]", summary: "Prepare to run image(s) in a pod in rkt", raw: (*cli).prepare},
		{name: "rm", usage: "rm UUID...", summary: "Remove all files and resources associated with exited pods", flags: flagSet{{name: "uuid-file", kind: valueFlag}}, interspersed: true, run: (*cli).rm},
		{name: "run", usage: "run [--volume=...] [--net=...] IMAGE [--exec=...] [-- ARGS...] [--- IMAGE ...]", summary: "Run image(s) in a pod in rkt", raw: (*cli).runCmd},
		{name: "run-prepared", usage: "run-prepared UUID", summary: "Run a prepared application pod in rkt", flags: flagSet{{name: "interactive", kind: boolFlag}, {name: "net", kind: optionalFlag, implied: netDefault}, {name: "dns", kind: valueFlag}, {name: "hostname", kind: valueFlag}}, interspersed: true, run: (*cli).runPrepared},
		{name: "status", usage: "status [--wait=bool|timeout] [--format=json|json-pretty] UUID", summary: "Check the status of a rkt pod", flags: flagSet{{name: "wait", kind: optionalFlag, implied: "true"}, {name: "wait-ready", kind: optionalFlag, implied: "true"}, {name: "format", kind: valueFlag}, {name: "uuid-file", kind: valueFlag}}, interspersed: true, run: (*cli).status},
		{name: "stop", usage: "stop [--force] UUID...", summary: "Stop a pod", flags: flagSet{{name: "force", kind: boolFlag}, {name: "uuid-file", kind: valueFlag}}, interspersed: true, run: (*cli).stop},
		{name: "version", usage: "version", summary: "Print the version and exit", run: (*cli).version},
	}
}

// Run runs `rkt ARGS…` and returns its exit status.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	c := &cli{ctx: ctx, env: env, cmd: "rkt"}
	// Global flags come before the command (and may also follow it).
	vals, rest, err := slices.Concat(globalFlags, flagSet{{name: "help", kind: boolFlag}}).parse(args, false)
	if err != nil {
		return c.usageError(err)
	}
	if len(rest) == 0 || vals.bool("help") || rest[0] == "help" {
		c.usage(env.Stdout)
		if len(rest) == 0 && !vals.bool("help") {
			return exitError
		}
		return 0
	}
	cmds := commands()
	i := slices.IndexFunc(cmds, func(cmd command) bool { return cmd.name == rest[0] })
	if i < 0 {
		fmt.Fprintf(env.Stderr, "rkt: unknown command %q (see rkt help)\n", rest[0])
		return exitError
	}
	cmd := cmds[i]
	c.cmd = cmd.name
	args = rest[1:]

	if cmd.raw == nil {
		cmdVals, words, err := slices.Concat(flagSet{{name: "help", kind: boolFlag}}, cmd.flags, globalFlags).parse(args, cmd.interspersed)
		if err != nil {
			return c.usageError(err)
		}
		if cmdVals.bool("help") {
			c.commandUsage(env.Stdout, cmd)
			return 0
		}
		for k, v := range cmdVals {
			if _, ok := globalFlags.lookup(k); ok {
				vals[k] = append(vals[k], v...)
			}
		}
		if err := c.setGlobals(vals); err != nil {
			return c.usageError(err)
		}
		if cmd.name != "run-prepared" && cmd.name != "enter" {
			var stop context.CancelFunc
			c.ctx, stop = c.cancelOnSignal()
			defer stop()
		}
		return cmd.run(c, cmdVals, words)
	}
	if err := c.setGlobals(vals); err != nil {
		return c.usageError(err)
	}
	return cmd.raw(c, args)
}

// cancelOnSignal makes the first signal cancel the command's context.
func (c *cli) cancelOnSignal() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(c.ctx)
	if c.env.Signals != nil {
		go func() {
			select {
			case <-c.env.Signals:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

func (c *cli) setGlobals(vals flagValues) error {
	c.globals = vals
	c.dir = vals.last("dir", DefaultDir)
	if !filepath.IsAbs(c.dir) {
		abs, err := filepath.Abs(c.dir)
		if err != nil {
			return fmt.Errorf("--dir %q: %w", c.dir, err)
		}
		c.dir = abs
	}
	c.insecure = map[string]bool{}
	for _, v := range vals["insecure-options"] {
		for o := range strings.SplitSeq(v, ",") {
			if !slices.Contains(insecureOptions, o) {
				return fmt.Errorf("--insecure-options: unknown option %q (allowed: %s)", o, strings.Join(insecureOptions, ", "))
			}
			switch o {
			case "all":
				for _, x := range insecureOptions {
					c.insecure[x] = true
				}
			case "all-fetch":
				c.insecure["image"], c.insecure["tls"], c.insecure["http"], c.insecure["pubkey"] = true, true, true, true
			case "all-run":
				c.insecure["ondisk"], c.insecure["capabilities"], c.insecure["paths"], c.insecure["seccomp"] = true, true, true, true
			default:
				c.insecure[o] = true
			}
		}
	}
	level := slog.LevelWarn
	if vals.bool("debug") {
		level = slog.LevelDebug
	}
	c.log = slog.New(slog.NewTextHandler(c.env.Stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// fail prints a command's error in rkt's style and returns rkt's status.
func (c *cli) fail(err error) int {
	fmt.Fprintf(c.env.Stderr, "%s: %v\n", c.cmd, err)
	return exitError
}

func (c *cli) usageError(err error) int {
	fmt.Fprintf(c.env.Stderr, "%s: %v\n", c.cmd, err)
	if c.cmd != "rkt" {
		fmt.Fprintf(c.env.Stderr, "Run 'rkt %s --help' for usage.\n", c.cmd)
	} else {
		fmt.Fprintln(c.env.Stderr, "Run 'rkt help' for usage.")
	}
	return exitError
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprintln(w, "NAME:\n\trkt - rkt, the application container runner (corebox)\n\nUSAGE:\n\trkt [global options] command [command options] [arguments...]\n\nCOMMANDS:")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, cmd := range commands() {
		fmt.Fprintf(tw, "\t%s\t%s\n", cmd.name, cmd.summary)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nGLOBAL OPTIONS:")
	printFlags(w, globalFlags)
}

func (c *cli) commandUsage(w io.Writer, cmd command) {
	fmt.Fprintf(w, "%s\n\nUSAGE:\n\trkt %s\n", cmd.summary, cmd.usage)
	if len(cmd.flags) > 0 {
		fmt.Fprintln(w, "\nOPTIONS:")
		printFlags(w, cmd.flags)
	}
}

func printFlags(w io.Writer, set flagSet) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, f := range set {
		if f.name == "help" {
			continue
		}
		fmt.Fprintf(tw, "\t--%s\t%s\n", f.name, f.usage)
	}
	tw.Flush()
}

func (c *cli) version(vals flagValues, args []string) int {
	fmt.Fprintln(c.env.Stdout, "rkt Version: 1.30.0 (corebox)\nappc Version: none (OCI images)\nGo Version:", strings.TrimPrefix(runtime.Version(), "go"))
	return 0
}

// pods opens the pod store.
func (c *cli) pods() (*podStore, error) {
	return newPodStore(c.dir)
}

// uuidArgs returns the pod UUID prefixes from the arguments or --uuid-file.
func uuidArgs(vals flagValues, args []string) ([]string, error) {
	if f := vals.last("uuid-file", ""); f != "" {
		if len(args) > 0 {
			return nil, fmt.Errorf("give either --uuid-file or UUIDs, not both")
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading --uuid-file: %w", err)
		}
		u := strings.TrimSpace(string(b))
		if u == "" {
			return nil, fmt.Errorf("--uuid-file %s is empty", f)
		}
		return []string{u}, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("no pod UUID given")
	}
	return args, nil
}
