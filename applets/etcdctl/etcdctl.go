package etcdctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/corebox/corebox/applets/etcd/client"
	"github.com/corebox/corebox/internal/version"
)

// Exit codes, as etcdctl v2's.
const (
	exitSuccess          = 0
	exitBadArgs          = 1
	exitBadConnection    = 2
	exitNoCommand        = 3
	exitServerError      = 4
	exitClusterUnhealthy = 5
)

// command is one etcdctl command, declared as urfave/cli declares it so
// that its help reads the same.
type command struct {
	name        string
	aliases     []string
	usage       string
	argsUsage   string
	description string
	flags       []flagSpec
	run         func(*invocation, *parsedFlags) int
	subcommands []*command
}

func (c *command) hasName(name string) bool {
	if c.name == name {
		return true
	}
	for _, a := range c.aliases {
		if a == name {
			return true
		}
	}
	return false
}

var ttlFlag = flagSpec{name: "ttl", kind: intFlag, usage: "key time-to-live in seconds", value: "0"}

// globalFlags are etcdctl's options before the command.
var globalFlags = []flagSpec{
	{name: "debug", usage: "output cURL commands which can be used to reproduce the request"},
	{name: "no-sync", usage: "don't synchronize cluster information before sending request"},
	{name: "output, o", kind: stringFlag, value: "simple", usage: "output response in the given format (`simple`, `extended` or `json`)"},
	{name: "discovery-srv, D", kind: stringFlag, usage: "domain name to query for SRV records describing cluster endpoints"},
	{name: "insecure-discovery", usage: "accept insecure SRV records describing cluster endpoints"},
	{name: "peers, C", kind: stringFlag, usage: `DEPRECATED - "--endpoints" should be used instead`},
	{name: "endpoint", kind: stringFlag, usage: `DEPRECATED - "--endpoints" should be used instead`},
	{name: "endpoints", kind: stringFlag, usage: `a comma-delimited list of machine addresses in the cluster (default: "http://127.0.0.1:2379,http://127.0.0.1:4001")`},
	{name: "cert-file", kind: stringFlag, usage: "identify HTTPS client using this SSL certificate file"},
	{name: "key-file", kind: stringFlag, usage: "identify HTTPS client using this SSL key file"},
	{name: "ca-file", kind: stringFlag, usage: "verify certificates of HTTPS-enabled servers using this CA bundle"},
	{name: "username, u", kind: stringFlag, usage: "provide username[:password] and prompt if password is not supplied."},
	{name: "timeout", kind: durationFlag, value: "2s", usage: "connection timeout per request"},
	{name: "total-timeout", kind: durationFlag, value: "5s", usage: "timeout for the command execution (except watch)"},
	helpFlag,
	versionFlag,
}

