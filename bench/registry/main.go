// Command registry measures corebox's registry (the etcd applet) against
// Debian's etcd 3.4 over the etcd v2 keys API. In one run it starts a
// 3-member cluster of each, one cluster at a time, as separate processes
// on loopback with their data dirs under one temporary directory, and for
// each number of concurrent clients drives them with
//
//   - PUTs of 256-byte values (form-encoded value=…) to
//     /v2/keys/bench/<client>/<i>, each client sending to the three members
//     in turn, so that two thirds of the writes go through a follower;
//   - quorum GETs (?quorum=true) of keys that client wrote before, sent
//     the same way.
//
// Each level runs for a warm-up that is not counted, then for -duration.
// With -rounds N each system is measured N times, alternating corebox and
// etcd (a fresh cluster each time), and each level's table row is the run
// with the median throughput. It prints one markdown table per operation (and writes them to -out):
// throughput, p50 and p99 latency of both, and their ratios; then the
// members' CPU time per operation, and a note on the machine, including
// how busy it was with other work during the measurement.
//
//	CGO_ENABLED=0 go build -trimpath -o /tmp/corebox .
//	go run ./bench/registry -corebox /tmp/corebox -etcd /usr/bin/etcd -duration 10s -out registry.md
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	var o options
	var clients string
	flag.StringVar(&clients, "clients", "1,16,64,256", "comma-separated `list` of concurrent client counts")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measured time of each level and operation")
	flag.IntVar(&o.rounds, "rounds", 1, "measure each system this many `times`, alternating corebox and etcd, and report each level's median run (by ops/s)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "time before each measurement that is not counted")
	flag.StringVar(&o.corebox, "corebox", "/tmp/corebox", "the corebox `binary` (build it with: CGO_ENABLED=0 go build -trimpath -o /tmp/corebox .)")
	flag.StringVar(&o.etcd, "etcd", "/usr/bin/etcd", "the etcd 3.4 `binary` (Debian: apt-get install etcd-server)")
	flag.StringVar(&o.out, "out", "", "also write the tables as markdown to this `file`")
	flag.StringVar(&o.dir, "dir", "", "`directory` for the clusters' data dirs (default: the system's temporary directory)")
	flag.DurationVar(&o.timeout, "timeout", 0, "bound on the whole run (default: from -clients, -duration and -warmup)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "bench/registry: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	for _, f := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench/registry: -clients: %q is not a positive number\n", f)
			os.Exit(2)
		}
		o.clients = append(o.clients, n)
	}
	if o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench/registry: -rounds must be at least 1")
		os.Exit(2)
	}
	if o.duration <= 0 || o.warmup < 0 {
		fmt.Fprintln(os.Stderr, "bench/registry: -duration must be positive and -warmup not negative")
		os.Exit(2)
	}
	o.command = "go run ./bench/registry " + strings.Join(os.Args[1:], " ")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/registry: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	clients           []int
	rounds            int
	duration, warmup  time.Duration
	corebox, etcd     string
	out, dir, command string
	timeout           time.Duration
}

// Budgets that bound the run besides the load itself.
const (
	startTimeout   = 60 * time.Second // until a new cluster serves writes and quorum reads everywhere
	requestTimeout = 10 * time.Second // one HTTP request
	stopTimeout    = 10 * time.Second // from SIGTERM to SIGKILL
)

// totalTimeout is the default bound on a run: both systems' start, every
// level's load and its stragglers, and the stops.
func (o options) totalTimeout() time.Duration {
	perLevel := 2 * (o.warmup + o.duration + requestTimeout + 5*time.Second)
	return time.Duration(o.rounds) * 2 * (startTimeout + stopTimeout + time.Duration(len(o.clients))*perLevel)
}

// flavor is one implementation of the registry under test.
type flavor struct {
	name string
	argv func(memberArgs []string) []string
}

// measure is the outcome of one operation at one level.
type measure struct {
	ops      int             // successful requests that completed in the measured window
	window   time.Duration   // the measured window
	lat      []time.Duration // their latencies, sorted
	errs     int             // failed requests over the whole level, warm-up included
	firstErr string
	cpu      time.Duration // CPU time (user+system) of the three members in the window
	// elsewhere is the machine's busy CPU time in the window that neither
	// the members nor this program used: other processes, and kernel work
	// (softirq) not charged to a process.
	elsewhere time.Duration
}

