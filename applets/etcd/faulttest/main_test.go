package faulttest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// corebox is the binary under test, built once by TestMain (or given by
// $COREBOX_ETCD_BIN); empty in -short mode, where the tests skip.
var corebox string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if testing.Short() {
		return m.Run()
	}
	if bin := os.Getenv("COREBOX_ETCD_BIN"); bin != "" {
		corebox = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "corebox-faulttest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	corebox, err = Build(ctx, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "faulttest:", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Printf("faulttest: built %s in %v\n", corebox, time.Since(start).Round(time.Millisecond))
	}
	return m.Run()
}

// newCluster starts a cluster for t, kills it when t ends and then, if t
// failed, logs the end of each member's log.
func newCluster(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if corebox == "" {
		t.Skip("cluster tests run real processes: skipped in -short mode")
	}
	opts.Bin = corebox
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c, err := NewCluster(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		for _, m := range c.Members {
			for _, crash := range m.Crashes() {
				t.Errorf("BUG: %s %s", m.Name, crash)
			}
		}
		if t.Failed() {
			for _, m := range c.Members {
				t.Logf("--- the end of %s's log (%s):\n%s", m.Name, m.LogFile, tail(m.Log(), 30))
			}
		}
	})
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
