package etcd

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/corebox/corebox/applets/etcd/server"
	"github.com/corebox/corebox/internal/version"
)

// Main runs one registry member until SIGINT or SIGTERM.
func Main(ctx context.Context, args []string) int {
	if os.Getenv("GOGC") == "" {
		// The member's garbage is short-lived request data: collecting a
		// third as often costs a few MiB and saves about 5% of the CPU of
		// a write (bench/registry, 64 clients).
		debug.SetGCPercent(gcPercent)
	}
	return Run(ctx, args, os.Environ(), os.Stdout, os.Stderr)
}

// gcPercent is the member process's GOGC unless the environment sets one.
const gcPercent = 300

// Run is Main with an explicit environment and output.
func Run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, environ, stderr)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "etcd: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.Version = version.Version
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, err := server.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "etcd: %v\n", err)
		return 1
	}
	cfg.Logger.Info("serving", "name", cfg.Name, "member", s.ID(), "client_urls", strings.Join(cfg.ListenClientURLs, ","))
	<-ctx.Done()
	if err := s.Close(); err != nil {
		fmt.Fprintf(stderr, "etcd: stopping: %v\n", err)
		return 1
	}
	return 0
}

// parse reads etcd's flags; each also comes from ETCD_<NAME> (upper case,
// dashes as underscores) when not given on the command line, as etcd does.
func parse(args, environ []string, stderr io.Writer) (server.Config, error) {
	var cfg server.Config
	fs := flag.NewFlagSet("etcd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var listenClient, advertiseClient, listenPeer, advertisePeer string
	var snapshotCount uint64
	var heartbeatMS, electionMS uint
	var maxRequestBytes int64
	var enableV2 bool
	fs.StringVar(&cfg.Name, "name", "default", "human-readable name for this member")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "path to the data directory (default NAME.etcd)")
	fs.StringVar(&listenClient, "listen-client-urls", "http://localhost:2379", "URLs to listen on for client traffic")
	fs.StringVar(&advertiseClient, "advertise-client-urls", "http://localhost:2379", "client URLs to advertise to the rest of the cluster")
	fs.StringVar(&listenPeer, "listen-peer-urls", "http://localhost:2380", "URL to listen on for peer traffic")
	fs.StringVar(&advertisePeer, "initial-advertise-peer-urls", "http://localhost:2380", "peer URLs to advertise to the rest of the cluster")
	fs.StringVar(&cfg.InitialCluster, "initial-cluster", "", "initial cluster configuration, name=peerURL,… (default NAME=initial-advertise-peer-urls, or what --discovery finds)")
	fs.StringVar(&cfg.InitialClusterState, "initial-cluster-state", "new", "new or existing")
	fs.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", "etcd-cluster", "initial cluster token")
	fs.StringVar(&cfg.Discovery, "discovery", "", "discovery URL used to bootstrap the cluster")
	fs.StringVar(&cfg.ClientTLS.CertFile, "cert-file", "", "client server TLS certificate file")
	fs.StringVar(&cfg.ClientTLS.KeyFile, "key-file", "", "client server TLS key file")
	fs.StringVar(&cfg.ClientTLS.TrustedCAFile, "trusted-ca-file", "", "client server TLS trusted CA file")
	fs.BoolVar(&cfg.ClientTLS.ClientCertAuth, "client-cert-auth", false, "require client certificates signed by the trusted CA")
	fs.StringVar(&cfg.PeerTLS.CertFile, "peer-cert-file", "", "peer TLS certificate file")
	fs.StringVar(&cfg.PeerTLS.KeyFile, "peer-key-file", "", "peer TLS key file")
	fs.StringVar(&cfg.PeerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "peer TLS trusted CA file")
	fs.BoolVar(&cfg.PeerTLS.ClientCertAuth, "peer-client-cert-auth", false, "require peer certificates signed by the peer CA")
	fs.Uint64Var(&snapshotCount, "snapshot-count", server.DefaultSnapshotCount, "applied entries that trigger a snapshot")
	fs.UintVar(&heartbeatMS, "heartbeat-interval", 100, "heartbeat interval in ms")
	fs.UintVar(&electionMS, "election-timeout", 1000, "election timeout in ms")
	fs.Int64Var(&maxRequestBytes, "max-request-bytes", server.DefaultMaxRequestBytes, "maximum client request size in bytes")
	fs.BoolVar(&cfg.EnablePprof, "enable-pprof", false, "serve runtime profiling data over HTTP at /debug/pprof/ on the client URLs")
	fs.BoolVar(&enableV2, "enable-v2", true, "accepted for compatibility: the v2 API is what corebox's registry serves")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "ETCD_") {
			env[k] = v
		}
	}
	var errs []string
	fs.VisitAll(func(f *flag.Flag) {
		key := "ETCD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := env[key]
		if !ok {
			return
		}
		delete(env, key)
		if given[f.Name] {
			errs = append(errs, fmt.Sprintf("conflicting environment variable %q is shadowed by corresponding command-line flag (either unset environment variable or disable flag)", key))
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: %v", key, v, err))
		}
	})
	for k, v := range env {
		fmt.Fprintf(stderr, "etcd: [WARNING] unrecognized environment variable %s=%s\n", k, v)
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	cfg.ListenClientURLs = split(listenClient)
	cfg.AdvertiseClientURLs = split(advertiseClient)
	cfg.ListenPeerURLs = split(listenPeer)
	cfg.InitialAdvertisePeerURLs = split(advertisePeer)
	cfg.SnapshotCount = snapshotCount
	cfg.HeartbeatInterval = time.Duration(heartbeatMS) * time.Millisecond
	cfg.ElectionTimeout = time.Duration(electionMS) * time.Millisecond
	cfg.MaxRequestBytes = maxRequestBytes
	return cfg, nil
}