// cpuPerOp is the members' CPU time per successful operation.
func (m measure) cpuPerOp() time.Duration {
	if m.ops == 0 {
		return 0
	}
	return m.cpu / time.Duration(m.ops)
}

func (m measure) rate() float64 { return float64(m.ops) / m.window.Seconds() }

// quantile returns the q-quantile of the latencies (nearest rank).
func (m measure) quantile(q float64) time.Duration {
	if len(m.lat) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(m.lat)))) - 1
	return m.lat[max(i, 0)]
}

type op int

const (
	opPut op = iota
	opGet
)

// results holds the measures of one flavor by operation and client count.
type results map[op]map[int]measure

func run(ctx context.Context, o options) error {
	for _, b := range []struct{ flag, path, how string }{
		{"-corebox", o.corebox, "build it with: CGO_ENABLED=0 go build -trimpath -o " + o.corebox + " ."},
		{"-etcd", o.etcd, "on Debian: apt-get install -y etcd-server"},
	} {
		fi, err := os.Stat(b.path)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s %s: not an executable file (%s)", b.flag, b.path, b.how)
		}
	}
	timeout := o.timeout
	if timeout <= 0 {
		timeout = o.totalTimeout()
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	tmp, err := os.MkdirTemp(o.dir, "corebox-bench-registry-")
	if err != nil {
		return fmt.Errorf("making the data directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	env := describeMachine(ctx, o, tmp)

	flavors := []flavor{
		{"corebox", func(a []string) []string { return append([]string{o.corebox, "etcd"}, a...) }},
		{"etcd", func(a []string) []string { return append(append([]string{o.etcd}, a...), "--enable-v2") }},
	}
	runs := map[string][]results{}
	for round := 0; round < o.rounds; round++ {
		for _, f := range flavors {
			r, err := bench(ctx, o, f, filepath.Join(tmp, fmt.Sprintf("%s-%d", f.name, round)))
			if err != nil {
				switch {
				case errors.Is(ctx.Err(), context.DeadlineExceeded):
					err = fmt.Errorf("%w (the run's bound, -timeout %v, was reached)", err, timeout)
				case ctx.Err() != nil:
					err = fmt.Errorf("%w (interrupted)", err)
				}
				return fmt.Errorf("%s: %w", f.name, err)
			}
			runs[f.name] = append(runs[f.name], r)
		}
	}
	all := map[string]results{}
	for _, f := range flavors {
		all[f.name] = medianRun(runs[f.name])
	}
	var busy []string
	for _, f := range flavors {
		var other, window time.Duration
		for _, byClients := range all[f.name] {
			for _, m := range byClients {
				other, window = other+m.elsewhere, window+m.window
			}
		}
		busy = append(busy, fmt.Sprintf("%.0f%% during %s's", 100*other.Seconds()/window.Seconds()/float64(runtime.NumCPU()), f.name))
	}
	env = append(env, "CPU busy outside the members and the load generator (other processes, kernel softirq work), share of the machine: "+
		strings.Join(busy, ", ")+" measured windows")
	md := report(o, env, all["corebox"], all["etcd"])
	fmt.Print(md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
			return fmt.Errorf("-out: %w", err)
		}
	}
	return nil
}

// medianRun picks, for each operation and client count, the measure of
// the run with the median throughput (the lower middle one for an even
// count), so that one disturbed run does not decide the table.
func medianRun(runs []results) results {
	out := results{opPut: {}, opGet: {}}
	for _, p := range []op{opPut, opGet} {
		for n := range runs[0][p] {
			ms := make([]measure, 0, len(runs))
			for _, r := range runs {
				ms = append(ms, r[p][n])
			}
			slices.SortFunc(ms, func(a, b measure) int { return cmpFloat(a.rate(), b.rate()) })
			out[p][n] = ms[(len(ms)-1)/2]
		}
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// bench starts a cluster of f in dir, measures every level, and stops it.
func bench(ctx context.Context, o options, f flavor, dir string) (res results, err error) {
	fmt.Fprintf(os.Stderr, "%s: starting 3 members in %s\n", f.name, dir)
	c, err := startCluster(f, dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := c.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	maxClients := slices.Max(o.clients)
	tr := &http.Transport{
		Proxy:               nil, // loopback only, whatever HTTP_PROXY says
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        0, // no limit over all members
		MaxIdleConnsPerHost: maxClients + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: requestTimeout}

	start := time.Now()
	if err := c.waitReady(ctx, hc); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "%s: serving after %.1f s\n", f.name, time.Since(start).Seconds())

	keys := make([]clientKeys, maxClients)
	res = results{opPut: {}, opGet: {}}
	for _, n := range o.clients {
		for _, p := range []op{opPut, opGet} {
			if p == opGet {
				if err := ensureKeys(ctx, hc, c.urls, keys[:n]); err != nil {
					return nil, err
				}
			}
			m := load(ctx, o, hc, c, p, keys[:n])
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := c.alive(); err != nil {
				return nil, err
			}
			res[p][n] = m
			fmt.Fprintf(os.Stderr, "%s: %-3s clients=%-3d %8.0f ops/s  p50 %s  p99 %s  server CPU %s/op  CPU elsewhere %.0f%%  errors %d %s\n",
				f.name, opName(p), n, m.rate(), ms(m.quantile(0.5)), ms(m.quantile(0.99)), us(m.cpuPerOp()),
				100*m.elsewhere.Seconds()/m.window.Seconds()/float64(runtime.NumCPU()), m.errs, m.firstErr)
		}
	}
	return res, nil
}

func opName(p op) string {
	if p == opPut {
		return "PUT"
	}
	return "GET"
}

// value is the 256-byte value every PUT writes, form-encoded.
var putBody = "value=" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 5)[:256]

// clientKeys is what one client has written: the indices of its keys
// that were acknowledged, and the next index to write. Only the client's
// own goroutine touches it during a level.
type clientKeys struct {
	next    int
	written []int
}

func keyPath(client, i int) string {
	return "/v2/keys/bench/" + strconv.Itoa(client) + "/" + strconv.Itoa(i)
}

// request makes one PUT or quorum GET for client c against base and
// reports whether it succeeded (a 2xx answer, read to its end).
func request(ctx context.Context, hc *http.Client, base string, p op, c int, k *clientKeys, rng *rand.Rand) error {
	var req *http.Request
	i := k.next
	if p == opPut {
		req, _ = http.NewRequestWithContext(ctx, http.MethodPut, base+keyPath(c, i), strings.NewReader(putBody))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		i = k.written[rng.IntN(len(k.written))]
		req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+keyPath(c, i)+"?quorum=true", nil)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", req.Method, req.URL.Path, resp.Status)
	}
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", req.Method, req.URL.Path, err)
	}
	if p == opPut {
		k.next++
		k.written = append(k.written, i)
	}
	return nil
}