// commands returns etcdctl's commands in its help's order.
func commands() []*command {
	return []*command{
		{name: "cluster-health", usage: "check the health of the etcd cluster", argsUsage: " ",
			flags: []flagSpec{{name: "forever, f", usage: "forever check the health every 10 second until CTRL+C"}},
			run:   (*invocation).clusterHealth},
		{name: "mk", usage: "make a new key with a given value", argsUsage: "<key> <value>",
			flags: []flagSpec{{name: "in-order", usage: "create in-order key under directory <key>"}, ttlFlag},
			run:   (*invocation).mk},
		{name: "mkdir", usage: "make a new directory", argsUsage: "<key>",
			flags: []flagSpec{ttlFlag},
			run:   func(inv *invocation, f *parsedFlags) int { return inv.mkdir(f, client.PrevNoExist) }},
		{name: "rm", usage: "remove a key or a directory", argsUsage: "<key>",
			flags: []flagSpec{
				{name: "dir", usage: "removes the key if it is an empty directory or a key-value pair"},
				{name: "recursive, r", usage: "removes the key and all child keys(if it is a directory)"},
				{name: "with-value", kind: stringFlag, usage: "previous value"},
				{name: "with-index", kind: intFlag, value: "0", usage: "previous index"},
			},
			run: (*invocation).rm},
		{name: "rmdir", usage: "removes the key if it is an empty directory or a key-value pair", argsUsage: "<key>",
			run: (*invocation).rmdir},
		{name: "get", usage: "retrieve the value of a key", argsUsage: "<key>",
			flags: []flagSpec{
				{name: "sort", usage: "returns result in sorted order"},
				{name: "quorum, q", usage: "require quorum for get request"},
			},
			run: (*invocation).get},
		{name: "ls", usage: "retrieve a directory", argsUsage: "[key]",
			flags: []flagSpec{
				{name: "sort", usage: "returns result in sorted order"},
				{name: "recursive, r", usage: "returns all key names recursively for the given path"},
				{name: "p", usage: "append slash (/) to directories"},
				{name: "quorum, q", usage: "require quorum for get request"},
			},
			run: (*invocation).ls},
		{name: "set", usage: "set the value of a key", argsUsage: "<key> <value>",
			description: "Set sets the value of a key.\n\n   When <value> begins with '-', <value> is interpreted as a flag.\n   Insert '--' for workaround:\n\n   $ set -- <key> <value>",
			flags: []flagSpec{
				ttlFlag,
				{name: "swap-with-value", kind: stringFlag, usage: "previous value"},
				{name: "swap-with-index", kind: intFlag, value: "0", usage: "previous index"},
			},
			run: (*invocation).set},
		{name: "setdir", usage: "create a new directory or update an existing directory TTL", argsUsage: "<key>",
			flags: []flagSpec{ttlFlag},
			run:   func(inv *invocation, f *parsedFlags) int { return inv.mkdir(f, client.PrevIgnore) }},
		{name: "update", usage: "update an existing key with a given value", argsUsage: "<key> <value>",
			flags: []flagSpec{ttlFlag},
			run:   (*invocation).update},
		{name: "updatedir", usage: "update an existing directory", argsUsage: "<key> <value>",
			flags: []flagSpec{ttlFlag},
			run:   func(inv *invocation, f *parsedFlags) int { return inv.mkdir(f, client.PrevExist) }},
		{name: "watch", usage: "watch a key for changes", argsUsage: "<key>",
			flags: []flagSpec{
				{name: "forever, f", usage: "forever watch a key until CTRL+C"},
				{name: "after-index", kind: intFlag, value: "0", usage: "watch after the given index"},
				{name: "recursive, r", usage: "returns all values for key and child keys"},
			},
			run: (*invocation).watch},
		{name: "exec-watch", usage: "watch a key for changes and exec an executable", argsUsage: "<key> <command> [args...]",
			flags: []flagSpec{
				{name: "after-index", kind: intFlag, value: "0", usage: "watch after the given index"},
				{name: "recursive, r", usage: "watch all values for key and child keys"},
			},
			run: (*invocation).execWatch},
		{name: "member", usage: "member add, remove and list subcommands",
			subcommands: []*command{
				{name: "list", usage: "enumerate existing cluster members", argsUsage: " ", run: (*invocation).memberList},
				{name: "add", usage: "add a new member to the etcd cluster", argsUsage: "<name> <peerURL>", run: (*invocation).memberAdd},
				{name: "remove", usage: "remove an existing member from the etcd cluster", argsUsage: "<memberID>", run: (*invocation).memberRemove},
				{name: "update", usage: "update an existing member in the etcd cluster", argsUsage: "<memberID> <peerURLs>", run: (*invocation).memberUpdate},
			}},
	}
}

// helpCommand is urfave/cli's help command, listed last.
var helpCommand = &command{name: "help", aliases: []string{"h"}, usage: "Shows a list of commands or help for one command", argsUsage: "[command]"}

// invocation is one run of etcdctl: its streams, global options and the
// environment it reads.
type invocation struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	global         *parsedFlags
	output         string
	commands       []*command
}

// Main runs `etcdctl [global options] command [command options] [arguments...]`.
func Main(ctx context.Context, args []string) int {
	return Run(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// Run is Main with explicit streams. The environment (ETCDCTL_ENDPOINTS and
// the other ETCDCTL_* variables) is the process's.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	inv := &invocation{
		ctx:      ctx,
		stdin:    stdin,
		stdout:   syncWriter(stdout),
		stderr:   syncWriter(stderr),
		getenv:   os.Getenv,
		commands: commands(),
	}
	return inv.main(args)
}

