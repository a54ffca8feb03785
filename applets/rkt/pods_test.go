package rkt

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// needRoot skips a test that needs root.
func needRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: " + why)
	}
}

// rktResult is one in-process run of the applet.
type rktResult struct {
	code           int
	stdout, stderr string
}

// rktIn runs `rkt --dir=DIR ARGS…` in this process.
func rktIn(t testing.TB, dir string, args ...string) rktResult {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	code := Run(ctx, append([]string{"--dir=" + dir}, args...), Env{Stdin: devnull, Stdout: &out, Stderr: &errb})
	return rktResult{code: code, stdout: out.String(), stderr: errb.String()}
}

func TestPrepareListStatusRmGC(t *testing.T) {
	needRoot(t, "unpacking image layers keeps owners and xattrs")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	uuidFile := filepath.Join(t.TempDir(), "uuid")
	r := rktIn(t, dir, "prepare", "--set-env=GREETING=hi", "--uuid-file-save="+uuidFile, ref, "--name=first", "--memory=64M", "---", ref, "--name=second", "--exec=/bin/sh", "--", "-c", "exit 3")
	if r.code != 0 {
		t.Fatalf("prepare: %d %s", r.code, r.stderr)
	}
	uuid := strings.TrimSpace(r.stdout)
	if !isUUID(uuid) {
		t.Fatalf("prepare printed %q, not a UUID", r.stdout)
	}
	if b, _ := os.ReadFile(uuidFile); strings.TrimSpace(string(b)) != uuid {
		t.Errorf("--uuid-file-save wrote %q, want %s", b, uuid)
	}

	r = rktIn(t, dir, "list")
	if r.code != 0 || !regexp.MustCompile(`(?m)^UUID\s+APP\s+IMAGE NAME\s+STATE\s+CREATED\s+STARTED\s+NETWORKS$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^`+uuid[:8]+`\s+first\s+\S+\s+prepared\s+(now|\d+ seconds? ago)\s*$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^\s+second\s+\S+\s*$`).MatchString(r.stdout) {
		t.Errorf("list:\n%s%s", r.stdout, r.stderr)
	}
	r = rktIn(t, dir, "list", "--no-legend", "--full")
	if strings.Contains(r.stdout, "UUID") || !strings.Contains(r.stdout, uuid) || !strings.Contains(r.stdout, "sha256:") {
		t.Errorf("list --no-legend --full:\n%s", r.stdout)
	}
	r = rktIn(t, dir, "list", "--format=json")
	var pods []podJSON
	if err := json.Unmarshal([]byte(r.stdout), &pods); err != nil || len(pods) != 1 || pods[0].UUID != uuid || pods[0].State != "prepared" || strings.Join(pods[0].AppNames, ",") != "first,second" {
		t.Errorf("list --format=json: %v\n%s", err, r.stdout)
	}

	r = rktIn(t, dir, "status", uuid[:6])
	if r.code != 0 || !strings.HasPrefix(r.stdout, "state=prepared\ncreated=") {
		t.Errorf("status: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = rktIn(t, dir, "cat-manifest", uuid)
	m, err := decodeManifest(strings.NewReader(r.stdout))
	if err != nil {
		t.Fatalf("cat-manifest: %v\n%s", err, r.stdout)
	}
	if m.Apps[0].Memory != 64e6 || strings.Join(m.Apps[1].Exec, " ") != "/bin/sh -c exit 3" || strings.Join(m.Apps[0].Exec, " ") != "/bin/true" ||
		m.Hostname != "rkt-"+uuid || m.Net != "default" {
		t.Errorf("manifest: %+v", m)
	}
	if env := m.Apps[0].Env; len(env) != 2 || env[0] != (EnvVar{"PATH", "/bin"}) || env[1] != (EnvVar{"GREETING", "hi"}) {
		t.Errorf("environment: %v", env)
	}

	// gc leaves a fresh prepared pod alone; rm removes it.
	if r = rktIn(t, dir, "gc", "--grace-period=0s"); r.code != 0 || r.stdout != "" {
		t.Errorf("gc: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = rktIn(t, dir, "gc", "--expire-prepared=0s", "--mark-only"); r.code != 0 || r.stdout != "Moving pod \""+uuid+"\" to garbage\n" {
		t.Errorf("gc --expire-prepared=0s --mark-only: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = rktIn(t, dir, "status", uuid); !strings.HasPrefix(r.stdout, "state=garbage\n") {
		t.Errorf("status after mark: %s", r.stdout)
	}
	if r = rktIn(t, dir, "rm", uuid); r.code != 0 || r.stdout != "\""+uuid+"\"\n" {
		t.Errorf("rm: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "pods", "garbage", uuid)); !os.IsNotExist(err) {
		t.Errorf("pod directory after rm: %v", err)
	}
	if r = rktIn(t, dir, "status", uuid); r.code != exitError || !strings.Contains(r.stderr, "no pod matches") {
		t.Errorf("status of a removed pod: %d %s", r.code, r.stderr)
	}
}

func TestPrepareBadInput(t *testing.T) {
	needRoot(t, "unpacking image layers keeps owners and xattrs")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"prepare", "--volume=data,kind=host,source=/does/not/exist", ref, "--mount=volume=data,target=/data"}, "source /does/not/exist: no such file or directory"},
		{[]string{"prepare", ref, "--mount=volume=nothere,target=/data"}, `mount of undefined volume "nothere"`},
		{[]string{"prepare", ref, "---", ref}, `app name "layout" used twice`},
		{[]string{"prepare", "no.such/image:1"}, "no.such/image:1"},
		{[]string{"prepare", "oci-layout:/does/not/exist:x"}, "fetching oci-layout:/does/not/exist:x"},
		{[]string{"prepare", busyboxImage(t, "empty", v1.Config{})}, "no command"},
		{[]string{"prepare", "--net=host", "--port=80-tcp:8080", ref}, "--port needs --net=default: with --net=host"},
	} {
		r := rktIn(t, dir, tc.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tc.wantErr) {
			t.Errorf("rkt %v: %d %q, want an error with %q", tc.args, r.code, r.stderr, tc.wantErr)
		}
	}
	// Nothing is left of the failed pods.
	for _, ph := range podPhases {
		ents, _ := os.ReadDir(filepath.Join(dir, "pods", string(ph)))
		if len(ents) != 0 {
			t.Errorf("pods/%s after failed prepares: %v", ph, ents)
		}
	}
}

func TestCommandLineErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"list", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"--insecure-options=everything", "list"}, `unknown option "everything"`},
		{[]string{"status"}, "no pod UUID given"},
		{[]string{"status", "zz"}, "not hexadecimal"},
		{[]string{"status", "0123"}, `no pod matches UUID "0123"`},
		{[]string{"status", "--wait=soon", "0123"}, "--wait"},
		{[]string{"gc", "--grace-period=long"}, "--grace-period"},
		{[]string{"rm", "abcdef"}, "no pod matches"},
		{[]string{"list", "--format=yaml"}, "want json or json-pretty"},
		{[]string{"run"}, "no image given"},
		{[]string{"run", "--net=bridge", "x"}, "want default, host or none"},
		{[]string{"run", "--net=host", "--port=80-tcp:8080", "x"}, "--port needs --net=default: with --net=host the apps listen on the host's ports"},
		{[]string{"prepare", "--net=none", "--port=53-udp:5353", "x"}, "--port needs --net=default: a --net=none pod has only lo"},
		{[]string{"run", "--port=80-tcp:8080", "--port=81-tcp:8080", "x"}, "host port tcp/8080 is forwarded twice"},
		{[]string{"run", "--port=80-tcp:0", "x"}, "not a host port number"},
	} {
		r := rktIn(t, dir, tc.args...)
		if r.code != exitError || !strings.Contains(r.stderr, tc.wantErr) {
			t.Errorf("rkt %v: %d %q, want an error with %q", tc.args, r.code, r.stderr, tc.wantErr)
		}
	}
	if r := rktIn(t, dir, "list", "--format=json"); r.code != 0 || r.stdout != "[]\n" {
		t.Errorf("list of nothing: %d %q", r.code, r.stdout)
	}
}