// ensureKeys gives every client at least one key to read (a client whose
// PUTs all failed has none).
func ensureKeys(ctx context.Context, hc *http.Client, urls []string, keys []clientKeys) error {
	for c := range keys {
		if len(keys[c].written) > 0 {
			continue
		}
		if err := request(ctx, hc, urls[c%len(urls)], opPut, c, &keys[c], nil); err != nil {
			return fmt.Errorf("writing a key for client %d to read: %w", c, err)
		}
	}
	return nil
}

// load runs len(keys) clients doing p for the warm-up and the measured
// window, each sending to the members in turn starting at its own.
func load(ctx context.Context, o options, hc *http.Client, cl *cluster, p op, keys []clientKeys) measure {
	urls := cl.urls
	start := time.Now()
	from := start.Add(o.warmup)
	end := from.Add(o.duration)
	var cpu, elsewhere time.Duration
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		time.Sleep(time.Until(from))
		c0, s0, b0 := cl.cpu(), processCPU("self"), machineBusy()
		time.Sleep(time.Until(end))
		cpu = cl.cpu() - c0
		elsewhere = max(0, machineBusy()-b0-cpu-(processCPU("self")-s0))
	}()
	type tally struct {
		lat      []time.Duration
		errs     int
		firstErr error
	}
	tallies := make([]tally, len(keys))
	var wg sync.WaitGroup
	for c := range keys {
		wg.Go(func() {
			t := &tallies[c]
			rng := rand.New(rand.NewPCG(uint64(c), uint64(start.UnixNano())))
			for i := c; ctx.Err() == nil; i++ {
				t0 := time.Now()
				if !t0.Before(end) {
					return
				}
				err := request(ctx, hc, urls[i%len(urls)], p, c, &keys[c], rng)
				t1 := time.Now()
				switch {
				case err != nil:
					if ctx.Err() != nil {
						return // stopped, not failed
					}
					t.errs++
					if t.firstErr == nil {
						t.firstErr = err
					}
				case !t0.Before(from) && t1.Before(end):
					t.lat = append(t.lat, t1.Sub(t0))
				}
			}
		})
	}
	wg.Wait()
	<-cpuDone
	m := measure{window: o.duration, cpu: cpu, elsewhere: elsewhere}
	for _, t := range tallies {
		m.lat = append(m.lat, t.lat...)
		m.errs += t.errs
		if m.firstErr == "" && t.firstErr != nil {
			m.firstErr = "(first: " + t.firstErr.Error() + ")"
		}
	}
	slices.Sort(m.lat)
	m.ops = len(m.lat)
	return m
}

