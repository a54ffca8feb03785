package etcdctl_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corebox/corebox/applets/etcd/client"
	"github.com/corebox/corebox/applets/etcd/client/etcdtest"
	"github.com/corebox/corebox/applets/etcdctl"
)

// side is one of the two tools under comparison with its own etcd: the two
// etcds start alike and get the same requests, so that their indices agree.
type side struct {
	name   string
	member *etcdtest.Member
	tls    *tls.Config  // the client side of the etcd's TLS, if it has TLS
	http   *http.Client // to read its index and metrics
	id     string       // the member's ID
	run    func(t *testing.T, args []string, stdin string, env []string, stop <-chan struct{}) outcome
}

type outcome struct {
	stdout, stderr string
	code           int
}

// debianEtcdctl returns the path of Debian's etcdctl if it speaks the v2
// API, or skips the test.
func debianEtcdctl(t *testing.T) string {
	etcdtest.Binary(t)
	p, err := exec.LookPath("etcdctl")
	if err != nil {
		t.Skip("etcdctl is not installed (apt-get install etcd-client): nothing to compare with")
	}
	cmd := exec.Command(p, "--version")
	cmd.Env = append(cleanEnv(), "ETCDCTL_API=2")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "API version: 2") {
		t.Skipf("%s does not speak the v2 API: %s %v", p, out, err)
	}
	return p
}

// cleanEnv is the environment without ETCDCTL_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ETCDCTL_") {
			env = append(env, kv)
		}
	}
	return env
}

// debianRun runs Debian's etcdctl; closing stop interrupts it as Ctrl-C.
func debianRun(bin string) func(*testing.T, []string, string, []string, <-chan struct{}) outcome {
	return func(t *testing.T, args []string, stdin string, env []string, stop <-chan struct{}) outcome {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append(cleanEnv(), "ETCDCTL_API=2"), env...)
		cmd.Stdin = strings.NewReader(stdin)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			select {
			case <-stop:
				cmd.Process.Signal(os.Interrupt)
			case <-done:
			}
		}()
		err := cmd.Wait()
		close(done)
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return outcome{stdout.String(), stderr.String(), code}
	}
}

// ourRun runs Run in-process; closing stop cancels its context, which is
// what Ctrl-C does to an applet.
func ourRun(t *testing.T, args []string, stdin string, env []string, stop <-chan struct{}) outcome {
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		if had {
			defer os.Setenv(k, old)
		} else {
			defer os.Unsetenv(k)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	var stdout, stderr bytes.Buffer
	code := etcdctl.Run(ctx, args, strings.NewReader(stdin), &stdout, &stderr)
	return outcome{stdout.String(), stderr.String(), code}
}

// step is one command run by both tools.
type step struct {
	args []string // {client}, {peer}, {id}, {dead}, {index} are replaced per side
	// noEndpoints leaves out the leading --endpoints {client}.
	noEndpoints bool
	stdin       string
	env         []string
	// While the command runs: wait until it watches (watch), then write
	// these keys ("key=value", "key/" for a directory), then interrupt it
	// after a moment (interrupt).
	watch     bool
	writes    []string
	interrupt bool
	// unordered compares stdout's lines, and the members of an
	// ETCD_INITIAL_CLUSTER line, in any order: etcd lists a directory in
	// no order unless asked to sort, and members in the order of their
	// IDs, which are random.
	unordered bool
}

// newSides starts an etcd for each tool, alike, and checks that they agree
// on their index.
func newSides(t *testing.T, o *etcdtest.Options) []*side {
	bin := debianEtcdctl(t)
	for _, v := range []string{"ETCDCTL_ENDPOINTS", "ETCDCTL_ENDPOINT", "ETCDCTL_PEERS", "ETCDCTL_CA_FILE", "ETCDCTL_CERT_FILE", "ETCDCTL_KEY_FILE", "ETCDCTL_DISCOVERY_SRV", "ETCDCTL_USERNAME"} {
		t.Setenv(v, "")
	}
	var deb, ours *etcdtest.Member
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); deb = etcdtest.Start(t, o) }()
	go func() { defer wg.Done(); ours = etcdtest.Start(t, o) }()
	wg.Wait()
	if deb == nil || ours == nil {
		t.FailNow()
	}
	sides := []*side{
		{name: "debian", member: deb, run: debianRun(bin)},
		{name: "corebox", member: ours, run: ourRun},
	}
	ctx := context.Background()
	var index []uint64
	for _, s := range sides {
		if o != nil && o.TLS != nil {
			s.tls = o.TLS.Client
		}
		s.http = &http.Client{Transport: &http.Transport{TLSClientConfig: s.tls}}
		c := s.client(t)
		ms, err := c.Members(ctx)
		if err != nil || len(ms) != 1 {
			t.Fatalf("members of %s's etcd: %v %v", s.name, ms, err)
		}
		s.id = ms[0].ID
		i, err := s.member.Index(ctx, s.http)
		if err != nil {
			t.Fatal(err)
		}
		index = append(index, i)
	}
	if index[0] != index[1] {
		t.Fatalf("the two etcds start at different indices: %d, %d", index[0], index[1])
	}
	return sides
}

