package rkt

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var testGlobals = flagSet{{name: "dir", kind: valueFlag}, {name: "debug", kind: boolFlag}}

func TestParseRunArgs(t *testing.T) {
	req, globals, err := parseRunArgs(strings.Fields(
		"--dir=/tmp/r --volume=data,kind=host,source=/srv --net=none --set-env=A=1 --mount volume=data,target=/all "+
			"img1 --exec /bin/sh --memory=64M --mount=volume=data,target=/one -- -c exit\\ 3 --- "+
			"img2 --name=second --caps-retain=CAP_KILL -- --- "+
			"img3"), testGlobals)
	if err != nil {
		t.Fatal(err)
	}
	if globals.last("dir", "") != "/tmp/r" {
		t.Errorf("globals = %v", globals)
	}
	if req.Net != "none" || len(req.Volumes) != 1 || len(req.Mounts) != 1 || req.SetEnv[0] != (EnvVar{"A", "1"}) {
		t.Errorf("pod options = %+v", req)
	}
	if len(req.Apps) != 3 {
		t.Fatalf("apps = %+v", req.Apps)
	}
	a := req.Apps[0]
	if a.Image != "img1" || a.Exec != "/bin/sh" || a.Memory != 64e6 || !reflect.DeepEqual(a.Args, []string{"-c", "exit\\", "3"}) || a.Mounts[0].Target != "/one" {
		t.Errorf("app 1 = %+v", a)
	}
	if b := req.Apps[1]; b.Name != "second" || !b.HasArgs || len(b.Args) != 0 || !reflect.DeepEqual(b.CapsRetain, []string{"CAP_KILL"}) {
		t.Errorf("app 2 = %+v", b)
	}
	if c := req.Apps[2]; c.Image != "img3" || c.HasArgs {
		t.Errorf("app 3 = %+v", c)
	}
}

func TestParseRunArgsErrors(t *testing.T) {
	for in, wantErr := range map[string]string{
		"":                   "no image given",
		"--exec=/bin/sh img": "--exec must follow an image",
		"img --net=host":     "option of the pod",
		"img --bogus":        "unknown flag: --bogus",
		"--bogus img":        "unknown flag: --bogus",
		"img --memory=lots":  "--memory",
		"img -- a ---":       "not followed by an image",
		"--interactive a b":  "exactly one image",
		"img --caps-retain=KILL --caps-remove=CHOWN":               "exclude each other",
		"--volume=x,kind=host,source=/a --volume=x,kind=empty img": "defined twice",
		"--dns=host --dns=1.1.1.1 img":                             "stand alone",
		"img --exec":                                               "needs an argument",
		"img --name=Bad":                                           "invalid app name",
		"img --working-dir=rel":                                    "not an absolute path",
		"img --supplementary-gids=1,x":                             "not a group ID",
		"img --pids-limit=0":                                       "positive number",
	} {
		_, _, err := parseRunArgs(strings.Fields(in), testGlobals)
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("parseRunArgs(%q) = %v, want an error with %q", in, err, wantErr)
		}
	}
}

func FuzzParseRunArgs(f *testing.F) {
	f.Add("--net=host img --exec /bin/true -- a b --- img2 --memory=10M")
	f.Add("--volume=v,kind=empty img --mount volume=v,target=/x")
	f.Fuzz(func(t *testing.T, s string) {
		req, _, err := parseRunArgs(strings.Fields(s), testGlobals)
		if err != nil {
			return
		}
		for _, a := range req.Apps {
			if a.Image == "" || strings.HasPrefix(a.Image, "-") {
				t.Fatalf("parseRunArgs(%q) took image %q", s, a.Image)
			}
		}
	})
}

func TestFlagSetParse(t *testing.T) {
	set := flagSet{{name: "full", kind: boolFlag}, {name: "format", kind: valueFlag}, {name: "wait", kind: optionalFlag, implied: "true"}, {name: "help", kind: boolFlag}}
	vals, words, err := set.parse([]string{"a", "--full", "--format", "json", "--wait", "b", "--full=false", "--", "--wait"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if vals.bool("full") || vals.last("format", "") != "json" || vals.last("wait", "") != "true" || !reflect.DeepEqual(words, []string{"a", "b", "--wait"}) {
		t.Errorf("vals %v words %v", vals, words)
	}
	_, words, _ = set.parse([]string{"--full", "a", "--full"}, false)
	if !reflect.DeepEqual(words, []string{"a", "--full"}) {
		t.Errorf("not interspersed: words %v", words)
	}
	for _, bad := range [][]string{{"--full=yes"}, {"--format"}, {"--nope"}, {"-x"}, {"--"[:2] + "=x"}} {
		if _, _, err := set.parse(bad, true); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
	if vals, _, err := set.parse([]string{"-h"}, true); err != nil || !vals.bool("help") {
		t.Errorf("-h: %v %v", vals, err)
	}
}

func FuzzFlagSetParse(f *testing.F) {
	f.Add("--full --format json a --wait=5s")
	f.Add("-- --full")
	set := flagSet{{name: "full", kind: boolFlag}, {name: "format", kind: valueFlag}, {name: "wait", kind: optionalFlag, implied: "true"}}
	f.Fuzz(func(t *testing.T, s string) {
		vals, _, err := set.parse(strings.Fields(s), true)
		if err != nil {
			return
		}
		for name := range vals {
			if _, ok := set.lookup(name); !ok {
				t.Fatalf("parse(%q) set unknown flag %q", s, name)
			}
		}
	})
}

func TestUUIDs(t *testing.T) {
	u := newUUID()
	if !isUUID(u) || u[14] != '4' || !strings.ContainsRune("89ab", rune(u[19])) || newUUID() == u {
		t.Errorf("newUUID = %s", u)
	}
	if p, err := checkUUIDPrefix("5BC0-80ca"); err != nil || p != "5bc080ca" {
		t.Errorf("checkUUIDPrefix = %q, %v", p, err)
	}
	for _, bad := range []string{"", "xyz", strings.Repeat("a", 33)} {
		if _, err := checkUUIDPrefix(bad); err == nil {
			t.Errorf("checkUUIDPrefix(%q) accepted", bad)
		}
	}
}

func FuzzCheckUUIDPrefix(f *testing.F) {
	f.Add("5bc080ca-9e03-480d-b705-5928af396cc5")
	f.Add("5b")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := checkUUIDPrefix(s)
		if err == nil && (p == "" || len(p) > 32 || strings.Trim(p, "0123456789abcdef") != "") {
			t.Fatalf("checkUUIDPrefix(%q) = %q", s, p)
		}
	})
}

func TestDefaultShell(t *testing.T) {
	withBash := t.TempDir()
	os.MkdirAll(filepath.Join(withBash, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(withBash, "usr/bin/bash"), []byte("#!"), 0o755)
	os.Symlink("usr/bin", filepath.Join(withBash, "bin"))
	escaping := t.TempDir()
	os.MkdirAll(filepath.Join(escaping, "bin"), 0o755)
	os.Symlink("/bin/busybox", filepath.Join(escaping, "bin/bash")) // resolved inside the root: missing there
	for root, want := range map[string]string{withBash: "/bin/bash", escaping: "/bin/sh", t.TempDir(): "/bin/sh"} {
		if got := defaultShell(root); got != want {
			t.Errorf("defaultShell(%s) = %s, want %s", root, got, want)
		}
	}
}