// cluster is three members of one flavor on loopback.
type cluster struct {
	name    string
	members []*process
	urls    []string // client URLs, one per member
}

type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free loopback port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func startCluster(f flavor, dir string) (*cluster, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	names := []string{"a", "b", "c"}
	var initial []string
	for i, n := range names {
		initial = append(initial, fmt.Sprintf("%s=http://127.0.0.1:%d", n, ports[3+i]))
	}
	c := &cluster{name: f.name}
	for i, n := range names {
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[i])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[3+i])
		argv := f.argv([]string{
			"--name", n, "--data-dir", filepath.Join(dir, n),
			"--listen-client-urls", client, "--advertise-client-urls", client,
			"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "bench-" + f.name,
		})
		p, err := startProcess(n, argv, filepath.Join(dir, n+".log"))
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("starting member %s: %w", n, err)
		}
		c.members = append(c.members, p)
		c.urls = append(c.urls, client)
	}
	return c, nil
}

func startProcess(name string, argv []string, logPath string) (*process, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close() // the child has its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Its own process group, so that a Ctrl-C reaches only this program,
	// which then stops the members in order; killed with this program if
	// it dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// alive reports a member that has exited, with the end of its log.
func (c *cluster) alive() error {
	for _, p := range c.members {
		select {
		case <-p.done:
			return fmt.Errorf("member %s exited: %v\n%s", p.name, p.err, tail(p.log, 20))
		default:
		}
	}
	return nil
}

// cpu returns the CPU time (user and system) the members have used so far.
func (c *cluster) cpu() time.Duration {
	var total time.Duration
	for _, p := range c.members {
		total += processCPU(strconv.Itoa(p.cmd.Process.Pid))
	}
	return total
}

// processCPU returns the CPU time (user and system) that process pid
// ("self" for this one) has used so far, 0 if it is unknown.
func processCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: state is the
	// first, utime and stime the 12th and 13th (in USER_HZ ticks).
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	return ticks(f[11]) + ticks(f[12])
}

// machineBusy returns the CPU time all CPUs have spent not idle so far.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy time.Duration
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		busy += ticks(f[i])
	}
	return busy
}

func ticks(v string) time.Duration {
	n, _ := strconv.ParseInt(v, 10, 64)
	return time.Duration(n) * time.Second / userHZ
}

// userHZ is the unit of /proc/PID/stat times (USER_HZ, 100 on Linux).
const userHZ = 100

// stop sends SIGTERM to every member, and SIGKILL to those still running
// after stopTimeout. It reports members that had exited before.
func (c *cluster) stop() error {
	dead := c.alive()
	var wg sync.WaitGroup
	for _, p := range c.members {
		wg.Go(func() {
			p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(stopTimeout):
				p.cmd.Process.Kill()
				<-p.done
			}
		})
	}
	wg.Wait()
	return dead
}

// waitReady waits until every member takes a write and answers a quorum
// read.
func (c *cluster) waitReady(ctx context.Context, hc *http.Client) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	var last error
	for {
		last = nil
		for _, u := range c.urls {
			if err := probe(ctx, hc, u); err != nil {
				last = err
				break
			}
		}
		if last == nil {
			return nil
		}
		if err := c.alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			for _, p := range c.members {
				fmt.Fprintf(&b, "--- %s\n%s", p.log, tail(p.log, 10))
			}
			return fmt.Errorf("not serving after %v: %v\n%s", startTimeout, last, b.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func probe(ctx context.Context, hc *http.Client, base string) error {
	for _, r := range []struct{ method, query, body string }{
		{http.MethodPut, "", "value=ready"},
		{http.MethodGet, "?quorum=true", ""},
	} {
		req, _ := http.NewRequestWithContext(ctx, r.method, base+"/v2/keys/bench/ready"+r.query, strings.NewReader(r.body))
		if r.body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %s", r.method, base, resp.Status)
		}
	}
	return nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "") + "\n"
}