// client is a client of the side's etcd.
func (s *side) client(t *testing.T) *client.Client {
	c, err := client.New(client.Config{Endpoints: []string{s.member.ClientURL}, TLS: s.tls})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCompareWithDebianEtcdctl(t *testing.T) {
	sides := newSides(t, nil)
	dead := deadURL(t)
	steps := []step{
		// Help, usage and unknown commands.
		{args: nil, noEndpoints: true},
		{args: []string{"--help"}, noEndpoints: true},
		{args: []string{"help"}},
		{args: []string{"help", "get"}},
		{args: []string{"help", "set"}},
		{args: []string{"help", "ls"}},
		{args: []string{"help", "rm"}},
		{args: []string{"help", "rmdir"}},
		{args: []string{"h", "mk"}},
		{args: []string{"help", "mkdir"}},
		{args: []string{"help", "setdir"}},
		{args: []string{"help", "update"}},
		{args: []string{"help", "updatedir"}},
		{args: []string{"help", "watch"}},
		{args: []string{"help", "exec-watch"}},
		{args: []string{"help", "member"}},
		{args: []string{"help", "cluster-health"}},
		{args: []string{"help", "help"}},
		{args: []string{"help", "nosuch"}},
		{args: []string{"nosuch"}},
		{args: []string{"get", "--help"}},
		{args: []string{"set", "-h"}},
		{args: []string{"member"}},
		{args: []string{"member", "--help"}},
		{args: []string{"member", "help", "add"}},
		{args: []string{"member", "list", "--help"}},
		{args: []string{"member", "nosuch"}},
		{args: []string{"--bogus", "get", "/x"}, noEndpoints: true},
		{args: []string{"get", "--bogus", "/x"}},
		{args: []string{"--timeout", "1x", "get", "/x"}},
		{args: []string{"-o", "json", "--output", "json", "get", "/x"}},
		{args: []string{"ls", "-r", "--recursive", "/"}},
		{args: []string{"set", "/x", "1", "--ttl", "abc"}},
		{args: []string{"set", "/x", "1", "--ttl"}},

		// Keys, values, errors.
		{args: []string{"get", "/foo"}},
		{args: []string{"-o", "json", "get", "/foo"}},
		{args: []string{"get"}},
		{args: []string{"set"}},
		{args: []string{"set", "/foo"}},
		{args: []string{"set", "/foo", "bar"}},
		{args: []string{"-o", "extended", "set", "/foo", "baz"}},
		{args: []string{"-o", "json", "get", "/foo"}},
		{args: []string{"--output=extended", "get", "/foo"}},
		{args: []string{"get", "foo", "extra", "args"}},
		{args: []string{"get", "--sort", "--quorum", "/foo"}},
		{args: []string{"get", "-q", "/foo"}},
		{args: []string{"mk", "/foo", "x"}},
		{args: []string{"mk", "/new", "x"}},
		{args: []string{"mk", "/new2"}, stdin: "from stdin\n"},
		{args: []string{"set", "/stdin"}, stdin: "value\nwith lines"},
		{args: []string{"get", "/stdin"}},
		{args: []string{"set", "/q", "-v"}},
		{args: []string{"set", "--", "/q2", "-v"}},
		{args: []string{"set", "/q3", "v", "--bogus"}},
		{args: []string{"set", "/ttl", "v", "--ttl=5000"}},
		{args: []string{"set", "--ttl", "5000", "/ttl2", "v"}},
		{args: []string{"-o", "extended", "get", "/ttl"}},
		{args: []string{"-o", "json", "get", "/ttl2"}},
		{args: []string{"set", "/neg", "v", "--ttl", "-1"}},
		{args: []string{"update", "/nokey", "v"}},
		{args: []string{"update", "/foo", "updated"}},
		{args: []string{"-o", "extended", "update", "/foo", "again", "--ttl", "3000"}},
		{args: []string{"-o", "json", "update", "/foo", "permanent"}},
		{args: []string{"set", "/cas", "a"}},
		{args: []string{"set", "/cas", "b", "--swap-with-value", "a"}},
		{args: []string{"set", "/cas", "c", "--swap-with-value", "a"}},
		{args: []string{"-o", "extended", "set", "/cas", "c", "--swap-with-value", "b", "--swap-with-index", "1"}},
		{args: []string{"set", "/cas", "c", "--swap-with-index", "{index}"}},
		{args: []string{"-o", "json", "set", "/cas", "d", "--swap-with-value", "c"}},
		{args: []string{"rm", "/cas", "--with-value", "nope"}},
		{args: []string{"rm", "/cas", "--with-index", "1"}},
		{args: []string{"rm", "/cas", "--with-value", "d"}},
		{args: []string{"rm"}},
		{args: []string{"rm", "/nokey"}},
		{args: []string{"rm", "/new"}},
		{args: []string{"-o", "extended", "rm", "/new2"}},
		{args: []string{"-o", "json", "rm", "/q"}},
		{args: []string{"set", "a b/c%d/ü?#&+", "odd key"}},
		{args: []string{"get", "/a b/c%d/ü?#&+"}},
		{args: []string{"set", "/dup//slashes/./x", "v"}},
		{args: []string{"-o", "json", "get", "/dup/slashes/x"}},
		{args: []string{"-o", "bogus", "get", "/foo"}},
		{args: []string{"-o", "bogus", "set", "/foo", "x"}},

		// Directories.
		{args: []string{"mkdir", "/d"}},
		{args: []string{"mkdir", "/d"}},
		{args: []string{"-o", "extended", "mkdir", "/d2"}},
		{args: []string{"-o", "json", "mkdir", "/d3", "--ttl", "4000"}},
		{args: []string{"-o", "bogus", "mkdir", "/d4"}},
		{args: []string{"get", "/d"}},
		{args: []string{"-o", "json", "get", "/d"}},
		{args: []string{"get", "/"}},
		{args: []string{"setdir", "/d"}},
		{args: []string{"setdir", "/d5"}},
		{args: []string{"-o", "json", "setdir", "/d6", "--ttl", "4000"}},
		{args: []string{"updatedir", "/nodir"}},
		{args: []string{"updatedir", "/d", "--ttl", "4000"}},
		{args: []string{"-o", "extended", "updatedir", "/d2", "--ttl", "4000"}},
		{args: []string{"set", "/d", "x"}},
		{args: []string{"set", "/d/k1", "1"}},
		{args: []string{"set", "/d/sub/k2", "2"}},
		{args: []string{"mkdir", "/d/empty"}},
		{args: []string{"ls"}, unordered: true},
		{args: []string{"ls", "/"}, unordered: true},
		{args: []string{"ls", ""}, unordered: true},
		{args: []string{"ls", "-p"}, unordered: true},
		{args: []string{"ls", "/d"}, unordered: true},
		{args: []string{"ls", "/d", "--recursive"}, unordered: true},
		{args: []string{"ls", "-r", "-p", "/d"}, unordered: true},
		{args: []string{"ls", "--sort", "-r", "/d"}},
		{args: []string{"ls", "/d/k1"}},
		{args: []string{"ls", "-p", "/d/k1"}},
		{args: []string{"ls", "/nodir"}},
		{args: []string{"-o", "json", "ls", "--sort", "-r", "/d"}},
		{args: []string{"-o", "extended", "ls", "/"}},
		{args: []string{"-o", "extended", "ls", "/d/k1"}},
		{args: []string{"rm", "/d"}},
		{args: []string{"rmdir", "/d"}},
		{args: []string{"rmdir", "/d/k1"}},
		{args: []string{"rm", "--dir", "/d/empty"}},
		{args: []string{"-o", "extended", "rmdir", "/d2"}},
		{args: []string{"-o", "json", "rm", "--dir", "/d3"}},
		{args: []string{"-o", "bogus", "rmdir", "/d5"}},
		{args: []string{"rm", "-r", "/d"}},
		{args: []string{"-o", "json", "rm", "--recursive", "/d6"}},
		{args: []string{"rm", "/d4", "--dir", "--with-value", "x"}},

		// In-order keys (their names are indices, equal on both sides).
		{args: []string{"mk", "--in-order", "/queue", "one"}},
		{args: []string{"-o", "extended", "mk", "--in-order", "/queue", "two"}},
		{args: []string{"-o", "json", "mk", "--in-order", "/queue", "three", "--ttl", "5000"}},
		{args: []string{"mk", "--in-order", "/queue", "v", "--ttl", "100"}},
		{args: []string{"ls", "--sort", "/queue"}},

		// Watches.
		{args: []string{"watch"}},
		{args: []string{"watch", "/w"}, watch: true, writes: []string{"/other=x", "/w=hello"}},
		{args: []string{"watch", "-r", "/wd"}, watch: true, writes: []string{"/wd/sub/", "/wd/sub/k=v"}},
		{args: []string{"-o", "extended", "watch", "/w"}, watch: true, writes: []string{"/w=again"}},
		{args: []string{"-o", "json", "watch", "--recursive", "/wd"}, watch: true, writes: []string{"/wd/sub/k=w"}},
		{args: []string{"watch", "--forever", "/w"}, watch: true, writes: []string{"/w=1", "/w=2", "-/w", "/w=3"}, interrupt: true},
		// Now /w=3 is the last write, after its delete and /w=2.
		{args: []string{"watch", "--after-index", "{index-2}", "/w"}},
		{args: []string{"-o", "extended", "watch", "/w", "--after-index", "{index-3}"}},
		{args: []string{"watch", "--after-index", "1", "/w"}},
		{args: []string{"exec-watch", "--after-index", "{index-1}", "sh", "-c", `echo "$ETCD_WATCH_ACTION $ETCD_WATCH_VALUE $ETCD_WATCH_MODIFIED_INDEX"`, "/w"},
			watch: true, writes: []string{"/w=4"}, interrupt: true},
		// With a flag before the key, "--" is taken away and the key is the
		// last argument.
		{args: []string{"exec-watch", "--after-index", "{index-1}", "/w", "--", "sh", "-c", "echo never", "/w"},
			watch: true, writes: []string{"/w=5"}, interrupt: true},
		{args: []string{"exec-watch", "-r", "/w", "--", "sh", "-c", `echo "$ETCD_WATCH_VALUE"`},
			watch: true, writes: []string{"/w=6"}, interrupt: true},
		{args: []string{"-o", "extended", "watch", "-f", "-r", "/wd"}, watch: true, writes: []string{"/wd/a=1", "/wd/b/", "/wd/b/c=2"}, interrupt: true},
		{args: []string{"exec-watch"}},
		{args: []string{"exec-watch", "/x"}},
		{args: []string{"exec-watch", "-r", "/ex", "--", "sh", "-c", `echo "A=$ETCD_WATCH_ACTION K=$ETCD_WATCH_KEY V=$ETCD_WATCH_VALUE I=$ETCD_WATCH_MODIFIED_INDEX"; echo err >&2`},
			watch: true, writes: []string{"/ex/a=1", "/ex/d/"}, interrupt: true},
		// Without flags, urfave/cli moves "--" first and the key is the
		// last argument: this watches key "hi" and runs "/ex2 echo".
		{args: []string{"exec-watch", "/ex2", "--", "echo", "hi"}, watch: true, writes: []string{"/ex2=1", "/hi=2"}, interrupt: true},
		{args: []string{"exec-watch", "--recursive", "/ex", "--", "/nonexistent/command"}, watch: true, writes: []string{"/ex/b=1"}},

		// Endpoints, failover, timeouts, environment.
		{args: []string{"--endpoints", "{dead}", "get", "/foo"}, noEndpoints: true},
		{args: []string{"--no-sync", "--endpoints", "{dead}", "get", "/foo"}, noEndpoints: true},
		{args: []string{"--endpoints", "{dead}", "mkdir", "/x"}, noEndpoints: true},
		{args: []string{"--endpoints", "{dead}", "member", "list"}, noEndpoints: true},
		{args: []string{"--endpoints", "{dead}", "cluster-health"}, noEndpoints: true},
		{args: []string{"--endpoints", "{dead},{client}", "get", "/foo"}, noEndpoints: true},
		{args: []string{"--no-sync", "--endpoints", "{dead},{client}", "set", "/foo", "failover"}, noEndpoints: true},
		{args: []string{"--endpoints", "127.0.0.1:1", "get", "/foo"}, noEndpoints: true},
		{args: []string{"--peers", "{client}", "get", "/foo"}, noEndpoints: true},
		{args: []string{"-C", "{client}", "get", "/foo"}, noEndpoints: true},
		{args: []string{"--endpoint", "{client}", "get", "/foo"}, noEndpoints: true},
		{args: []string{"get", "/foo"}, noEndpoints: true, env: []string{"ETCDCTL_ENDPOINTS={client}"}},
		{args: []string{"get", "/foo"}, noEndpoints: true, env: []string{"ETCDCTL_PEERS={client}"}},
		{args: []string{"--endpoints", "{dead}", "get", "/foo"}, noEndpoints: true, env: []string{"ETCDCTL_ENDPOINTS={client}"}},
		{args: []string{"--total-timeout", "1ns", "get", "/foo"}},
		{args: []string{"--total-timeout", "1ns", "--no-sync", "get", "/foo"}},
		{args: []string{"--timeout", "1ns", "--no-sync", "get", "/foo"}},
		{args: []string{"--timeout", "0", "get", "/foo"}},
		{args: []string{"--ca-file", "/nonexistent", "get", "/foo"}},
		{args: []string{"--cert-file", "/nonexistent", "--key-file", "/nonexistent", "get", "/foo"}},
		{args: []string{"get", "/foo"}, env: []string{"ETCDCTL_CA_FILE=/nonexistent"}},

		// Members and health (adding a member to a one-member cluster
		// loses its quorum: that comes last).
		{args: []string{"member", "list"}},
		{args: []string{"-o", "json", "member", "list"}},
		{args: []string{"member", "list", "extra"}},
		{args: []string{"cluster-health"}},
		{args: []string{"cluster-health", "extra"}},
		{args: []string{"cluster-health", "-f"}, interrupt: true},
		{args: []string{"member", "add"}},
		{args: []string{"member", "add", "n2", "http://127.0.0.1:1/path"}},
		{args: []string{"member", "add", "n2", "ftp://127.0.0.1:1"}},
		{args: []string{"member", "add", "n2", "bad"}},
		{args: []string{"member", "add", "n2", "{peer}"}},
		{args: []string{"member", "update"}},
		{args: []string{"member", "update", "{id}", "http://x"}},
		{args: []string{"member", "update", "1234", "{dead}"}},
		{args: []string{"member", "update", "{id}", "{peer}"}},
		{args: []string{"member", "remove"}},
		{args: []string{"member", "remove", "m0"}},
		{args: []string{"member", "remove", "1234"}},
		{args: []string{"member", "add", "n2", "{dead}"}, unordered: true},
		{args: []string{"member", "list"}, unordered: true},
		{args: []string{"cluster-health"}, unordered: true},
	}

	compare(t, sides, steps, dead)
}

// compare runs the steps with both tools, each against its etcd, and
// reports where their outputs or exit codes differ.
func compare(t *testing.T, sides []*side, steps []step, dead string) {
	deadHost := strings.TrimPrefix(dead, "http://")
	for i, st := range steps {
		name := fmt.Sprintf("%03d %s", i, strings.Join(st.args, " "))
		var got [2]outcome
		for j, s := range sides {
			got[j] = runStep(t, s, st, dead)
		}
		norm := func(j int, text string) string {
			s := sides[j]
			text = strings.ReplaceAll(text, s.member.ClientURL, "{client}")
			_, host, _ := strings.Cut(s.member.ClientURL, "://")
			text = strings.ReplaceAll(text, host, "{client-host}")
			text = strings.ReplaceAll(text, s.member.PeerURL, "{peer}")
			text = strings.ReplaceAll(text, s.id, "{id}")
			text = strings.ReplaceAll(text, deadHost, "{dead-host}")
			return normalize(text)
		}
		for j := range got {
			got[j].stdout, got[j].stderr = norm(j, got[j].stdout), norm(j, got[j].stderr)
		}
		d, o := got[0], got[1]
		d.stdout = debianHelp(d.stdout)
		if st.unordered {
			d.stdout, o.stdout = sortLines(d.stdout), sortLines(o.stdout)
		}
		if d != o {
			t.Errorf("step %s:\n--- debian (exit %d)\nstdout:\n%s\nstderr:\n%s\n--- corebox (exit %d)\nstdout:\n%s\nstderr:\n%s",
				name, d.code, d.stdout, d.stderr, o.code, o.stdout, o.stderr)
		}
	}
}

var (
	ttlRE        = regexp.MustCompile(`(TTL: |"ttl":)(\d+)`)
	expirationRE = regexp.MustCompile(`"expiration":"[^"]*"`)
	memberIDRE   = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
)

// normalize hides what differs between two runs: seconds left of a TTL
// (rounded to tens), expiration times and IDs of members added.
func normalize(s string) string {
	s = ttlRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := ttlRE.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[2])
		if n > 1 {
			n = (n + 5) / 10 * 10
		}
		return sub[1] + strconv.Itoa(n)
	})
	s = expirationRE.ReplaceAllString(s, `"expiration":"{time}"`)
	return memberIDRE.ReplaceAllString(s, "{new-id}")
}

