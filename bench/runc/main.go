// Command runc measures how long it takes to run a container whose app is
// /bin/true (busybox-static), with corebox's `rkt run --net=host` (an image
// of the same root, fetched once into a store), corebox's runc applet and
// Debian's runc 1.1.5, on the same bundle (the configuration `runc spec` writes,
// without a terminal: pid, network, ipc, uts and mount namespaces, the
// default mounts, masked and read-only paths, a cgroup, and — from
// corebox's spec — the default seccomp profile, which both runtimes then
// load). The floor is a bare fork+exec of the same /bin/true. Runs
// alternate between the runtimes so that background load hits both alike;
// it prints a markdown table of medians (and p90) and their ratios, then
// the memory a running pod costs beyond its app: the resident memory of
// rkt and of the pod's namespace holder while the app sleeps.
//
//	CGO_ENABLED=0 go build -trimpath -o /tmp/corebox .
//	go run ./bench/runc -corebox /tmp/corebox -runc /usr/bin/runc -n 50
package main

import (
	"archive/tar"
	"encoding/json"
	"io/fs"
	"syscall"

	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
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
	rktDir := filepath.Join(dir, "rkt")
	imageID, err := fetchImage(corebox, rktDir, filepath.Join(bundle, "rootfs"), filepath.Join(dir, "layout"))
	if err != nil {
		return err
	}
	defer exec.Command(corebox, "rkt", "--dir", rktDir, "gc", "--grace-period=0s").Run()
	rkt := func(args ...string) *exec.Cmd {
		return exec.Command(corebox, append([]string{"rkt", "--dir", rktDir, "--insecure-options=image"}, args...)...)
	}
	cases := []struct {
		name string
		cmd  func(i int) *exec.Cmd
	}{
		{"corebox rkt run --net=host", func(i int) *exec.Cmd {
			return rkt("run", "--net=host", imageID, "--exec=/bin/true")
		}},
		{"corebox runc run", func(i int) *exec.Cmd {
			return exec.Command(link, "--root", filepath.Join(dir, "corebox-state"), "run", "--bundle", bundle, fmt.Sprintf("b%d", i))
		}},
		{"Debian runc run", func(i int) *exec.Cmd {
			return exec.Command(runc, "--root", filepath.Join(dir, "runc-state"), "run", "--bundle", bundle, fmt.Sprintf("b%d", i))
		}},
		{"fork+exec /bin/true (floor)", func(i int) *exec.Cmd { return exec.Command(trueBin) }},
	}
	const runcCase, floorCase = 2, 3
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
			float64(m)/float64(med(times[runcCase])), float64(m)/float64(med(times[floorCase])))
	}
	if err := exec.Command(corebox, "rkt", "--dir", rktDir, "gc", "--grace-period=0s").Run(); err != nil {
		return fmt.Errorf("rkt gc: %v", err)
	}
	kib, err := podOverhead(rkt("run", "--net=host", imageID, "--exec=/bin/sleep", "--", "30"))
	if err != nil {
		return err
	}
	fmt.Fprintf(&b, "\nMemory of a running pod beyond its app (resident, rkt + the namespace holder): %d KiB\n", kib)
	fmt.Print(b.String())
	if out != "" {
		return os.WriteFile(out, []byte(b.String()), 0o644)
	}
	return nil
}

// fetchImage makes an OCI layout of root (one layer) and fetches it into
// the rkt store at dir; it returns the image ID.
func fetchImage(corebox, dir, root, layoutDir string) (string, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarDir(pw, root)) }()
		return pr, nil
	})
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return "", err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd, cf.Config.Env = []string{"/bin/true"}, []string{"PATH=/bin"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", err
	}
	p, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return "", err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "bench"})); err != nil {
		return "", err
	}
	out, err := exec.Command(corebox, "rkt", "--dir", dir, "--insecure-options=image", "fetch", "oci-layout:"+layoutDir+":bench").Output()
	if err != nil {
		return "", fmt.Errorf("rkt fetch: %v", err)
	}
	fields := strings.Fields(string(out))
	if len(fields) == 0 {
		return "", fmt.Errorf("rkt fetch printed no image id")
	}
	return fields[len(fields)-1], nil
}

// tarDir writes the tree at root as a tar stream.
func tarDir(w io.Writer, root string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if d.Type()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name, _ = filepath.Rel(root, p)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// podOverhead starts cmd (a pod whose app sleeps), waits until the app
// runs, and returns the resident memory of every process of the pod but
// the app: rkt itself and the namespace holder.
func podOverhead(cmd *exec.Cmd) (int, error) {
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		tree := descendants(cmd.Process.Pid)
		var total, apps int
		for _, pid := range tree {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if strings.TrimSpace(string(comm)) == "sleep" {
				apps++
				continue
			}
			total += rssKiB(pid)
		}
		if apps > 0 {
			return total + rssKiB(cmd.Process.Pid), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("the pod's app did not start within 10s")
}

// descendants lists the processes below pid (from /proc/*/stat).
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var p int
		if _, err := fmt.Sscan(e.Name(), &p); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
		var pp int
		fmt.Sscan(f[1], &pp)
		parent[p] = pp
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q != 0; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func rssKiB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	return 0
}

func pct(ts []time.Duration, p float64) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[int(float64(len(s)-1)*p)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// makeBundle writes a busybox root with /bin/true (and /bin/sleep, for the
// memory measurement) and the configuration
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
	for _, applet := range []string{"true", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			return err
		}
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