// describeMachine says what the numbers were measured on.
func describeMachine(ctx context.Context, o options, dataDir string) []string {
	osrel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cpu := "?"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseFloat(f[1], 64); err == nil {
					mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
				}
			}
		}
	}
	version := func(argv ...string) string {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
		if err != nil {
			return "?"
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return first
	}
	dev, fstype := mountOf(dataDir)
	return []string{
		fmt.Sprintf("machine: %d CPUs (nproc), %s, %s RAM, Linux %s, %s",
			runtime.NumCPU(), cpu, mem, strings.TrimSpace(string(osrel)), runtime.GOARCH),
		fmt.Sprintf("data dirs: %s, on %s (%s); the load generator runs on the same machine", filepath.Dir(dataDir)+"/", dev, fstype),
		fmt.Sprintf("corebox: `%s` (%s, raft-boltdb, fsync on); etcd: `%s` (%s, `--enable-v2`)",
			o.corebox, version(o.corebox, "--version"), o.etcd, version(o.etcd, "--version")),
		fmt.Sprintf("3 members each on 127.0.0.1, one cluster at a time; each level: %v warm-up (not counted), then %v measured; %d round(s), corebox and etcd alternating, each row the median round by ops/s; bench built with %s",
			o.warmup, o.duration, o.rounds, runtime.Version()),
	}
}

// mountOf returns the device and filesystem type of the mount holding path.
func mountOf(path string) (dev, fstype string) {
	dev, fstype = "?", "?"
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return
	}
	abs, _ := filepath.Abs(path)
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	}
	best := -1
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		mp := f[1]
		if (abs == mp || strings.HasPrefix(abs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > best {
			best, dev, fstype = len(mp), f[0], f[2]
		}
	}
	return
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func ratio(a, b float64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a/b)
}

// report renders both tables and the machine notes as markdown.
func report(o options, env []string, cb, et results) string {
	var b strings.Builder
	b.WriteString("## Registry: corebox vs etcd 3.4, v2 keys API, 3 members\n\n")
	for _, l := range env {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	fmt.Fprintf(&b, "- command: `%s`\n", o.command)
	for _, p := range []op{opPut, opGet} {
		title := "PUT /v2/keys/bench/<client>/<i>, 256-byte form-encoded values, each client round-robin over the 3 members"
		if p == opGet {
			title = "quorum GET (?quorum=true) of keys the client wrote before, each client round-robin over the 3 members"
		}
		fmt.Fprintf(&b, "\n### %s\n\n", title)
		b.WriteString("| clients | corebox ops/s | p50 | p99 | etcd ops/s | p50 | p99 | ratio ops/s (corebox/etcd) | ratio p99 | errors corebox / etcd |\n")
		b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, n := range o.clients {
			c, e := cb[p][n], et[p][n]
			fmt.Fprintf(&b, "| %d | %.0f | %s | %s | %.0f | %s | %s | %s | %s | %d / %d |\n",
				n, c.rate(), ms(c.quantile(0.5)), ms(c.quantile(0.99)),
				e.rate(), ms(e.quantile(0.5)), ms(e.quantile(0.99)),
				ratio(c.rate(), e.rate()), ratio(float64(c.quantile(0.99)), float64(e.quantile(0.99))), c.errs, e.errs)
		}
	}
	b.WriteString("\n### CPU time of the three members per successful operation (user + system, in the measured window)\n\n")
	b.WriteString("| clients | corebox PUT | etcd PUT | corebox GET | etcd GET |\n| ---: | ---: | ---: | ---: | ---: |\n")
	for _, n := range o.clients {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", n,
			us(cb[opPut][n].cpuPerOp()), us(et[opPut][n].cpuPerOp()), us(cb[opGet][n].cpuPerOp()), us(et[opGet][n].cpuPerOp()))
	}
	b.WriteString("\nErrors are failed requests (transport errors and non-2xx answers) over the whole level, warm-up included; ops/s and latencies count only successful requests in the measured window. A ratio p99 above 1 means corebox is slower.\n")
	for _, f := range []struct {
		name string
		r    results
	}{{"corebox", cb}, {"etcd", et}} {
		for _, p := range []op{opPut, opGet} {
			for _, n := range o.clients {
				if m := f.r[p][n]; m.errs > 0 {
					fmt.Fprintf(&b, "- %s %s at %d clients: %d errors %s\n", f.name, opName(p), n, m.errs, m.firstErr)
				}
			}
		}
	}
	return b.String()
}
