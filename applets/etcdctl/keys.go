package etcdctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/corebox/corebox/applets/etcd/client"
)

var (
	errKeyRequired   = errors.New("key required")
	errValueRequired = errors.New("value required")
)

func (inv *invocation) get(f *parsedFlags) int {
	args := f.args()
	if len(args) == 0 {
		return inv.handleError(exitBadArgs, errKeyRequired)
	}
	c, code := inv.newClient(true)
	if code != exitSuccess {
		return code
	}
	ctx, cancel := inv.totalTimeout()
	resp, err := c.Get(ctx, args[0], &client.GetOptions{Sort: f.bool("sort"), Quorum: f.bool("quorum")})
	cancel()
	if err != nil {
		return inv.handleError(exitServerError, err)
	}
	if resp.Node.Dir {
		fmt.Fprintf(inv.stderr, "%s: is a directory\n", resp.Node.Key)
		return exitBadArgs
	}
	inv.printResponse(resp)
	return exitSuccess
}

func (inv *invocation) ls(f *parsedFlags) int {
	key := "/"
	if args := f.args(); len(args) > 0 {
		key = args[0]
	}
	c, code := inv.newClient(true)
	if code != exitSuccess {
		return code
	}
	ctx, cancel := inv.totalTimeout()
	resp, err := c.Get(ctx, key, &client.GetOptions{Sort: f.bool("sort"), Recursive: f.bool("recursive"), Quorum: f.bool("quorum")})
	cancel()
	if err != nil {
		return inv.handleError(exitServerError, err)
	}
	if inv.output != "simple" {
		inv.printResponse(resp)
		return exitSuccess
	}
	if !resp.Node.Dir {
		fmt.Fprintln(inv.stdout, resp.Node.Key)
	}
	slash := f.bool("p")
	var walk func(*client.Node)
	walk = func(n *client.Node) {
		if n.Dir && slash {
			fmt.Fprintf(inv.stdout, "%s/\n", n.Key)
		} else {
			fmt.Fprintln(inv.stdout, n.Key)
		}
		for _, child := range n.Nodes {
			walk(child)
		}
	}
	for _, n := range resp.Node.Nodes {
		walk(n)
	}
	return exitSuccess
}

// keyAndValue reads a command's <key> <value>, the value from stdin when
// it is not given.
func (inv *invocation) keyAndValue(f *parsedFlags) (key, value string, code int) {
	args := f.args()
	if len(args) == 0 {
		return "", "", inv.handleError(exitBadArgs, errKeyRequired)
	}
	value, ok := inv.argOrStdin(args, 1)
	if !ok {
		return "", "", inv.handleError(exitBadArgs, errValueRequired)
	}
	return args[0], value, exitSuccess
}

func (inv *invocation) set(f *parsedFlags) int {
	key, value, code := inv.keyAndValue(f)
	if code != exitSuccess {
		return code
	}
	return inv.write(func(c *client.Client, ctx context.Context) (*client.Response, error) {
		return c.Set(ctx, key, value, &client.SetOptions{
			TTL:       ttl(f),
			PrevValue: f.string("swap-with-value"),
			PrevIndex: uint64(f.int("swap-with-index")),
		})
	}, true)
}

func (inv *invocation) mk(f *parsedFlags) int {
	key, value, code := inv.keyAndValue(f)
	if code != exitSuccess {
		return code
	}
	return inv.write(func(c *client.Client, ctx context.Context) (*client.Response, error) {
		if f.bool("in-order") {
			return c.CreateInOrder(ctx, key, value, ttl(f))
		}
		return c.Create(ctx, key, value, ttl(f))
	}, true)
}

func (inv *invocation) update(f *parsedFlags) int {
	key, value, code := inv.keyAndValue(f)
	if code != exitSuccess {
		return code
	}
	return inv.write(func(c *client.Client, ctx context.Context) (*client.Response, error) {
		return c.Update(ctx, key, value, ttl(f))
	}, true)
}

