// Command corebox is CoreOS Container Linux in one static binary. Like
// busybox it becomes the applet its name says (filepath.Base(os.Args[0])),
// or the one named by its first argument: `corebox APPLET ARGS…`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/corebox/corebox/applets/etcd"
	"github.com/corebox/corebox/applets/etcdctl"
	initapplet "github.com/corebox/corebox/applets/init"
	"github.com/corebox/corebox/applets/journalctl"
	"github.com/corebox/corebox/applets/rkt"
	"github.com/corebox/corebox/applets/rkt/container"
	"github.com/corebox/corebox/applets/runc"
	"github.com/corebox/corebox/applets/sh"
	"github.com/corebox/corebox/applets/systemctl"
	"github.com/corebox/corebox/internal/version"
)

// applet is one personality of the binary.
type applet struct {
	name string
	main func(ctx context.Context, args []string) int
	// ownSignals is true for applets that handle SIGINT/SIGTERM themselves
	// (init as PID 1, the shell); the others get a context cancelled by them.
	ownSignals bool
	// hidden applets are entry points corebox re-executes itself into
	// (the container stub); they are not listed or installed.
	hidden bool
}

// applets returns the table of applets, sorted by name.
func applets() []applet {
	return []applet{
		{name: "etcd", main: etcd.Main, ownSignals: true},
		{name: "etcdctl", main: etcdctl.Main},
		{name: "init", main: initapplet.Main, ownSignals: true},
		{name: "journalctl", main: journalctl.Main},
		{name: "rkt", main: rkt.Main, ownSignals: true},
		{name: "runc", main: runc.Main, ownSignals: true},
		{name: "sh", main: sh.Main, ownSignals: true},
		{name: "systemctl", main: systemctl.Main},
		{name: container.StubApplet, main: container.StubMain, ownSignals: true, hidden: true},
	}
}

// visible is the table without the hidden applets.
func visible(table []applet) []applet {
	return slices.DeleteFunc(slices.Clone(table), func(a applet) bool { return a.hidden })
}

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run dispatches on argv[0] and the first argument; it returns the exit code.
func run(argv []string, stdout, stderr io.Writer) int {
	table := applets()
	name := filepath.Base(argv[0])
	args := argv[1:]
	if name == "corebox" {
		if len(args) == 0 {
			usage(stderr, visible(table))
			return 2
		}
		switch args[0] {
		case "--list", "-l":
			for _, a := range visible(table) {
				fmt.Fprintln(stdout, a.name)
			}
			return 0
		case "--version", "-v":
			fmt.Fprintf(stdout, "corebox %s\n", version.Version)
			return 0
		case "--help", "-h":
			usage(stdout, visible(table))
			return 0
		case "--install":
			return install(args[1:], visible(table), stdout, stderr)
		}
		if strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(stderr, "corebox: unknown option %q\n", args[0])
			usage(stderr, visible(table))
			return 2
		}
		name, args = args[0], args[1:]
	}
	i := slices.IndexFunc(table, func(a applet) bool { return a.name == name })
	if i < 0 {
		fmt.Fprintf(stderr, "corebox: unknown applet %q\n", name)
		usage(stderr, visible(table))
		return 2
	}
	a := table[i]
	ctx := context.Background()
	if !a.ownSignals {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	return a.main(ctx, args)
}

func usage(w io.Writer, table []applet) {
	fmt.Fprintf(w, `corebox %s: CoreOS Container Linux in one binary.
usage: corebox APPLET [ARGS…]   run an applet (or call the binary by the applet's name)
       corebox --list            list the applets
       corebox --install DIR [--force]
                                 make a symlink per applet in DIR
       corebox --version
applets:`, version.Version)
	for _, a := range table {
		fmt.Fprintf(w, " %s", a.name)
	}
	fmt.Fprintln(w)
}

// install makes DIR/APPLET -> corebox for every applet. An existing entry is
// replaced only when it is already a link to a corebox binary, or with --force.
func install(args []string, table []applet, stdout, stderr io.Writer) int {
	var dir string
	force := false
	for _, a := range args {
		switch {
		case a == "--force" || a == "-f":
			force = true
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(stderr, "corebox --install: unknown option %q\n", a)
			return 2
		case dir != "":
			fmt.Fprintf(stderr, "corebox --install: more than one directory (%q, %q)\n", dir, a)
			return 2
		default:
			dir = a
		}
	}
	if dir == "" {
		fmt.Fprintln(stderr, "corebox --install: missing DIR")
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "corebox --install: finding own executable: %v\n", err)
		return 1
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		fmt.Fprintf(stderr, "corebox --install: resolving own executable: %v\n", err)
		return 1
	}
	// Check every target first, so that a refusal leaves DIR untouched.
	var refused []string
	for _, a := range table {
		p := filepath.Join(dir, a.name)
		if ok, err := replaceable(p, self); err != nil {
			fmt.Fprintf(stderr, "corebox --install: %v\n", err)
			return 1
		} else if !ok && !force {
			refused = append(refused, p)
		}
	}
	if len(refused) > 0 {
		fmt.Fprintf(stderr, "corebox --install: refusing to replace %s: not a link to corebox (use --force)\n", strings.Join(refused, ", "))
		return 1
	}
	for _, a := range table {
		p := filepath.Join(dir, a.name)
		tmp := p + ".corebox-new"
		os.Remove(tmp)
		if err := os.Symlink(self, tmp); err != nil {
			fmt.Fprintf(stderr, "corebox --install: %v\n", err)
			return 1
		}
		if err := os.Rename(tmp, p); err != nil {
			os.Remove(tmp)
			fmt.Fprintf(stderr, "corebox --install: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s -> %s\n", p, self)
	}
	return 0
}

// replaceable reports whether path is absent or a symlink to a corebox binary.
func replaceable(path, self string) (bool, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Mode()&os.ModeSymlink == 0 {
		return false, nil
	}
	target, err := os.Readlink(path)
	if err != nil {
		return false, err
	}
	if filepath.Base(target) == "corebox" {
		return true, nil
	}
	a, errA := os.Stat(path)
	b, errB := os.Stat(self)
	return errA == nil && errB == nil && os.SameFile(a, b), nil
}
