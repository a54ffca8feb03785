package network

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// needRoot skips t unless it runs as root.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, bridges, veth pairs and nftables rules")
	}
}

// newNetns creates a network namespace bind-mounted at a file in a fresh
// temporary directory and removes it when t ends.
func newNetns(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := onLockedThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s on %s: %w", self, path, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("creating network namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(path, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting network namespace %s: %v", path, err)
		}
	})
	return path
}

// onLockedThread runs f on a locked OS thread and puts the thread back into
// the network namespace it started in; a thread that cannot be put back
// stays locked, so the runtime retires it.
func onLockedThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		err = f()
		if rerr := netns.Set(orig); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("returning to the original namespace: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// inNetns runs f on an OS thread that has joined the namespace at path.
// Sockets f creates stay in that namespace after it returns.
func inNetns(path string, f func() error) error {
	return onLockedThread(func() error {
		ns, err := netns.GetFromPath(path)
		if err != nil {
			return err
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("joining %s: %w", path, err)
		}
		return f()
	})
}

// runInNetns runs a command inside the namespace at path (its child is
// forked from a thread in that namespace) and returns its combined output.
func runInNetns(path string, name string, args ...string) (string, error) {
	var out []byte
	err := inNetns(path, func() error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		return err
	})
	return string(out), err
}

func TestNetnsHelper(t *testing.T) {
	needRoot(t)
	p := newNetns(t, "probe")
	out, err := runInNetns(p, "/bin/busybox", "ip", "-o", "link")
	if err != nil {
		t.Fatalf("ip link in the new namespace: %v\n%s", err, out)
	}
	if strings.Contains(out, "eth0") || !strings.Contains(out, "lo") {
		t.Fatalf("new namespace has unexpected links:\n%s", out)
	}
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}
