package etcdctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/corebox/corebox/applets/etcd/client"
)

// memberCommand checks that a member subcommand got n arguments (else
// prints usage), then runs do with a synced client under the total timeout.
func (inv *invocation) memberCommand(f *parsedFlags, n int, usage string, do func(ctx context.Context, c *client.Client, args []string) int) int {
	args := f.args()
	if len(args) != n {
		fmt.Fprintln(inv.stderr, usage)
		return exitBadArgs
	}
	c, code := inv.newClient(true)
	if code != exitSuccess {
		return code
	}
	ctx, cancel := inv.totalTimeout()
	defer cancel()
	return do(ctx, c, args)
}

func (inv *invocation) memberList(f *parsedFlags) int {
	return inv.memberCommand(f, 0, "No arguments accepted", inv.listMembers)
}

func (inv *invocation) listMembers(ctx context.Context, c *client.Client, _ []string) int {
	members, err := c.Members(ctx)
	if err != nil {
		fmt.Fprintln(inv.stderr, err.Error())
		return exitBadArgs
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		fmt.Fprintln(inv.stderr, "Failed to get leader: ", err)
		return exitBadArgs
	}
	for _, m := range members {
		if m.Name == "" {
			fmt.Fprintf(inv.stdout, "%s[unstarted]: peerURLs=%s\n", m.ID, strings.Join(m.PeerURLs, ","))
		} else {
			fmt.Fprintf(inv.stdout, "%s: name=%s peerURLs=%s clientURLs=%s isLeader=%v\n", m.ID, m.Name, strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","), m.ID == leader.ID)
		}
	}
	return exitSuccess
}

func (inv *invocation) memberAdd(f *parsedFlags) int {
	return inv.memberCommand(f, 2, "Provide a name and a single member peerURL", inv.addMember)
}

func (inv *invocation) addMember(ctx context.Context, c *client.Client, args []string) int {
	m, err := c.AddMember(ctx, args[1])
	if err != nil {
		fmt.Fprintln(inv.stderr, err.Error())
		return exitBadArgs
	}
	newName := args[0]
	fmt.Fprintf(inv.stdout, "Added member named %s with ID %s to cluster\n", newName, m.ID)
	members, err := c.Members(ctx)
	if err != nil {
		fmt.Fprintln(inv.stderr, err.Error())
		return exitBadArgs
	}
	var conf []string
	for _, mb := range members {
		for _, u := range mb.PeerURLs {
			n := mb.Name
			if mb.ID == m.ID {
				n = newName
			}
			conf = append(conf, fmt.Sprintf("%s=%s", n, u))
		}
	}
	fmt.Fprint(inv.stdout, "\n")
	fmt.Fprintf(inv.stdout, "ETCD_NAME=%q\n", newName)
	fmt.Fprintf(inv.stdout, "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(conf, ","))
	fmt.Fprintf(inv.stdout, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n")
	return exitSuccess
}

func (inv *invocation) memberRemove(f *parsedFlags) int {
	return inv.memberCommand(f, 1, "Provide a single member ID", inv.removeMember)
}

func (inv *invocation) removeMember(ctx context.Context, c *client.Client, args []string) int {
	id := args[0]
	members, err := c.Members(ctx)
	if err != nil {
		fmt.Fprintln(inv.stderr, "Error while verifying ID against known members:", err.Error())
		return exitBadArgs
	}
	found := false
	for _, m := range members {
		if m.ID == id {
			found = true
		}
		if m.Name == id {
			fmt.Fprintf(inv.stderr, "Found a member named %s; if this is correct, please use its ID, eg:\n\tetcdctl member remove %s\n", m.Name, m.ID)
			fmt.Fprintf(inv.stderr, "For more details, read the documentation at https://github.com/etcd-io/etcd/blob/master/Documentation/runtime-configuration.md#remove-a-member\n\n")
		}
	}
	if !found {
		fmt.Fprintf(inv.stderr, "Couldn't find a member in the cluster with an ID of %s.\n", id)
		return exitBadArgs
	}
	if err := c.RemoveMember(ctx, id); err != nil {
		fmt.Fprintf(inv.stderr, "Received an error trying to remove member %s: %s", id, err.Error())
		return exitBadArgs
	}
	fmt.Fprintf(inv.stdout, "Removed member %s from cluster\n", id)
	return exitSuccess
}

func (inv *invocation) memberUpdate(f *parsedFlags) int {
	return inv.memberCommand(f, 2, "Provide an ID and a list of comma separated peerURL (0xabcd http://example.com,http://example1.com)", inv.updateMember)
}

func (inv *invocation) updateMember(ctx context.Context, c *client.Client, args []string) int {
	if err := c.UpdateMember(ctx, args[0], strings.Split(args[1], ",")); err != nil {
		fmt.Fprintln(inv.stderr, err.Error())
		return exitBadArgs
	}
	fmt.Fprintf(inv.stdout, "Updated member with ID %s in cluster\n", args[0])
	return exitSuccess
}

// clusterHealth asks every member's client URLs for /health. It lists the
// members from the given endpoints (no sync, no total timeout), as etcdctl
// does; with --forever it checks every 10 seconds until the context ends.
func (inv *invocation) clusterHealth(f *parsedFlags) int {
	forever := f.bool("forever")
	c, code := inv.newClient(false)
	if code != exitSuccess {
		return code
	}
	members, err := c.Members(inv.ctx)
	if err != nil {
		fmt.Fprintln(inv.stdout, "cluster may be unhealthy: failed to list members")
		return inv.handleError(exitServerError, err)
	}
	for {
		healthy := 0
		for _, m := range members {
			if len(m.ClientURLs) == 0 {
				fmt.Fprintf(inv.stdout, "member %s is unreachable: no available published client urls\n", m.ID)
				continue
			}
			checked := false
			for _, u := range m.ClientURLs {
				err := c.Health(inv.ctx, u)
				if err != nil && !errors.Is(err, client.ErrUnhealthy) {
					fmt.Fprintf(inv.stdout, "failed to check the health of member %s on %s: %v\n", m.ID, u, err)
					continue
				}
				checked = true
				if err == nil {
					healthy++
					fmt.Fprintf(inv.stdout, "member %s is healthy: got healthy result from %s\n", m.ID, u)
				} else {
					fmt.Fprintf(inv.stdout, "member %s is unhealthy: got unhealthy result from %s\n", m.ID, u)
				}
				break
			}
			if !checked {
				fmt.Fprintf(inv.stdout, "member %s is unreachable: %v are all unreachable\n", m.ID, m.ClientURLs)
			}
		}
		switch healthy {
		case len(members):
			fmt.Fprintln(inv.stdout, "cluster is healthy")
		case 0:
			fmt.Fprintln(inv.stdout, "cluster is unavailable")
		default:
			fmt.Fprintln(inv.stdout, "cluster is degraded")
		}
		if !forever {
			if healthy == len(members) {
				return exitSuccess
			}
			return exitClusterUnhealthy
		}
		fmt.Fprintf(inv.stdout, "\nnext check after 10 second...\n\n")
		select {
		case <-inv.ctx.Done():
			return exitSuccess
		case <-time.After(10 * time.Second):
		}
	}
}
