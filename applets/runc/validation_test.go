package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corebox/corebox/applets/rkt/container/containertest"
)

// The runtime-tools validation suite is issue 4's conformance target.
const (
	runtimeToolsModule  = "github.com/opencontainers/runtime-tools"
	runtimeToolsVersion = "v0.9.1-0.20251205004911-5e639034dcdc"
	runtimeToolsCache   = "/var/cache/corebox/runtime-tools"
)

// requiredValidations are the suite's tests that Debian's runc 1.1.5
// passes on the CI machine; corebox must pass them too.
var requiredValidations = []string{
	"default", "create", "state", "kill", "killsig", "kill_no_effect", "hostname", "mounts",
	"linux_masked_paths", "linux_readonly_paths", "linux_ns_itype", "linux_ns_nopath", "linux_ns_path",
	"linux_ns_path_type", "linux_uid_mappings", "linux_sysctl", "linux_devices", "process", "process_user",
	"process_oom_score_adj", "root_readonly_true",
}

// racyValidations signal a shell before it can have installed its trap
// (killsig: `runc kill` right after `runc start`, and a pid-namespace init
// ignores a signal it has no handler for). The faster the runtime, the
// likelier the signal wins; Debian's runc fails it too under load (1 run
// in 8 at load average 5 here, corebox 3 in 8). A run can only fail that
// way — a wrong or lost signal never creates the file the test looks for —
// so one passing run of racyRuns shows kill works.
var racyValidations = map[string]bool{"killsig": true}

const racyRuns = 4

// runtimeTools returns the directory of a built suite, building it into
// the cache the first time; it skips t when the suite cannot be had.
func runtimeTools(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(runtimeToolsCache, runtimeToolsVersion)
	if _, err := os.Stat(filepath.Join(dir, "validation", "default", "default.t")); err == nil {
		return dir
	}
	for _, tool := range []string{"go", "make", "tar"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("runtime-tools suite: %s not found: %v", tool, err)
		}
	}
	cmd := exec.Command("go", "mod", "download", "-json", runtimeToolsModule+"@"+runtimeToolsVersion)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("runtime-tools suite: cannot fetch %s@%s: %v", runtimeToolsModule, runtimeToolsVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Skipf("runtime-tools suite: go mod download said %q", out)
	}
	if err := os.MkdirAll(runtimeToolsCache, 0o755); err != nil {
		t.Skipf("runtime-tools suite: %v", err)
	}
	tmp, err := os.MkdirTemp(runtimeToolsCache, "build-")
	if err != nil {
		t.Skipf("runtime-tools suite: %v", err)
	}
	defer os.RemoveAll(tmp)
	// The module zip is read-only and ships vendor/modules.txt without
	// the vendored code: copy it writable and build in module mode.
	steps := [][]string{
		{"cp", "-r", mod.Dir + "/.", tmp},
		{"chmod", "-R", "u+w", tmp},
		{"rm", "-rf", filepath.Join(tmp, "vendor")},
		{"make", "-C", tmp, "runtimetest", "validation-executables"},
	}
	for _, s := range steps {
		c := exec.Command(s[0], s[1:]...)
		c.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		if out, err := c.CombinedOutput(); err != nil {
			t.Skipf("runtime-tools suite: %v: %v\n%s", s, err, out)
		}
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		t.Skipf("runtime-tools suite: %v", err)
	}
	return dir
}

// TestRuntimeToolsValidation runs the required validation executables
// against this runc and fails on any "not ok".
func TestRuntimeToolsValidation(t *testing.T) {
	containertest.RequireRoot(t)
	if testing.Short() {
		t.Skip("runtime-tools suite: skipped in -short mode")
	}
	suite := runtimeTools(t)
	runtime := runcBinary(t)
	for _, name := range requiredValidations {
		t.Run(name, func(t *testing.T) {
			err := runValidation(suite, runtime, name)
			for run := 2; err != nil && racyValidations[name] && run <= racyRuns; run++ {
				t.Logf("%s failed, run %d of %d (it races, see racyValidations): %v", name, run, racyRuns, err)
				err = runValidation(suite, runtime, name)
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
}

// runValidation runs one validation executable and reports its failures.
func runValidation(suite, runtime, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(suite, "validation", name, name+".t"))
	cmd.Dir = suite
	cmd.Env = append(os.Environ(), "RUNTIME="+runtime)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var failed []string
	oks := 0
	for _, line := range strings.Split(out.String(), "\n") {
		switch {
		case strings.HasPrefix(line, "not ok"):
			failed = append(failed, line)
		case strings.HasPrefix(line, "ok"):
			oks++
		}
	}
	if err != nil || len(failed) > 0 || oks == 0 {
		return fmt.Errorf("%s: exit %v, %d ok, failed: %s\n%s", name, err, oks, strings.Join(failed, "; "), tail(out.String(), 4000))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("…%s", s[len(s)-n:])
}
