package rkt

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestPauseBinary(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the holder is x86-64 code")
	}
	f, err := elf.NewFile(bytes.NewReader(pauseELF()))
	if err != nil {
		t.Fatalf("not an ELF file: %v", err)
	}
	if f.Type != elf.ET_EXEC || f.Machine != elf.EM_X86_64 || len(f.Progs) != 1 {
		t.Errorf("ELF header: %v %v %d segments", f.Type, f.Machine, len(f.Progs))
	}
	p := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(p, pauseELF(), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("pause exited by itself: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	// SIGCHLD is ignored: check the disposition the kernel reports.
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
	if !bytes.Contains(status, []byte("SigIgn:\t0000000000010000")) {
		t.Errorf("SIGCHLD not ignored:\n%s", status)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := <-done; err == nil || err.(*exec.ExitError).Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("pause after SIGTERM: %v", err)
	}
}