// mkdir is mkdir, setdir and updatedir, which differ in prevExist; they
// print the answer only in the extended and json formats.
func (inv *invocation) mkdir(f *parsedFlags, prevExist string) int {
	args := f.args()
	if len(args) == 0 {
		return inv.handleError(exitBadArgs, errKeyRequired)
	}
	return inv.write(func(c *client.Client, ctx context.Context) (*client.Response, error) {
		return c.Set(ctx, args[0], "", &client.SetOptions{TTL: ttl(f), Dir: true, PrevExist: prevExist})
	}, inv.output != "simple")
}

func (inv *invocation) rm(f *parsedFlags) int {
	args := f.args()
	if len(args) == 0 {
		return inv.handleError(exitBadArgs, errKeyRequired)
	}
	return inv.remove(args[0], &client.DeleteOptions{
		Dir:       f.bool("dir"),
		Recursive: f.bool("recursive"),
		PrevValue: f.string("with-value"),
		PrevIndex: uint64(f.int("with-index")),
	})
}

func (inv *invocation) rmdir(f *parsedFlags) int {
	args := f.args()
	if len(args) == 0 {
		return inv.handleError(exitBadArgs, errKeyRequired)
	}
	return inv.remove(args[0], &client.DeleteOptions{Dir: true})
}

// remove deletes a key; a deleted directory is printed only in the extended
// and json formats.
func (inv *invocation) remove(key string, o *client.DeleteOptions) int {
	c, code := inv.newClient(true)
	if code != exitSuccess {
		return code
	}
	ctx, cancel := inv.totalTimeout()
	resp, err := c.Delete(ctx, key, o)
	cancel()
	if err != nil {
		return inv.handleError(exitServerError, err)
	}
	if !resp.Node.Dir || inv.output != "simple" {
		inv.printResponse(resp)
	}
	return exitSuccess
}

// write runs one request with the command's client and total timeout, and
// prints its answer if print.
func (inv *invocation) write(req func(*client.Client, context.Context) (*client.Response, error), print bool) int {
	c, code := inv.newClient(true)
	if code != exitSuccess {
		return code
	}
	ctx, cancel := inv.totalTimeout()
	resp, err := req(c, ctx)
	cancel()
	if err != nil {
		return inv.handleError(exitServerError, err)
	}
	if print {
		inv.printResponse(resp)
	}
	return exitSuccess
}

// printResponse prints an answer in the --output format, as etcdctl's
// printResponseKey.
func (inv *invocation) printResponse(resp *client.Response) {
	w := inv.stdout
	switch inv.output {
	case "simple":
		if resp.Action != "delete" {
			fmt.Fprintln(w, resp.Node.Value)
		} else {
			fmt.Fprintln(w, "PrevNode.Value:", prevValue(resp))
		}
	case "extended":
		fmt.Fprintln(w, "Key:", resp.Node.Key)
		fmt.Fprintln(w, "Created-Index:", resp.Node.CreatedIndex)
		fmt.Fprintln(w, "Modified-Index:", resp.Node.ModifiedIndex)
		if resp.PrevNode != nil {
			fmt.Fprintln(w, "PrevNode.Value:", resp.PrevNode.Value)
		}
		fmt.Fprintln(w, "TTL:", resp.Node.TTL)
		fmt.Fprintln(w, "Index:", resp.Index)
		if resp.Action != "delete" {
			fmt.Fprintln(w, "")
			fmt.Fprintln(w, resp.Node.Value)
		}
	case "json":
		b, err := json.Marshal(resp)
		if err != nil {
			fmt.Fprintln(inv.stderr, "Error: ", err)
			return
		}
		fmt.Fprintln(w, string(b))
	default:
		fmt.Fprintln(inv.stderr, "Unsupported output format:", inv.output)
	}
}

func prevValue(resp *client.Response) string {
	if resp.PrevNode == nil {
		return ""
	}
	return resp.PrevNode.Value
}
