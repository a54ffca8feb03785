// Command runc measures how long it takes to run a container whose app is
// /bin/true (busybox-static), with corebox's runc applet and with Debian's
// runc 1.1.5, on the same bundle (the configuration `runc spec` writes,
// without a terminal: pid, network, ipc, uts and mount namespaces, the
// default mounts, masked and read-only paths, a cgroup, and — from
// corebox's spec — the default seccomp profile, which both runtimes then
// load). The floor is a bare fork+exec of the same /bin/true. Runs
// alternate between the runtimes so that background load hits both alike;
// it prints a markdown table of medians (and p90) and their ratios.
//
//	CGO_ENABLED=0 go build -trimpath -o /tmp/corebox .
//	go run ./bench/runc -corebox /tmp/corebox -runc /usr/bin/runc -n 50
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

func main() {
	corebox := flag.String("corebox", "/tmp/corebox", "the corebox `binary`")
	runc := flag.String("runc", "/usr/bin/runc", "Debian's runc `binary`")
	busybox := flag.String("busybox", "/bin/busybox", "a static busybox for the bundle's root")
	n := flag.Int("n", 50, "measured runs per runtime")
	noSeccomp := flag.Bool("no-seccomp", false, "drop the seccomp profile from the bundle")
	out := flag.String("out", "", "also write the table to this `file`")
	flag.Parse()
	if err := run(*corebox, *runc, *busybox, *n, *noSeccomp, *out); err != nil {
		fmt.Fprintf(os.Stderr, "bench/runc: %v\n", err)
		os.Exit(1)
	}
}

func run(corebox, runc, busybox string, n int, noSeccomp bool, out string) error {
	dir, err := os.MkdirTemp("", "bench-runc-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bundle := filepath.Join(dir, "bundle")
	if err := makeBundle(bundle, corebox, busybox, noSeccomp); err != nil {
		return err
	}
	// corebox through a "runc" symlink, as OCI tools call it.
	link := filepath.Join(dir, "bin", "runc")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(corebox, link); err != nil {
		return err
	}
	trueBin := filepath.Join(bundle, "rootfs", "bin", "true")
	cases := []struct {
		name string
		cmd  func(i int) *exec.Cmd
	}{
		{"corebox runc run", func(i int) *exec.Cmd {
			return exec.Command(link, "--root", filepath.Join(dir, "corebox-state"), "run", "--bundle", bundle, fmt.Sprintf("b%d", i))
		}},
		{"Debian runc run", func(i int) *exec.Cmd {
			return exec.Command(runc, "--root", filepath.Join(dir, "runc-state"), "run", "--bundle", bundle, fmt.Sprintf("b%d", i))
		}},
		{"fork+exec /bin/true (floor)", func(i int) *exec.Cmd { return exec.Command(trueBin) }},
	}
	times := make([][]time.Duration, len(cases))
	for i := -3; i < n; i++ { // three warm-up rounds
		for j, c := range cases {
			cmd := c.cmd(i + 3)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			d := time.Since(start)
			if err != nil {
				return fmt.Errorf("%s: %v: %s", c.name, err, stderr.String())
			}
			if i >= 0 {
				times[j] = append(times[j], d)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| %d runs each, alternating | median | p90 | vs Debian runc | vs floor |\n|---|---|---|---|---|\n", n)
	med := func(ts []time.Duration) time.Duration { return pct(ts, 0.5) }
	for j, c := range cases {
		m := med(times[j])
		fmt.Fprintf(&b, "| %s | %s | %s | %.2f× | %.1f× |\n", c.name, ms(m), ms(pct(times[j], 0.9)),
			float64(m)/float64(med(times[1])), float64(m)/float64(med(times[2])))
	}
	fmt.Print(b.String())
	if out != "" {
		return os.WriteFile(out, []byte(b.String()), 0o644)
	}
	return nil
}

func pct(ts []time.Duration, p float64) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// makeBundle writes a busybox root with /bin/true and the configuration
// `corebox runc spec` writes, made non-interactive and running /bin/true.
func makeBundle(bundle, corebox, busybox string, noSeccomp bool) error {
	root := filepath.Join(bundle, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(busybox, filepath.Join(root, "bin", "busybox")); err != nil {
		return err
	}
	if err := os.Symlink("busybox", filepath.Join(root, "bin", "true")); err != nil {
		return err
	}
	if out, err := exec.Command(corebox, "runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return fmt.Errorf("corebox runc spec: %v: %s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/true"}
	if noSeccomp {
		delete(spec["linux"].(map[string]any), "seccomp")
	}
	b, _ = json.MarshalIndent(spec, "", "\t")
	return os.WriteFile(path, b, 0o644)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
