package etcdctl

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

// commandFlags returns the flags of a command, with the help flag.
func commandFlags(t testing.TB, name string) []flagSpec {
	for _, c := range commands() {
		if c.name == name {
			return append(slices.Clone(c.flags), helpFlag)
		}
	}
	t.Fatalf("no command %s", name)
	return nil
}

// The arguments as urfave/cli 1.22 leaves them, checked against Debian's
// etcdctl by the comparison tests.
func TestReorderArgs(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		in   string
		want string
	}{
		{"set", "/k v --ttl 5", "--ttl 5 /k v"},
		{"set", "/k -v", "/k -v"},
		{"set", "-- /k -v", "-- /k -v"},
		{"set", "/k v --ttl", "--ttl /k v"},
		{"set", "/k --ttl=5 v", "--ttl=5 /k v"},
		{"set", "/k v --bogus", "/k v --bogus"},
		{"mk", "--in-order /q v --ttl 100", "--in-order /q --ttl 100 v"},
		{"exec-watch", "/k -- echo hi", "-- /k echo hi"},
		{"exec-watch", "--recursive /k -- echo hi", "--recursive /k -- echo hi"},
		{"exec-watch", "--after-index 5 /k -- sh -c x", "--after-index 5 -- /k sh -c x"},
		{"exec-watch", "/k sh -c x", "/k sh -c x"},
		{"rm", "/k --with-value -5", "--with-value -5 /k"},
		{"rm", "/k --with-value --", "--with-value -- /k"},
		{"ls", "/d -r -p --sort", "-r -p --sort /d"},
	} {
		got := strings.Join(reorderArgs(commandFlags(t, tc.cmd), strings.Fields(tc.in)), " ")
		if got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.cmd, tc.in, got, tc.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	f, err := parseFlags("rm", commandFlags(t, "rm"), []string{"/k", "-r", "--with-index", "7", "--with-value=x"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !f.bool("recursive") || !f.bool("r") || f.int("with-index") != 7 || f.string("with-value") != "x" || !slices.Equal(f.args(), []string{"/k"}) {
		t.Fatalf("parsed %v %v %d %q %q", f.bool("recursive"), f.bool("r"), f.int("with-index"), f.string("with-value"), f.args())
	}
	for in, want := range map[string]string{
		"-r --recursive /k":  "Cannot use two forms of the same flag: r recursive",
		"--with-index x /k":  `invalid value "x" for flag -with-index: parse error`,
		"/k --with-index":    `invalid value "/k" for flag -with-index: parse error`,
		"--with-index":       `flag needs an argument: -with-index`,
		"--bogus /k":         "flag provided but not defined: -bogus",
		"--dir=maybe /k":     `invalid boolean value "maybe" for -dir: parse error`,
		"--with-index 1e3 x": `invalid value "1e3" for flag -with-index: parse error`,
	} {
		_, err := parseFlags("rm", commandFlags(t, "rm"), strings.Fields(in), true)
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
}

// Help texts as Debian's etcdctl prints them (the comparison tests check
// the others against it).
func TestHelp(t *testing.T) {
	for args, want := range map[string]string{
		"help rm": `NAME:
   etcdctl rm - remove a key or a directory

USAGE:
   etcdctl rm [command options] <key>

OPTIONS:
   --dir               removes the key if it is an empty directory or a key-value pair
   --recursive, -r     removes the key and all child keys(if it is a directory)
   --with-value value  previous value
   --with-index value  previous index (default: 0)
   
`,
		"help rmdir": `NAME:
   etcdctl rmdir - removes the key if it is an empty directory or a key-value pair

USAGE:
   etcdctl rmdir <key>
`,
		"member list --help": `NAME:
   etcdctl member list - enumerate existing cluster members

USAGE:
   etcdctl member list  
`,
	} {
		var stdout, stderr bytes.Buffer
		if code := Run(context.Background(), strings.Fields(args), nil, &stdout, &stderr); code != 0 || stdout.String() != want || stderr.Len() != 0 {
			t.Errorf("%s: exit %d\n%s\nwant\n%s\nstderr %s", args, code, stdout.String(), want, stderr.String())
		}
	}
}

// Errors found before any request.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args   string
		stderr string
		code   int
	}{
		{"get", "Error:  key required\n", 1},
		{"set /k", "Error:  value required\n", 1},
		{"exec-watch /k", "Error:  key and command to exec required\n", 1},
		{"member add x", "Provide a name and a single member peerURL\n", 1},
		{"member remove", "Provide a single member ID\n", 1},
		{"nosuch", "No help topic for 'nosuch'\n", 3},
		{"member nosuch", "No help topic for 'nosuch'\n", 3},
		{"--endpoints 127.0.0.1:1 get /k", "parse \"127.0.0.1:1\": first path segment in URL cannot contain colon\n", 1},
		{"--ca-file /nonexistent get /k", "open /nonexistent: no such file or directory\n", 1},
		{"--discovery-srv example.com get /k", "etcdctl: --discovery-srv is not supported by corebox; give --endpoints\n", 1},
	} {
		var stdout, stderr bytes.Buffer
		code := Run(context.Background(), strings.Fields(tc.args), strings.NewReader(""), &stdout, &stderr)
		if code != tc.code || stderr.String() != tc.stderr || stdout.Len() != 0 {
			t.Errorf("%s: exit %d stdout %q stderr %q, want exit %d stderr %q", tc.args, code, stdout.String(), stderr.String(), tc.code, tc.stderr)
		}
	}
}

// FuzzParseArgs checks the command line parser on any arguments: no panic,
// and reordering only moves arguments.
func FuzzParseArgs(f *testing.F) {
	f.Add("rm", "/k\x00--with-value\x00-5\x00-r")
	f.Add("exec-watch", "--after-index\x005\x00/k\x00--\x00sh\x00-c\x00x")
	f.Add("set", "--ttl\x00--\x00/k\x00v")
	f.Add("ls", "-p=true\x00--sort=false\x00/")
	f.Fuzz(func(t *testing.T, cmd, joined string) {
		var specs []flagSpec
		for _, c := range commands() {
			if c.name == cmd {
				specs = append(slices.Clone(c.flags), helpFlag)
			}
		}
		if specs == nil {
			specs = globalFlags
		}
		args := strings.Split(joined, "\x00")
		got := reorderArgs(specs, args)
		a, b := slices.Clone(args), slices.Clone(got)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Fatalf("reorder changed the arguments: %q -> %q", args, got)
		}
		if p, err := parseFlags(cmd, specs, args, true); err == nil {
			for _, s := range specs {
				names := s.names()
				for _, n := range names[1:] {
					if p.set.Lookup(n).Value.String() != p.set.Lookup(names[0]).Value.String() {
						t.Fatalf("aliases %s and %s disagree", names[0], n)
					}
				}
			}
		}
	})
}