// sortLines sorts s's lines and the comma-separated name=URL pairs of an
// ETCD_INITIAL_CLUSTER line.
func sortLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if v, ok := strings.CutPrefix(l, "ETCD_INITIAL_CLUSTER="); ok {
			items := strings.Split(strings.Trim(v, `"`), ",")
			slices.Sort(items)
			lines[i] = "ETCD_INITIAL_CLUSTER=" + strings.Join(items, ",")
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// debianHelp makes Debian's help what corebox's says: corebox's version,
// and without the commands corebox does not have.
func debianHelp(s string) string {
	var out []string
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		switch {
		case i > 0 && lines[i-1] == "VERSION:" && l == "   3.4.23":
			l = "   dev"
		case strings.HasPrefix(l, "etcdctl version: "):
			l = "etcdctl version: dev"
		case strings.HasPrefix(l, "   backup    "), strings.HasPrefix(l, "   user    "), strings.HasPrefix(l, "   role    "), strings.HasPrefix(l, "   auth    "):
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// runStep runs one step on one side.
func runStep(t *testing.T, s *side, st step, dead string) outcome {
	t.Helper()
	ctx := context.Background()
	var index uint64
	if i, err := s.member.Index(ctx, s.http); err == nil {
		index = i
	}
	subst := func(a string) string {
		for k, v := range map[string]string{
			"{client}": s.member.ClientURL, "{peer}": s.member.PeerURL, "{id}": s.id, "{dead}": dead,
			"{index}":   strconv.FormatUint(index, 10),
			"{index-2}": strconv.FormatUint(index-2, 10),
			"{index-3}": strconv.FormatUint(index-3, 10),
			"{index-1}": strconv.FormatUint(index-1, 10),
		} {
			a = strings.ReplaceAll(a, k, v)
		}
		return a
	}
	var args []string
	if !st.noEndpoints {
		args = append(args, "--endpoints", s.member.ClientURL)
	}
	for _, a := range st.args {
		args = append(args, subst(a))
	}
	var env []string
	for _, e := range st.env {
		env = append(env, subst(e))
	}
	if len(st.writes) == 0 && !st.interrupt {
		return s.run(t, args, st.stdin, env, nil)
	}
	stop := make(chan struct{})
	result := make(chan outcome, 1)
	before := watchers(t, s)
	go func() { result <- s.run(t, args, st.stdin, env, stop) }()
	if st.watch {
		// Until it watches, or has ended already.
		deadline := time.Now().Add(10 * time.Second)
		for watchers(t, s) <= before && time.Now().Before(deadline) {
			select {
			case o := <-result:
				return o
			case <-time.After(20 * time.Millisecond):
			}
		}
	} else {
		time.Sleep(500 * time.Millisecond)
	}
	c := s.client(t)
	var err error
	for _, w := range st.writes {
		// Let each event reach the watcher (and a command run) before the
		// next one, so that outputs come in one order.
		time.Sleep(100 * time.Millisecond)
		switch k, v, isSet := strings.Cut(w, "="); {
		case strings.HasPrefix(w, "-"):
			_, err = c.Delete(ctx, w[1:], nil)
		case isSet:
			_, err = c.Set(ctx, k, v, nil)
		default:
			_, err = c.Set(ctx, strings.TrimSuffix(w, "/"), "", &client.SetOptions{Dir: true})
		}
		if err != nil {
			t.Fatalf("%s: write %s: %v", s.name, w, err)
		}
	}
	if st.interrupt {
		time.Sleep(500 * time.Millisecond)
		close(stop)
	}
	select {
	case o := <-result:
		return o
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: %q still runs after 30s", s.name, args)
	}
	return outcome{}
}

// watchers is the number of watches the member serves.
func watchers(t *testing.T, s *side) int {
	resp, err := s.http.Get(s.member.ClientURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "etcd_debugging_store_watchers "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}

func deadURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

// TLS: client certificates and CA from flags and from the environment.
func TestCompareWithDebianEtcdctlTLS(t *testing.T) {
	tl := etcdtest.NewTLS(t, true)
	sides := newSides(t, &etcdtest.Options{TLS: tl})
	files := []string{"--ca-file", tl.CAFile, "--cert-file", tl.ClientCertFile, "--key-file", tl.ClientKeyFile}
	with := func(args ...string) []string { return append(slices.Clone(files), args...) }
	env := []string{"ETCDCTL_CA_FILE=" + tl.CAFile, "ETCDCTL_CERT_FILE=" + tl.ClientCertFile, "ETCDCTL_KEY_FILE=" + tl.ClientKeyFile}
	compare(t, sides, []step{
		{args: with("set", "/tls", "secret")},
		{args: with("-o", "extended", "get", "/tls")},
		{args: []string{"get", "/tls"}, env: env},
		{args: with("mk", "--in-order", "/tlsq", "v")},
		{args: with("member", "list")},
		{args: with("cluster-health")},
		{args: []string{"--cert-file", tl.ClientCertFile, "get", "/tls"}},
		{args: []string{"--key-file", tl.ClientKeyFile, "get", "/tls"}},
		{args: []string{"--ca-file", tl.ClientCertFile + ".missing", "get", "/tls"}},
		{args: with("watch", "/tlsw"), watch: true, writes: []string{"/tlsw=over tls"}},
	}, deadURL(t))
}

// A watch from an index etcd no longer keeps fails with etcd's 401.
func TestCompareWithDebianEtcdctlHistoryCleared(t *testing.T) {
	sides := newSides(t, nil)
	ctx := context.Background()
	for _, s := range sides {
		c := s.client(t)
		for i := range 1010 {
			if _, err := c.Set(ctx, "/h", strconv.Itoa(i), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	compare(t, sides, []step{
		{args: []string{"watch", "--after-index", "1", "/h"}},
		{args: []string{"-o", "json", "exec-watch", "--after-index", "1", "true", "/h"}},
		{args: []string{"exec-watch", "--after-index", "1", "/h", "--", "true"}},
		{args: []string{"watch", "--after-index", "{index-2}", "/h"}},
	}, deadURL(t))
}

// The commands against etcd, without Debian's etcdctl to compare with.
func TestAgainstEtcd(t *testing.T) {
	m := etcdtest.Start(t, nil)
	t.Setenv("ETCDCTL_ENDPOINTS", m.ClientURL)
	// Indices counted from the store's index at the start (etcd writes a
	// few keys of its own when it starts).
	base, err := m.Index(context.Background(), http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	ix := func(s string) string {
		return regexp.MustCompile(`\{(\d+)\}`).ReplaceAllStringFunc(s, func(m string) string {
			n, _ := strconv.Atoi(m[1 : len(m)-1])
			return strconv.FormatUint(base+uint64(n), 10)
		})
	}
	run := func(stdin string, args ...string) outcome {
		return ourRun(t, args, stdin, nil, nil)
	}
	for _, tc := range []struct {
		args   []string
		stdin  string
		stdout string
		stderr string
		code   int
	}{
		{args: []string{"set", "/a", "1"}, stdout: "1\n"},
		{args: []string{"set", "/b"}, stdin: "from stdin", stdout: "from stdin\n"},
		{args: []string{"get", "/a"}, stdout: "1\n"},
		{args: []string{"mk", "/a", "2"}, stderr: "Error:  105: Key already exists (/a) [{2}]\n", code: 4},
		{args: []string{"mkdir", "/d"}},
		{args: []string{"get", "/d"}, stderr: "/d: is a directory\n", code: 1},
		{args: []string{"set", "/d/x", "y"}, stdout: "y\n"},
		{args: []string{"ls", "--sort", "-p"}, stdout: "/a\n/b\n/d/\n"},
		{args: []string{"ls", "-r", "/d"}, stdout: "/d/x\n"},
		{args: []string{"-o", "extended", "update", "/a", "3"}, stdout: "Key: /a\nCreated-Index: {1}\nModified-Index: {5}\nPrevNode.Value: 1\nTTL: 0\nIndex: {5}\n\n3\n"},
		{args: []string{"-o", "json", "rm", "/a"}, stdout: `{"action":"delete","node":{"key":"/a","value":"","nodes":null,"createdIndex":{1},"modifiedIndex":{6}},"prevNode":{"key":"/a","value":"3","nodes":null,"createdIndex":{1},"modifiedIndex":{5}}}` + "\n"},
		{args: []string{"rm", "/d"}, stderr: "Error:  102: Not a file (/d) [{6}]\n", code: 4},
		{args: []string{"rm", "-r", "/d"}},
		{args: []string{"watch", "--after-index", ix("{5}"), "/a"}, stdout: "PrevNode.Value: 3\n"},
		{args: []string{"--no-sync", "--endpoints", deadURL(t) + "," + m.ClientURL, "get", "/b"}, stdout: "from stdin\n"},
	} {
		got := run(tc.stdin, tc.args...)
		if tc.stdout, tc.stderr = ix(tc.stdout), ix(tc.stderr); got != (outcome{tc.stdout, tc.stderr, tc.code}) {
			t.Errorf("%q: exit %d stdout %q stderr %q\nwant exit %d stdout %q stderr %q", tc.args, got.code, got.stdout, got.stderr, tc.code, tc.stdout, tc.stderr)
		}
	}

	// exec-watch runs its command with the event in its environment until
	// interrupted.
	stop := make(chan struct{})
	done := make(chan outcome, 1)
	go func() {
		done <- ourRun(t, []string{"exec-watch", "--after-index", ix("{6}"), "sh", "-c", `echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE $ETCD_WATCH_MODIFIED_INDEX"`, "/e"}, "", nil, stop)
	}()
	if got := run("", "set", "/e", "v"); got.code != 0 {
		t.Fatal(got)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	if got := <-done; got != (outcome{ix("set /e v {8}\n"), "", 0}) {
		t.Fatalf("exec-watch: %+v", got)
	}
}
