// Package journalctl is the journalctl applet: it prints the output of
// corebox init's units, kept by init, through the control socket. It owns
// only the command line and the output formats (short, cat, json).
package journalctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/corebox/corebox/applets/init/control"
)

// Main runs `journalctl [-u UNIT] [-f] [-n N] [-o short|cat|json]`.
func Main(ctx context.Context, args []string) int {
	return Run(ctx, args, os.Stdout, os.Stderr)
}

type options struct {
	unit   string
	follow bool
	lines  int
	output string
	socket string
}

// Run is Main with explicit output streams.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opt := options{output: "short", socket: os.Getenv("COREBOX_INIT_SOCKET")}
	value := func(i *int, name string) (string, bool) {
		a := args[*i]
		if k, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(k, "--") {
			return v, true
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' { // -uNAME, -n10
			return a[2:], true
		}
		if *i+1 >= len(args) {
			fmt.Fprintf(stderr, "journalctl: option '%s' requires an argument\n", name)
			return "", false
		}
		*i++
		return args[*i], true
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		flag, _, _ := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "--") && len(a) > 2 {
			flag = a[:2]
		}
		switch flag {
		case "-u", "--unit":
			v, ok := value(&i, flag)
			if !ok {
				return 1
			}
			if !strings.Contains(v, ".") {
				v += ".service"
			}
			opt.unit = v
		case "-f", "--follow":
			opt.follow = true
		case "-n", "--lines":
			v, ok := value(&i, flag)
			if !ok {
				return 1
			}
			n, err := strconv.Atoi(strings.TrimPrefix(v, "+"))
			if err != nil || n < 0 {
				fmt.Fprintf(stderr, "journalctl: failed to parse lines '%s'\n", v)
				return 1
			}
			opt.lines = n
		case "-o", "--output":
			v, ok := value(&i, flag)
			if !ok {
				return 1
			}
			switch v {
			case "short", "cat", "json":
			default:
				fmt.Fprintf(stderr, "journalctl: unknown output format '%s' (short, cat, json)\n", v)
				return 1
			}
			opt.output = v
		case "--socket":
			v, ok := value(&i, flag)
			if !ok {
				return 1
			}
			opt.socket = v
		case "--no-pager", "-b", "--boot", "-a", "--all", "-q", "--quiet":
		default:
			fmt.Fprintf(stderr, "journalctl: unrecognized option '%s'\n", a)
			return 1
		}
	}
	if opt.follow && opt.lines == 0 {
		opt.lines = 10 // as journalctl -f
	}
	host, _ := os.Hostname()
	c := control.NewClient(opt.socket)
	enc := json.NewEncoder(stdout)
	err := c.Logs(ctx, opt.unit, opt.lines, opt.follow, func(e control.Entry) error {
		switch opt.output {
		case "json":
			return enc.Encode(e)
		case "cat":
			_, err := fmt.Fprintln(stdout, e.Message)
			return err
		}
		_, err := fmt.Fprintln(stdout, control.FormatShort(e, host))
		return err
	})
	if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		fmt.Fprintf(stderr, "journalctl: %v\n", err)
		return 1
	}
	return 0
}
