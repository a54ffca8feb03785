package container_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/corebox/corebox/applets/rkt/container"
	"github.com/corebox/corebox/applets/rkt/container/containertest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostnameSysctlRlimits(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sh", "-c", "hostname; cat /proc/sys/net/ipv4/ip_forward; ulimit -n; ulimit -Hn")
	spec.Hostname = "boxname"
	spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
	spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 333, Hard: 444}}
	code, out, errOut, err := run(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out != "boxname\n1\n333\n444\n" {
		t.Errorf("exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestUserAndGroups(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sh", "-c", "id -u; id -g; id -G; umask")
	umask := uint32(0o027)
	spec.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5, 1002}, Umask: &umask}
	code, out, errOut, err := run(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || out != "1000\n1001\n1001 5 1002\n0027\n" {
		t.Errorf("exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestUserNamespaceMappings(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u")
	spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	bundle := containertest.Bundle(t, spec)
	// The mapped root must be able to reach the bundle.
	for d := bundle; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	code, out, errOut, err := runBundle(t, bundle, spec)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 || strings.Join(strings.Fields(out), " ") != "0 100000 65536 0 100000 65536 0" {
		t.Errorf("exit %d, out %q, err %q", code, out, errOut)
	}
}

func TestSignalReachesProcess(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sh", "-c", `trap "exit 42" TERM; echo ready; while true; do sleep 1; done`)
	bundle := containertest.Bundle(t, spec)
	out := tempFile(t)
	c, err := container.Create(context.Background(), container.Options{ID: "sig", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t), Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return readAll(t, out) == "ready\n" })
	if err := c.Signal(syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Wait(context.Background()); err != nil || code != 42 {
		t.Errorf("exit after SIGTERM: %d, %v", code, err)
	}
}

func TestExec(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sleep", "100")
	spec.Hostname = "execbox"
	bundle := containertest.Bundle(t, spec)
	c, err := container.Create(context.Background(), container.Options{ID: "exec", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	out := tempFile(t)
	p := *spec.Process
	p.Args = []string{"sh", "-c", "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; exit 5"}
	proc, err := c.Exec(context.Background(), container.ExecOptions{Process: &p, Stdout: out, Stderr: out})
	if err != nil {
		t.Fatal(err)
	}
	code, err := proc.Wait(context.Background())
	if err != nil || code != 5 {
		t.Errorf("exec exit: %d, %v", code, err)
	}
	lines := strings.Split(readAll(t, out), "\n")
	if len(lines) < 3 || lines[0] != "execbox" || lines[1] == "1" || lines[2] != "sleep 100 " {
		t.Errorf("exec output %q: want the container's hostname, a pid other than 1, and its init's command", lines)
	}
	pids, err := c.Pids()
	if err != nil || len(pids) != 1 {
		t.Errorf("cgroup pids after exec exited: %v, %v", pids, err)
	}
	p.Args = []string{"no-such-command"}
	if _, err := c.Exec(context.Background(), container.ExecOptions{Process: &p}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("exec of a missing command: %v", err)
	}
}

func TestTerminalOverConsoleSocket(t *testing.T) {
	containertest.RequireRoot(t)
	spec := containertest.Spec("sh", "-c", "tty; echo hi")
	spec.Process.Terminal = true
	bundle := containertest.Bundle(t, spec)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := listenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan *os.File, 1)
	go func() {
		m, err := container.ReceiveConsole(l)
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	c, err := container.Create(context.Background(), container.Options{ID: "tty", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t), ConsoleSocket: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Delete(true)
	master := <-got
	if master == nil {
		t.Fatal("no console received")
	}
	defer master.Close()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	b := make([]byte, 1024)
	for {
		n, err := master.Read(b)
		buf.Write(b[:n])
		if err != nil {
			break // EIO once the container's side is closed
		}
	}
	if code, err := c.Wait(context.Background()); err != nil || code != 0 {
		t.Errorf("exit %d, %v", code, err)
	}
	if got := strings.ReplaceAll(buf.String(), "\r", ""); got != "/dev/pts/0\nhi\n" {
		t.Errorf("terminal output %q", got)
	}
}

func TestBadConfigs(t *testing.T) {
	containertest.RequireRoot(t)
	if _, err := container.ParseSpec([]byte(`{"ociVersion":"1.0.2","bogus":1}`)); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown field: %v", err)
	}
	cases := []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"missing root", func(s *specs.Spec) { s.Root = nil }, "root.path"},
		{"root does not exist", func(s *specs.Spec) { s.Root.Path = "nope" }, "root.path"},
		{"relative cwd", func(s *specs.Spec) { s.Process.Cwd = "tmp" }, "process.cwd"},
		{"cwd does not exist", func(s *specs.Spec) { s.Process.Cwd = "/nope" }, "process.cwd"},
		{"no args", func(s *specs.Spec) { s.Process.Args = nil }, "process.args"},
		{"missing executable", func(s *specs.Spec) { s.Process.Args = []string{"/bin/nope"} }, "process.args[0]"},
		{"unknown namespace", func(s *specs.Spec) { s.Linux.Namespaces[0].Type = "bogus" }, "linux.namespaces[0].type"},
		{"unknown capability", func(s *specs.Spec) { s.Process.Capabilities.Bounding = []string{"CAP_BOGUS"} }, "CAP_BOGUS"},
		{"host sysctl", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"} }, "linux.sysctl"},
		{"unknown mount option", func(s *specs.Spec) { s.Mounts[0].Options = []string{"idmap"} }, "mounts[0].options"},
		{"bad seccomp action", func(s *specs.Spec) { s.Linux.Seccomp.DefaultAction = "SCMP_ACT_BOGUS" }, "linux.seccomp.defaultAction"},
		{"mappings without userns", func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}}
		}, "linux.uidMappings"},
		{"rlimit soft above hard", func(s *specs.Spec) { s.Process.Rlimits[0].Soft = 2000 }, "process.rlimits[0]"},
	}
	bundle := containertest.Bundle(t, nil)
	root := stateRoot(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := containertest.Spec("true")
			tc.edit(spec)
			c, err := container.Create(context.Background(), container.Options{ID: "bad", Bundle: bundle, Spec: spec, StateRoot: root})
			if err == nil {
				err = c.Start()
				c.Delete(true)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want one naming %s", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(root, "bad")); !os.IsNotExist(err) {
				t.Errorf("state left behind: %v", err)
			}
		})
	}
}