// syncWriter serializes writes to w, which exec-watch's commands share with
// etcdctl. A file needs no lock (and is handed to commands as it is).
func syncWriter(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok {
		return f
	}
	return &lockedWriter{w: w}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (inv *invocation) main(args []string) int {
	g, err := parseFlags("etcdctl", globalFlags, args, false)
	if err != nil {
		var ne *normalizeError
		if errors.As(err, &ne) {
			fmt.Fprintln(inv.stdout, ne.error)
		} else {
			fmt.Fprintf(inv.stdout, "Incorrect Usage. %s\n\n", err)
		}
		inv.appHelp()
		fmt.Fprintln(inv.stderr, err)
		return exitBadArgs
	}
	inv.global, inv.output = g, g.string("output")
	if g.bool("help") {
		inv.appHelp()
		return exitSuccess
	}
	if g.bool("version") {
		fmt.Fprintf(inv.stdout, "etcdctl version: %s\nAPI version: 2\n", version.Version)
		return exitSuccess
	}
	rest := g.args()
	if len(rest) == 0 {
		inv.appHelp()
		return exitSuccess
	}
	if helpCommand.hasName(rest[0]) {
		return inv.help(rest[1:])
	}
	for _, c := range inv.commands {
		if c.hasName(rest[0]) {
			return inv.runCommand(c, "etcdctl "+c.name, rest[1:])
		}
	}
	return inv.noHelpTopic(rest[0])
}

func (inv *invocation) noHelpTopic(name string) int {
	fmt.Fprintf(inv.stderr, "No help topic for '%s'\n", name)
	return exitNoCommand
}

// help is the help command: the help of a command, or of etcdctl.
func (inv *invocation) help(args []string) int {
	if len(args) == 0 {
		inv.appHelp()
		return exitSuccess
	}
	for _, c := range inv.commands {
		if c.hasName(args[0]) {
			inv.commandHelp(c, "etcdctl "+c.name)
			return exitSuccess
		}
	}
	if helpCommand.hasName(args[0]) {
		inv.commandHelp(helpCommand, "") // urfave/cli leaves its name out
		return exitSuccess
	}
	return inv.noHelpTopic(args[0])
}

// runCommand parses a command's flags and runs it.
func (inv *invocation) runCommand(c *command, helpName string, args []string) int {
	if c.subcommands != nil {
		return inv.runGroup(c, helpName, args)
	}
	specs := append(append([]flagSpec(nil), c.flags...), helpFlag)
	f, err := parseFlags(c.name, specs, args, true)
	if err != nil {
		fmt.Fprintf(inv.stdout, "Incorrect Usage: %s\n\n", err)
		inv.commandHelp(c, helpName)
		fmt.Fprintln(inv.stderr, err)
		return exitBadArgs
	}
	if f.bool("help") {
		inv.commandHelp(c, helpName)
		return exitSuccess
	}
	return c.run(inv, f)
}

// runGroup runs a command made of subcommands (member), which urfave/cli
// runs as an application of its own.
func (inv *invocation) runGroup(c *command, helpName string, args []string) int {
	f, err := parseFlags(c.name, []flagSpec{helpFlag}, args, false)
	if err != nil {
		var ne *normalizeError
		if errors.As(err, &ne) {
			fmt.Fprintf(inv.stdout, "%s\n\n", ne.error)
		} else {
			fmt.Fprintf(inv.stdout, "Incorrect Usage. %s\n\n", err)
		}
		inv.groupHelp(c, helpName)
		fmt.Fprintln(inv.stderr, err)
		return exitBadArgs
	}
	if f.bool("help") {
		inv.groupHelp(c, helpName)
		return exitSuccess
	}
	rest := f.args()
	if len(rest) == 0 {
		inv.groupHelp(c, helpName)
		return exitSuccess
	}
	if helpCommand.hasName(rest[0]) {
		if len(rest) == 1 {
			inv.groupHelp(c, helpName)
			return exitSuccess
		}
		rest = rest[1:]
		for _, sc := range c.subcommands {
			if sc.hasName(rest[0]) {
				inv.commandHelp(sc, helpName+" "+sc.name)
				return exitSuccess
			}
		}
		return inv.noHelpTopic(rest[0])
	}
	for _, sc := range c.subcommands {
		if sc.hasName(rest[0]) {
			return inv.runCommand(sc, helpName+" "+sc.name, rest[1:])
		}
	}
	return inv.noHelpTopic(rest[0])
}

// appHelp prints etcdctl's help as urfave/cli does.
func (inv *invocation) appHelp() {
	var b strings.Builder
	fmt.Fprintf(&b, "NAME:\n   etcdctl - A simple command line client for etcd.\n\n")
	fmt.Fprintf(&b, "USAGE:\n   etcdctl [global options] command [command options] [arguments...]\n\n")
	fmt.Fprintf(&b, "VERSION:\n   %s\n\nCOMMANDS:", version.Version)
	for _, c := range append(inv.commands, helpCommand) {
		fmt.Fprintf(&b, "\n   %s\t%s", strings.Join(append([]string{c.name}, c.aliases...), ", "), c.usage)
	}
	b.WriteString("\n\nGLOBAL OPTIONS:")
	for _, f := range globalFlags {
		fmt.Fprintf(&b, "\n   %s", f.helpLine())
	}
	b.WriteString("\n")
	writeAligned(inv.stdout, b.String())
}

// commandHelp prints a command's help as urfave/cli does.
func (inv *invocation) commandHelp(c *command, helpName string) {
	var b strings.Builder
	fmt.Fprintf(&b, "NAME:\n   %s - %s\n\nUSAGE:\n   %s", helpName, c.usage, helpName)
	if len(c.flags) > 0 {
		b.WriteString(" [command options]")
	}
	args := c.argsUsage
	if args == "" {
		args = "[arguments...]"
	}
	b.WriteString(" " + args)
	if c.description != "" {
		b.WriteString("\n\nDESCRIPTION:\n   " + c.description)
	}
	if len(c.flags) > 0 {
		b.WriteString("\n\nOPTIONS:\n   ")
		for _, f := range c.flags {
			b.WriteString(f.helpLine() + "\n   ")
		}
	}
	b.WriteString("\n")
	writeAligned(inv.stdout, b.String())
}

// groupHelp prints the help of a command made of subcommands.
func (inv *invocation) groupHelp(c *command, helpName string) {
	var b strings.Builder
	fmt.Fprintf(&b, "NAME:\n   %s - %s\n\nUSAGE:\n   %s command [command options] [arguments...]\n\nCOMMANDS:", helpName, c.usage, helpName)
	for _, sc := range c.subcommands {
		fmt.Fprintf(&b, "\n   %s\t%s", sc.name, sc.usage)
	}
	fmt.Fprintf(&b, "\n\nOPTIONS:\n   %s\n   \n", helpFlag.helpLine())
	writeAligned(inv.stdout, b.String())
}

// handleError prints an error as etcdctl does and returns code.
func (inv *invocation) handleError(code int, err error) int {
	fmt.Fprintln(inv.stderr, "Error: ", err)
	var ce *client.ClusterError
	if errors.As(err, &ce) {
		fmt.Fprintln(inv.stderr, ce.Detail())
	}
	return code
}

// totalTimeout is the context of a command's requests (not of watches).
func (inv *invocation) totalTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(inv.ctx, inv.global.duration("total-timeout"))
}

