package runc

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/corebox/corebox/applets/rkt/container/containertest"
)

// TestMain lets the test binary be the engine's stub and, called as
// "runc" through a symlink, the runc applet itself.
func TestMain(m *testing.M) {
	containertest.RunStubIfAsked()
	if filepath.Base(os.Args[0]) == "runc" {
		os.Exit(Main(context.Background(), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runcBinary is a "runc" symlink to the test binary.
func runcBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "runc")
	if err := os.Symlink(self, p); err != nil {
		t.Fatal(err)
	}
	return p
}
