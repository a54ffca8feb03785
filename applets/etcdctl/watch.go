package etcdctl

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"

	"github.com/corebox/corebox/applets/etcd/client"
)

// watch prints the next change of a key (every change with --forever). An
// ended context (SIGINT) ends it with exit code 0, as etcdctl's SIGINT does.
func (inv *invocation) watch(f *parsedFlags) int {
	args := f.args()
	if len(args) == 0 {
		return inv.handleError(exitBadArgs, errKeyRequired)
	}
	recursive, forever := f.bool("recursive"), f.bool("forever")
	c, code := inv.newClient(true)
	if code != exitSuccess {
		return code
	}
	w := c.Watcher(args[0], &client.WatcherOptions{AfterIndex: uint64(f.int("after-index")), Recursive: recursive})
	for {
		resp, err := w.Next(inv.ctx)
		if err != nil {
			if inv.ctx.Err() != nil {
				return exitSuccess
			}
			return inv.handleError(exitServerError, err)
		}
		if resp.Node.Dir {
			continue
		}
		if recursive {
			fmt.Fprintf(inv.stdout, "[%s] %s\n", resp.Action, resp.Node.Key)
		}
		inv.printResponse(resp)
		if !forever {
			return exitSuccess
		}
	}
}

// execWatch runs a command at each change of a key, with the change in its
// environment (ETCD_WATCH_ACTION, ETCD_WATCH_KEY, ETCD_WATCH_VALUE,
// ETCD_WATCH_MODIFIED_INDEX), without waiting for one command before
// starting the next. It ends when the context does, after the commands.
//
// Its arguments are read as etcdctl reads them: "KEY -- COMMAND ARGS" when
// "--" follows the key; otherwise the last argument is the key. Because
// flags are moved before the arguments and "--" before the rest, "--"
// often does not reach this point ("exec-watch KEY -- CMD" watches the
// last word of CMD): "exec-watch [flags] COMMAND ARGS KEY" is the form that
// always works.
func (inv *invocation) execWatch(f *parsedFlags) int {
	args := f.args()
	if len(args) < 2 {
		return inv.handleError(exitBadArgs, errors.New("key and command to exec required"))
	}
	var key string
	var cmdArgs []string
	sep := false
	for i, a := range args {
		if a == "--" && i != 0 {
			sep = true
			break
		}
	}
	if sep {
		key, cmdArgs = args[0], args[2:]
	} else {
		key, cmdArgs = args[len(args)-1], args[:len(args)-1]
	}
	c, code := inv.newClient(true)
	if code != exitSuccess {
		return code
	}
	var running sync.WaitGroup
	defer running.Wait()
	w := c.Watcher(key, &client.WatcherOptions{AfterIndex: uint64(f.int("after-index")), Recursive: f.bool("recursive")})
	for {
		resp, err := w.Next(inv.ctx)
		if err != nil {
			if inv.ctx.Err() != nil {
				return exitSuccess
			}
			return inv.handleError(exitServerError, err)
		}
		if resp.Node.Dir {
			fmt.Fprintf(inv.stderr, "Ignored dir %s change\n", resp.Node.Key)
			continue
		}
		if len(cmdArgs) == 0 {
			fmt.Fprint(inv.stderr, "exec: no command")
			return exitBadArgs
		}
		cmd := exec.Command(cmdArgs[0], cmdArgs[1:]...)
		cmd.Env = append(os.Environ(),
			"ETCD_WATCH_ACTION="+resp.Action,
			fmt.Sprintf("ETCD_WATCH_MODIFIED_INDEX=%d", resp.Node.ModifiedIndex),
			"ETCD_WATCH_KEY="+resp.Node.Key,
			"ETCD_WATCH_VALUE="+resp.Node.Value,
		)
		cmd.Stdout, cmd.Stderr = inv.stdout, inv.stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprint(inv.stderr, err.Error())
			return exitBadArgs
		}
		running.Add(1)
		go func() {
			defer running.Done()
			cmd.Wait()
		}()
	}
}