// newClient makes the client of a command; with sync it first replaces the
// endpoints by those the cluster publishes, as etcdctl does unless
// --no-sync. It returns a non-zero exit code when etcdctl would stop.
func (inv *invocation) newClient(sync bool) (*client.Client, int) {
	cfg, err := inv.clientConfig()
	if err != nil {
		fmt.Fprintln(inv.stderr, err.Error())
		return nil, exitBadArgs
	}
	c, err := newOnePassClient(cfg)
	if err != nil {
		fmt.Fprintln(inv.stderr, err.Error())
		return nil, exitBadArgs
	}
	if !sync || inv.global.bool("no-sync") {
		return c, exitSuccess
	}
	ctx, cancel := inv.totalTimeout()
	err = c.Sync(ctx)
	cancel()
	switch {
	case errors.Is(err, client.ErrNoEndpoints):
		fmt.Fprintf(inv.stderr, "etcd cluster has no published client endpoints.\n")
		fmt.Fprintf(inv.stderr, "Try '--no-sync' if you want to access non-published client endpoints(%s).\n", strings.Join(c.Endpoints(), ","))
		return nil, inv.handleError(exitServerError, err)
	case err != nil && isConnectionError(err):
		return nil, inv.handleError(exitBadConnection, err)
	case err != nil:
		// etcdctl goes on with the endpoints it was given.
		return c, exitSuccess
	}
	cfg.Endpoints = c.Endpoints()
	c.Close()
	synced, err := newOnePassClient(cfg)
	if err != nil {
		fmt.Fprintln(inv.stderr, err.Error())
		return nil, exitBadArgs
	}
	return synced, exitSuccess
}

