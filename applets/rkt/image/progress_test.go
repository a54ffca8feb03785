package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRenderBar(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		want        string
	}{
		{0, 100 << 20, "x [>         ] 0 B/100.0 MiB 0 B/s"},
		{50 << 20, 100 << 20, "x [=====>    ] 50.0 MiB/100.0 MiB 25.0 MiB/s"},
		{100 << 20, 100 << 20, "x [==========] 100.0 MiB/100.0 MiB 50.0 MiB/s"},
		{200, 100, "x [==========] 200 B/100 B 100 B/s"},
	} {
		if got := renderBar("x", c.done, c.total, 2*time.Second, 10); got != c.want {
			t.Errorf("renderBar(%d, %d) = %q, want %q", c.done, c.total, got, c.want)
		}
	}
}

// openPTY returns a pseudo-terminal's master and slave.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestProgressOnlyOnTerminals(t *testing.T) {
	master, slave := openPTY(t)
	if !isTerminal(slave) {
		t.Fatal("a pty is not a terminal")
	}
	var buf bytes.Buffer
	if isTerminal(&buf) || isTerminal(os.NewFile(^uintptr(0), "bad")) {
		t.Fatal("a buffer is a terminal")
	}
	dir := writeLayout(t, ociImage(t, layer(t, file("big", strings.Repeat("x", 1<<20)))), "v1")

	got := make(chan string, 1)
	go func() {
		var out []byte
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			out = append(out, b[:n]...)
			if err != nil || bytes.Contains(out, []byte("\n")) {
				break
			}
		}
		got <- string(out)
	}()
	if _, err := openStore(t).Fetch(context.Background(), "oci-layout:"+dir, FetchOptions{Progress: slave}); err != nil {
		t.Fatal(err)
	}
	select {
	case out := <-got:
		if !strings.Contains(out, "oci-layout:"+dir+" [==============================]") {
			t.Errorf("terminal got %q", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no progress on the terminal")
	}
	if _, err := openStore(t).Fetch(context.Background(), "oci-layout:"+dir, FetchOptions{Progress: &buf}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", buf.String())
	}
}
