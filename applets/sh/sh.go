// Package sh is the sh applet: a POSIX-style shell (mvdan.cc/sh's
// interpreter) so that a corebox image has a shell for the emergency state,
// corebox.debug=1 and scripts, without any other binary. It owns only
// reading scripts and the interactive prompt; the language is the library's.
package sh

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// Main runs `sh [-c CMD [NAME ARGS…]] | [FILE [ARGS…]]`, or an interactive
// shell on stdin.
func Main(ctx context.Context, args []string) int {
	return Run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// Run is Main with explicit streams.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// Ctrl-C interrupts the running command, not the shell.
	signal.Ignore(syscall.SIGINT, syscall.SIGQUIT)
	var script, name string
	var params []string
	interactive := false
	switch {
	case len(args) >= 2 && args[0] == "-c":
		script, name, params = args[1], "sh", args[2:]
		if len(params) > 0 {
			name, params = params[0], params[1:]
		}
	case len(args) >= 1 && args[0] == "-i":
		interactive = true
	case len(args) >= 1 && !strings.HasPrefix(args[0], "-"):
		b, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "sh: %v\n", err)
			return 127
		}
		script, name, params = string(b), args[0], args[1:]
	case len(args) == 0:
		interactive = true
	default:
		fmt.Fprintf(stderr, "sh: unsupported option %q\nusage: sh [-c CMD [NAME ARGS…] | FILE [ARGS…] | -i]\n", args[0])
		return 2
	}
	runner, err := interp.New(
		interp.StdIO(stdin, stdout, stderr),
		interp.Params(append([]string{"--"}, params...)...),
		interp.Env(expand.ListEnviron(os.Environ()...)),
		interp.Interactive(interactive),
	)
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 2
	}
	if !interactive {
		prog, err := syntax.NewParser().Parse(strings.NewReader(script), name)
		if err != nil {
			fmt.Fprintf(stderr, "sh: %v\n", err)
			return 2
		}
		return exitCode(runner.Run(ctx, prog), stderr)
	}
	return prompt(ctx, runner, stdin, stdout, stderr)
}

func prompt(ctx context.Context, runner *interp.Runner, stdin io.Reader, stdout, stderr io.Writer) int {
	parser := syntax.NewParser()
	fmt.Fprint(stdout, ps1())
	code := 0
	err := parser.Interactive(stdin, func(stmts []*syntax.Stmt) bool {
		if parser.Incomplete() {
			fmt.Fprint(stdout, "> ")
			return true
		}
		for _, st := range stmts {
			err := runner.Run(ctx, st)
			code = exitCode(err, stderr)
			if runner.Exited() {
				return false
			}
		}
		fmt.Fprint(stdout, ps1())
		return true
	})
	if err != nil {
		fmt.Fprintf(stderr, "sh: %v\n", err)
		return 2
	}
	return code
}

func ps1() string {
	host, _ := os.Hostname()
	if os.Geteuid() == 0 {
		return host + " # "
	}
	return host + " $ "
}

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	if st, ok := interp.IsExitStatus(err); ok {
		return int(st)
	}
	fmt.Fprintf(stderr, "sh: %v\n", err)
	return 1
}