// newOnePassClient makes a client that tries each endpoint once per call,
// as etcd's client does.
func newOnePassClient(cfg client.Config) (*client.Client, error) {
	cfg.Retries = len(cfg.Endpoints) - 1
	if cfg.Retries == 0 {
		cfg.Retries = -1
	}
	return client.New(cfg)
}

// clientConfig gathers the endpoints, TLS files and timeouts from the
// global flags and the ETCDCTL_* environment, in etcdctl's order.
func (inv *invocation) clientConfig() (client.Config, error) {
	var cfg client.Config
	g := inv.global
	if g.string("discovery-srv") != "" || inv.getenv("ETCDCTL_DISCOVERY_SRV") != "" {
		return cfg, errors.New("etcdctl: --discovery-srv is not supported by corebox; give --endpoints")
	}
	if g.string("username") != "" || inv.getenv("ETCDCTL_USERNAME") != "" {
		return cfg, errors.New("etcdctl: --username is not supported by corebox")
	}
	peers := ""
	for _, v := range []string{g.string("endpoints"), inv.getenv("ETCDCTL_ENDPOINTS"), g.string("endpoint"), inv.getenv("ETCDCTL_ENDPOINT"), g.string("peers"), inv.getenv("ETCDCTL_PEERS"), "http://127.0.0.1:2379,http://127.0.0.1:4001"} {
		if v != "" {
			peers = v
			break
		}
	}
	for _, ep := range strings.Split(peers, ",") {
		u, err := url.Parse(ep)
		if err != nil {
			return cfg, err
		}
		if u.Scheme == "" {
			u.Scheme = "http"
		}
		cfg.Endpoints = append(cfg.Endpoints, u.String())
	}
	tlsConfig, err := inv.tlsConfig()
	if err != nil {
		return cfg, err
	}
	cfg.TLS = tlsConfig
	cfg.HeaderTimeout = g.duration("timeout")
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = -1
	}
	return cfg, nil
}

// tlsConfig reads --ca-file, --cert-file and --key-file (or ETCDCTL_CA_FILE,
// ETCDCTL_CERT_FILE, ETCDCTL_KEY_FILE); nil when none is given.
func (inv *invocation) tlsConfig() (*tls.Config, error) {
	file := func(flagName, env string) string {
		if v := inv.global.string(flagName); v != "" {
			return v
		}
		return inv.getenv(env)
	}
	caFile, certFile, keyFile := file("ca-file", "ETCDCTL_CA_FILE"), file("cert-file", "ETCDCTL_CERT_FILE"), file("key-file", "ETCDCTL_KEY_FILE")
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return nil, fmt.Errorf("KeyFile and CertFile must both be present[key: %v, cert: %v]", keyFile, certFile)
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcdctl: no certificate in CA file %s", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// isConnectionError reports whether err means the cluster could not be
// reached, as etcdctl judges it.
func isConnectionError(err error) bool {
	switch t := err.(type) {
	case *client.ClusterError:
		for _, e := range t.Errors {
			if !isConnectionError(e) {
				return false
			}
		}
		return true
	case *net.OpError:
		if t.Op == "dial" || t.Op == "read" {
			return true
		}
		return isConnectionError(t.Err)
	case syscall.Errno:
		return t == syscall.ECONNREFUSED
	case net.Error:
		return t.Timeout()
	}
	return false
}

// argOrStdin returns args[i], or all of stdin when there is no such
// argument; "" is no value.
func (inv *invocation) argOrStdin(args []string, i int) (string, bool) {
	if i < len(args) {
		return args[i], true
	}
	b, err := io.ReadAll(inv.stdin)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}

// ttl is a --ttl flag's duration.
func ttl(f *parsedFlags) time.Duration {
	return time.Duration(f.int("ttl")) * time.Second
}
