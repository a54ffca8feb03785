package seccomp

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCompileDefault(t *testing.T) {
	for _, caps := range [][]string{nil, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE"}} {
		p, err := Compile(Default(caps))
		if err != nil {
			t.Fatalf("caps %v: %v", caps, err)
		}
		if n := len(p.Instructions); n < 100 || n > 4096 {
			t.Errorf("caps %v: %d instructions", caps, n)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	one := uint(1)
	cases := []struct {
		name string
		s    specs.LinuxSeccomp
		want string
	}{
		{"notify", specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "SCMP_ACT_NOTIFY"},
		{"unknown default", specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}, "defaultAction"},
		{"missing default", specs.LinuxSeccomp{}, "defaultAction: missing"},
		{"listener", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x"}, "listenerPath"},
		{"flag", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"BOGUS"}}, "flags"},
		{"arch", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_BOGUS"}}, "architectures"},
		{"foreign arch only", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchS390}}, "native"},
		{"rule action", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "x"}}}, "syscalls[0].action"},
		{"empty names", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Action: specs.ActErrno}}}, "syscalls[0].names"},
		{"errno with allow", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, ErrnoRet: &one}}}, "errnoRet"},
		{"arg index", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, "index"},
		{"masked eq", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 3, ValueTwo: 1, Op: specs.OpMaskedEqual}}}}}, "MASKED_EQ"},
		{"arg op", specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_BOGUS"}}}}}, "operator"},
	}
	for _, tc := range cases {
		if _, err := Compile(&tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}

func TestUnknownSyscallNamesSkipped(t *testing.T) {
	p, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"no_such_call", "read"}, Action: specs.ActErrno}}})
	if err != nil || p == nil {
		t.Fatalf("%v", err)
	}
}

// loadOnThread installs p on a fresh locked thread, runs f there, and
// lets the thread die with its filter.
func loadOnThread(t *testing.T, p *Program, f func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			done <- err
			return
		}
		if err := p.Load(); err != nil {
			done <- err
			return
		}
		f()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLoadDeniesWithErrno(t *testing.T) {
	enoent := uint(unix.ENOENT)
	p, err := Compile(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno},
			{Names: []string{"fchmodat"}, Action: specs.ActErrno, ErrnoRet: &enoent},
			// Only getpriority with which=42 is refused.
			{Names: []string{"getpriority"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 42, Op: specs.OpEqualTo}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var mkdirErr, chmodErr, prioErr, prioOK error
	loadOnThread(t, p, func() {
		mkdirErr = unix.Mkdirat(unix.AT_FDCWD, dir+"/x", 0o755)
		chmodErr = unix.Fchmodat(unix.AT_FDCWD, dir, 0o755, 0)
		_, prioErr = unix.Getpriority(42, 0)
		_, prioOK = unix.Getpriority(unix.PRIO_PROCESS, 0)
	})
	if mkdirErr != unix.EPERM {
		t.Errorf("mkdirat: %v, want EPERM", mkdirErr)
	}
	if chmodErr != unix.ENOENT {
		t.Errorf("fchmodat: %v, want ENOENT (errnoRet)", chmodErr)
	}
	if prioErr != unix.EPERM || prioOK != nil {
		t.Errorf("getpriority: matching arg %v (want EPERM), other %v (want nil)", prioErr, prioOK)
	}
	if _, err := os.Stat(dir + "/x"); err == nil {
		t.Error("mkdirat went through")
	}
	// Other threads are not filtered.
	if err := unix.Mkdirat(unix.AT_FDCWD, dir+"/y", 0o755); err != nil {
		t.Errorf("mkdirat on an unfiltered thread: %v", err)
	}
}

func TestDefaultProfileDeniesNamespaces(t *testing.T) {
	p, err := Compile(Default(nil))
	if err != nil {
		t.Fatal(err)
	}
	var unshareErr, getpidErr error
	loadOnThread(t, p, func() {
		unshareErr = unix.Unshare(unix.CLONE_NEWUTS)
		_, _, e := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0)
		if e != 0 {
			getpidErr = e
		}
	})
	if unshareErr != unix.EPERM {
		t.Errorf("unshare under the default profile: %v, want EPERM", unshareErr)
	}
	if getpidErr != nil {
		t.Errorf("getpid under the default profile: %v", getpidErr)
	}
}

func FuzzCompile(f *testing.F) {
	def, _ := json.Marshal(Default([]string{"CAP_SYS_ADMIN"}))
	f.Add(def)
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":5}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["clone"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}`))
	f.Add([]byte(`{"defaultAction":"SCMP_ACT_KILL_PROCESS","flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"},{"index":1,"value":1,"op":"SCMP_CMP_GT"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s specs.LinuxSeccomp
		if json.Unmarshal(b, &s) != nil {
			return
		}
		p, err := Compile(&s)
		if err != nil {
			return
		}
		if p == nil || len(p.Instructions) == 0 || len(p.Instructions) > 4096 {
			t.Fatalf("compiled %d instructions", len(p.Instructions))
		}
		// The last instruction returns the default action.
		last := p.Instructions[len(p.Instructions)-1]
		if last.Code != 0x06 { // BPF_RET|BPF_K
			t.Fatalf("last instruction %+v is not a return", last)
		}
	})
}