func TestImageCommands(t *testing.T) {
	needRoot(t, "unpacking image layers keeps owners and xattrs")
	dir := t.TempDir()
	ref := busyboxImage(t, "v1", v1.Config{Cmd: []string{"/bin/true"}})
	r := rktIn(t, dir, "fetch", ref)
	id := strings.TrimSpace(r.stdout)
	if r.code != 0 || !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("fetch: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r = rktIn(t, dir, "image", "list"); !strings.HasPrefix(r.stdout, "ID") || !strings.Contains(r.stdout, id[:19]) {
		t.Errorf("image list:\n%s%s", r.stdout, r.stderr)
	}
	if r = rktIn(t, dir, "image", "cat-manifest", id[7:19]); !strings.Contains(r.stdout, `"layers"`) {
		t.Errorf("image cat-manifest: %s%s", r.stdout, r.stderr)
	}
	// A pod of an image given by ID names its app after the image's name.
	if r = rktIn(t, dir, "prepare", id); r.code != 0 {
		t.Errorf("prepare by ID: %d %s", r.code, r.stderr)
	} else if l := rktIn(t, dir, "list", "--no-legend"); len(strings.Fields(l.stdout)) < 2 || strings.Fields(l.stdout)[1] != "layout" {
		t.Errorf("the app of a pod prepared by image ID is not named after the image (localhost/layout:v1):\n%s", l.stdout)
	} else {
		rktIn(t, dir, "rm", strings.TrimSpace(r.stdout))
	}
	tarPath := filepath.Join(t.TempDir(), "img.tar")
	if r = rktIn(t, dir, "image", "export", id, tarPath); r.code != 0 {
		t.Errorf("image export: %s", r.stderr)
	}
	if r = rktIn(t, dir, "image", "export", id, tarPath); r.code != exitError {
		t.Errorf("image export over a file without --overwrite: %d", r.code)
	}
	out := filepath.Join(t.TempDir(), "rootfs")
	if r = rktIn(t, dir, "image", "extract", id, out); r.code != 0 {
		t.Errorf("image extract: %s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(out, "bin", "busybox")); err != nil {
		t.Errorf("extracted rootfs: %v", err)
	}
	// An image a pod uses is kept.
	uuid := strings.TrimSpace(rktIn(t, dir, "prepare", id).stdout)
	if r = rktIn(t, dir, "image", "rm", id); r.code != exitError || !strings.Contains(r.stderr, uuid) {
		t.Errorf("image rm of a used image: %d %s", r.code, r.stderr)
	}
	rktIn(t, dir, "rm", uuid)
	if r = rktIn(t, dir, "image", "rm", id); r.code != 0 {
		t.Errorf("image rm: %d %s", r.code, r.stderr)
	}
	if r = rktIn(t, dir, "image", "list", "--format=json"); r.stdout != "[]\n" {
		t.Errorf("image list after rm: %q", r.stdout)
	}
}
