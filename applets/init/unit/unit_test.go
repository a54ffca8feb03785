package unit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

// service returns the Service of a .service unit that sets nothing but
// ExecStart=/bin/true.
func service() Service {
	return Service{
		Type:            "simple",
		ExecStart:       []Command{{Argv: []string{"/bin/true"}}},
		Restart:         "no",
		RestartSec:      100 * time.Millisecond,
		TimeoutStopSec:  90 * time.Second,
		TimeoutStartSec: 90 * time.Second,
		KillSignal:      syscall.SIGTERM,
	}
}

// cmd builds a Command from its words; a leading "-" word sets IgnoreFailure.
func cmd(argv ...string) Command {
	if argv[0] == "-" {
		return Command{Argv: argv[1:], IgnoreFailure: true}
	}
	return Command{Argv: argv}
}

// exec is the start of a minimal valid service, matching service().
const exec = "[Service]\nExecStart=/bin/true\n"

func diffUnits(t *testing.T, got, want *Unit) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, w := reflect.ValueOf(*got), reflect.ValueOf(*want)
	for i := 0; i < g.NumField(); i++ {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			t.Errorf("%s:\n got %#v\nwant %#v", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
}

func TestParseDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      Unit
	}{
		{
			name: "minimal.service",
			src:  exec,
			want: Unit{Service: service()},
		},
		{
			name: "empty.target",
			src:  "",
			want: Unit{},
		},
		{
			name: "comments-only.target",
			src:  "# nothing\n; at all\n\n",
			want: Unit{},
		},
		{
			name: "oneshot.service",
			src:  "[Service]\nType=oneshot\nExecStart=/bin/true\n",
			want: Unit{Service: func() Service {
				s := service()
				s.Type = "oneshot"
				s.TimeoutStartSec = 0 // no start timeout for oneshot by default
				return s
			}()},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.name, strings.NewReader(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Name, want.Source = tc.name, []byte(tc.src)
			diffUnits(t, got, &want)
		})
	}
}

func TestParseKeys(t *testing.T) {
	for _, tc := range []struct {
		desc string
		name string // default "test.service"
		src  string
		opts ParseOptions
		want func(u *Unit) // applied to the defaults of a service with ExecStart=/bin/true
	}{
		// [Unit]
		{
			desc: "Description with specifiers",
			name: "web@8080.service",
			src:  exec + "[Unit]\nDescription=%n %N %p %i 100%% %\n",
			want: func(u *Unit) { u.Description = "web@8080.service web@8080 web 8080 100% %" },
		},
		{
			desc: "Description of a plain unit: %p is %N, %i empty",
			src:  exec + "[Unit]\nDescription=[%p|%i]\n",
			want: func(u *Unit) { u.Description = "[test|]" },
		},
		{
			desc: "Description of a template",
			name: "web@.service",
			src:  exec + "[Unit]\nDescription=[%p|%i|%N]\n",
			want: func(u *Unit) { u.Description = "[web||web@]" },
		},
		{
			desc: "Description with host specifiers",
			src:  exec + "[Unit]\nDescription=%H %m %n\n",
			opts: ParseOptions{Specifiers: map[rune]string{'H': "node1", 'm': "0123abcd", 'n': "ignored"}},
			want: func(u *Unit) { u.Description = "node1 0123abcd test.service" },
		},
		{
			desc: "Description last one wins, empty resets",
			src:  exec + "[Unit]\nDescription=one\nDescription=two\n",
			want: func(u *Unit) { u.Description = "two" },
		},
		{
			desc: "Description empty",
			src:  exec + "[Unit]\nDescription=one\nDescription=\n",
			want: func(u *Unit) {},
		},
		{
			desc: "dependency lists split on blanks, accumulate and skip repeats",
			src: exec + "[Unit]\nAfter=a.service  b.target\tc.socket\nAfter=a.service d@1.service\n" +
				"Before=shutdown.target\nRequires=docker.service\nRequires=etcd.service\nWants=x.mount y.device\n",
			want: func(u *Unit) {
				u.After = []string{"a.service", "b.target", "c.socket", "d@1.service"}
				u.Before = []string{"shutdown.target"}
				u.Requires = []string{"docker.service", "etcd.service"}
				u.Wants = []string{"x.mount", "y.device"}
			},
		},
		{
			desc: "dependency list reset by an empty assignment",
			src:  exec + "[Unit]\nAfter=a.service\nWants=w.service\nAfter=\nAfter=b.service a.service\nWants=\n",
			want: func(u *Unit) { u.After = []string{"b.service", "a.service"} },
		},
		{
			desc: "dependency with specifiers",
			name: "web@1.service",
			src:  exec + "[Unit]\nRequires=%p-db@%i.service\nBefore=%p-lb.target\n",
			want: func(u *Unit) {
				u.Requires = []string{"web-db@1.service"}
				u.Before = []string{"web-lb.target"}
			},
		},
		{
			desc: "ConditionPathExists plain, negated, with specifiers",
			name: "web@1.service",
			src: exec + "[Unit]\nConditionPathExists=/etc/a b\nConditionPathExists=!/run/%p.off\n" +
				"ConditionPathExists=! /run/%i\n",
			want: func(u *Unit) {
				u.Conditions = []Condition{{Path: "/etc/a b"}, {Path: "/run/web.off", Negate: true}, {Path: "/run/1", Negate: true}}
			},
		},
		{
			desc: "ConditionPathExists reset",
			src:  exec + "[Unit]\nConditionPathExists=/a\nConditionPathExists=\nConditionPathExists=/b\n",
			want: func(u *Unit) { u.Conditions = []Condition{{Path: "/b"}} },
		},
		{
			desc: "X- keys in known sections are ignored",
			src:  exec + "X-Note=anything\n[Unit]\nX-Owner=ops\n[Install]\nX-Whatever=%bogus\n",
			want: func(u *Unit) {},
		},

		// [Service]
		{
			desc: "Type=oneshot allows several ExecStart",
			src:  "[Service]\nType=oneshot\nExecStart=/bin/a\nExecStart=/bin/b x\n",
			want: func(u *Unit) {
				u.Service.Type = "oneshot"
				u.Service.TimeoutStartSec = 0
				u.Service.ExecStart = []Command{cmd("/bin/a"), cmd("/bin/b", "x")}
			},
		},
		{
			desc: "Type=oneshot without ExecStart but RemainAfterExit and ExecStop",
			src:  "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStop=/bin/stop\n",
			want: func(u *Unit) {
				u.Service.Type = "oneshot"
				u.Service.TimeoutStartSec = 0
				u.Service.ExecStart = nil
				u.Service.ExecStop = []Command{cmd("/bin/stop")}
				u.Service.RemainAfterExit = true
			},
		},
		{
			desc: "Type=oneshot keeps an explicit TimeoutStartSec",
			src:  exec + "Type=oneshot\nTimeoutStartSec=10s\n",
			want: func(u *Unit) { u.Service.Type = "oneshot"; u.Service.TimeoutStartSec = 10 * time.Second },
		},
		{
			desc: "Type=oneshot with TimeoutStartSec reset to default",
			src:  exec + "Type=oneshot\nTimeoutStartSec=10s\nTimeoutStartSec=\n",
			want: func(u *Unit) { u.Service.Type = "oneshot"; u.Service.TimeoutStartSec = 0 },
		},
		{
			desc: "Type=exec",
			src:  exec + "Type=exec\n",
			want: func(u *Unit) { u.Service.Type = "exec" },
		},
		{
			desc: "Type=simple and reset",
			src:  exec + "Type=exec\nType=\nType=simple\n",
			want: func(u *Unit) {},
		},
		{
			desc: "ExecStart reset then set",
			src:  exec + "ExecStart=\nExecStart=/bin/b\n",
			want: func(u *Unit) { u.Service.ExecStart = []Command{cmd("/bin/b")} },
		},
		{
			desc: "Exec keys with the - prefix, quoting and reset",
			src: exec + "ExecStartPre=-/usr/bin/docker kill web\nExecStartPre=/usr/bin/docker pull \"img:1\"\n" +
				"ExecStartPost=/bin/post\nExecStartPost=\nExecStartPost=/bin/post2\n" +
				"ExecStop=-/bin/stop 'a b'\nExecStop=/bin/stop2\n",
			want: func(u *Unit) {
				u.Service.ExecStartPre = []Command{cmd("-", "/usr/bin/docker", "kill", "web"), cmd("/usr/bin/docker", "pull", "img:1")}
				u.Service.ExecStartPost = []Command{cmd("/bin/post2")}
				u.Service.ExecStop = []Command{cmd("-", "/bin/stop", "a b"), cmd("/bin/stop2")}
			},
		},
		{
			desc: "Exec specifiers expand inside words after quoting",
			name: "web@1.service",
			src:  "[Service]\nExecStart=/bin/run-%p %i \"x%Hy\" %H %%i\n",
			opts: ParseOptions{Specifiers: map[rune]string{'H': "a b"}},
			want: func(u *Unit) {
				u.Service.ExecStart = []Command{cmd("/bin/run-web", "1", "xa by", "a b", "%i")}
			},
		},
		{
			desc: "Exec variables are kept for Expand",
			src:  "[Service]\nExecStart=/bin/echo $A ${B} $$\n",
			want: func(u *Unit) { u.Service.ExecStart = []Command{cmd("/bin/echo", "$A", "${B}", "$$")} },
		},
		{
			desc: "Restart values and reset",
			src:  exec + "Restart=always\n",
			want: func(u *Unit) { u.Service.Restart = "always" },
		},
		{
			desc: "Restart=on-failure",
			src:  exec + "Restart=on-failure\n",
			want: func(u *Unit) { u.Service.Restart = "on-failure" },
		},
		{
			desc: "Restart=no and empty",
			src:  exec + "Restart=always\nRestart=\nRestart=on-failure\nRestart=no\n",
			want: func(u *Unit) {},
		},
		{
			desc: "RestartSec",
			src:  exec + "RestartSec=1min 30s\n",
			want: func(u *Unit) { u.Service.RestartSec = 90 * time.Second },
		},
		{
			desc: "RestartSec bare number is seconds; reset is 100ms",
			src:  exec + "RestartSec=5\nRestartSec=\n",
			want: func(u *Unit) {},
		},
		{
			desc: "RestartSec=0",
			src:  exec + "RestartSec=0\n",
			want: func(u *Unit) { u.Service.RestartSec = 0 },
		},
		{
			desc: "TimeoutStopSec=0 means none",
			src:  exec + "TimeoutStopSec=0\n",
			want: func(u *Unit) { u.Service.TimeoutStopSec = 0 },
		},
		{
			desc: "TimeoutStopSec=infinity means none",
			src:  exec + "TimeoutStopSec=infinity\n",
			want: func(u *Unit) { u.Service.TimeoutStopSec = 0 },
		},
		{
			desc: "TimeoutStopSec and TimeoutStartSec durations",
			src:  exec + "TimeoutStopSec=500ms\nTimeoutStartSec=2m\n",
			want: func(u *Unit) {
				u.Service.TimeoutStopSec = 500 * time.Millisecond
				u.Service.TimeoutStartSec = 2 * time.Minute
			},
		},
		{
			desc: "TimeoutStartSec=0 and infinity",
			src:  exec + "TimeoutStartSec=1h\nTimeoutStartSec=infinity\nTimeoutStopSec=1h\nTimeoutStopSec=\n",
			want: func(u *Unit) { u.Service.TimeoutStartSec = 0 },
		},
		{
			desc: "Environment with quoting",
			src:  exec + "Environment=\"A=b c\" D=e\n",
			want: func(u *Unit) { u.Service.Environment = []string{"A=b c", "D=e"} },
		},
		{
			desc: "Environment accumulates; a name set again keeps its place",
			src:  exec + "Environment=A=1 B=2\nEnvironment=C=3\nEnvironment=A=4 'B=x y'\n",
			want: func(u *Unit) { u.Service.Environment = []string{"A=4", "B=x y", "C=3"} },
		},
		{
			desc: "Environment reset",
			src:  exec + "Environment=A=1 B=2\nEnvironment=\nEnvironment=B=3 A=\n",
			want: func(u *Unit) { u.Service.Environment = []string{"B=3", "A="} },
		},
		{
			desc: "Environment escapes, specifiers and = in values",
			name: "web@1.service",
			src:  exec + "Environment=X=a\\x41\\sb\\tc INST=%i \"URL=http://h/?a=b\" _U=\\u00e9\n",
			want: func(u *Unit) { u.Service.Environment = []string{"X=aA b\tc", "INST=1", "URL=http://h/?a=b", "_U=é"} },
		},
		{
			desc: "EnvironmentFile plain, optional, specifiers, reset",
			name: "web@1.service",
			src:  exec + "EnvironmentFile=/etc/x\nEnvironmentFile=\nEnvironmentFile=/etc/environment\nEnvironmentFile=-/etc/%p/%i.env\n",
			want: func(u *Unit) {
				u.Service.EnvironmentFiles = []EnvironmentFile{{Path: "/etc/environment"}, {Path: "/etc/web/1.env", Optional: true}}
			},
		},
		{
			desc: "WorkingDirectory",
			name: "web@1.service",
			src:  exec + "WorkingDirectory=/srv/%p dir\n",
			want: func(u *Unit) { u.Service.WorkingDirectory = "/srv/web dir" },
		},
		{
			desc: "WorkingDirectory reset",
			src:  exec + "WorkingDirectory=/srv\nWorkingDirectory=\n",
			want: func(u *Unit) {},
		},
		{
			desc: "KillSignal=SIGKILL",
			src:  exec + "KillSignal=SIGKILL\n",
			want: func(u *Unit) { u.Service.KillSignal = syscall.SIGKILL },
		},
		{
			desc: "KillSignal=KILL",
			src:  exec + "KillSignal=KILL\n",
			want: func(u *Unit) { u.Service.KillSignal = syscall.SIGKILL },
		},
		{
			desc: "KillSignal=9",
			src:  exec + "KillSignal=9\n",
			want: func(u *Unit) { u.Service.KillSignal = syscall.SIGKILL },
		},
		{
			desc: "KillSignal=SIGINT then reset",
			src:  exec + "KillSignal=SIGINT\nKillSignal=\n",
			want: func(u *Unit) {},
		},
		{
			desc: "RemainAfterExit=yes",
			src:  exec + "RemainAfterExit=yes\n",
			want: func(u *Unit) { u.Service.RemainAfterExit = true },
		},
		{
			desc: "RemainAfterExit reset",
			src:  exec + "RemainAfterExit=on\nRemainAfterExit=\n",
			want: func(u *Unit) {},
		},

		// [Install]
		{
			desc: "WantedBy and RequiredBy",
			name: "getty@tty1.service",
			src:  exec + "[Install]\nWantedBy=multi-user.target  graphical.target\nWantedBy=multi-user.target\nRequiredBy=%p.target\n",
			want: func(u *Unit) {
				u.Install.WantedBy = []string{"multi-user.target", "graphical.target"}
				u.Install.RequiredBy = []string{"getty.target"}
			},
		},
		{
			desc: "WantedBy reset",
			src:  exec + "[Install]\nWantedBy=a.target\nWantedBy=\nWantedBy=b.target\n",
			want: func(u *Unit) { u.Install.WantedBy = []string{"b.target"} },
		},

		// X-* sections
		{
			desc: "X- sections verbatim, repeated keys and sections merged",
			name: "web@1.service",
			src: exec + "[X-Fleet]\nConflicts=web@*.service\nMachineMetadata=region=us\nX-Odd= spaced  value \n" +
				"[Unit]\nDescription=d\n[X-Fleet]\nMachineMetadata=disk=ssd\nMachineOf=%p-data@%i.service\nGlobal=\n[X-Empty]\n",
			want: func(u *Unit) {
				u.Description = "d"
				u.Extra = map[string]map[string][]string{
					"X-Fleet": {
						"Conflicts":       {"web@*.service"},
						"MachineMetadata": {"region=us", "disk=ssd"},
						"X-Odd":           {"spaced  value"},
						"MachineOf":       {"%p-data@%i.service"},
						"Global":          {""},
					},
					"X-Empty": {},
				}
			},
		},

		// Syntax
		{
			desc: "comments, blank lines and whitespace around keys",
			src: "# comment\n; comment\n   # indented comment\n\n[Unit]\n  Description  =   spaced out   \n\t\n" +
				"[Service]\n ExecStart = /bin/true\n",
			want: func(u *Unit) { u.Description = "spaced out" },
		},
		{
			desc: "a # after a value is part of it",
			src:  exec + "[Unit]\nDescription=a # b ; c\n",
			want: func(u *Unit) { u.Description = "a # b ; c" },
		},
		{
			desc: "CRLF line endings and a byte order mark",
			src:  "\ufeff[Unit]\r\nDescription=dos\r\n[Service]\r\nExecStart=/bin/true\r\n",
			want: func(u *Unit) { u.Description = "dos" },
		},
		{
			desc: "no final newline",
			src:  "[Service]\nExecStart=/bin/true",
			want: func(u *Unit) {},
		},
		{
			desc: "a section given twice is merged",
			src:  "[Service]\nExecStartPre=/bin/a\n[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n",
			want: func(u *Unit) {
				u.Description = "x"
				u.Service.ExecStartPre = []Command{cmd("/bin/a")}
			},
		},
		{
			desc: "continuation lines join with a space",
			src:  "[Service]\nExecStart=/bin/echo one \\\n  two\\\nthree\n",
			want: func(u *Unit) { u.Service.ExecStart = []Command{cmd("/bin/echo", "one", "two", "three")} },
		},
		{
			desc: "continuation keeps inner spacing of plain values",
			src:  exec + "[Unit]\nDescription=a \\\n  b\n",
			want: func(u *Unit) { u.Description = "a    b" },
		},
		{
			desc: "comment lines inside a continuation are dropped",
			src:  "[Service]\nExecStart=/bin/echo a \\\n# not b \\\n; not c\n  d\n",
			want: func(u *Unit) { u.Service.ExecStart = []Command{cmd("/bin/echo", "a", "d")} },
		},
		{
			desc: "an even number of trailing backslashes does not continue",
			src:  "[Service]\nExecStart=/bin/echo a\\\\\nExecStartPost=/bin/b\n",
			want: func(u *Unit) {
				u.Service.ExecStart = []Command{cmd("/bin/echo", `a\`)}
				u.Service.ExecStartPost = []Command{cmd("/bin/b")}
			},
		},
		{
			desc: "an empty line ends a continuation",
			src:  "[Service]\nExecStart=/bin/echo a \\\n\n[Unit]\nDescription=d\n",
			want: func(u *Unit) {
				u.Description = "d"
				u.Service.ExecStart = []Command{cmd("/bin/echo", "a")}
			},
		},
		{
			desc: "continuation at end of file",
			src:  "[Service]\nExecStart=/bin/echo a \\",
			want: func(u *Unit) { u.Service.ExecStart = []Command{cmd("/bin/echo", "a")} },
		},
		{
			desc: "continuation of a quoted string",
			src:  "[Service]\nExecStart=/bin/echo \"a \\\nb\"\n",
			want: func(u *Unit) { u.Service.ExecStart = []Command{cmd("/bin/echo", "a  b")} },
		},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			name := tc.name
			if name == "" {
				name = "test.service"
			}
			got, err := ParseWith(name, strings.NewReader(tc.src), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := &Unit{Name: name, Service: service(), Source: []byte(tc.src)}
			tc.want(want)
			diffUnits(t, got, want)
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string // default "test.service"
		src  string
		opts ParseOptions
		want string
	}{
		// Structure.
		{src: "[Foo]\n", want: "test.service:1: unknown section [Foo]"},
		{src: exec + "[unit]\nDescription=x\n", want: "test.service:3: unknown section [unit]"},
		{src: "[Unit\nDescription=x\n", want: `test.service:1: invalid section header "[Unit"`},
		{src: "[Unit] # c\n", want: `test.service:1: invalid section header "[Unit] # c"`},
		{src: "# c\n[]\n", want: `test.service:2: invalid section name in header "[]"`},
		{src: "[X-\"q\"]\n", want: `test.service:1: invalid section name in header "[X-\"q\"]"`},
		{src: "Description=x\n[Unit]\n", want: `test.service:1: key "Description" outside of any section`},
		{src: exec + "hello world\n", want: `test.service:3: line is not KEY=VALUE: "hello world"`},
		{src: exec + "  = value\n", want: `test.service:3: missing key name before '=' in "= value"`},
		{src: "[Unit]\nDescripton=typo\n", want: `test.service:2: unknown key "Descripton" in section [Unit]`},
		{src: exec + "BindsTo=x.service\n", want: `test.service:3: unknown key "BindsTo" in section [Service]`},
		{src: exec + "User=a b\n", want: `test.service:3: invalid User= value "a b": not a user or group name`},
		{src: exec + "[Install]\nAlias=x.service\n", want: `test.service:4: unknown key "Alias" in section [Install]`},
		{src: exec + "description=x\n", want: `test.service:3: unknown key "description" in section [Service]`},
		{name: "multi-user.target", src: "[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/true\n", want: "multi-user.target:4: [Service] section in target unit multi-user.target"},
		{src: exec + "Description=\xff\n", want: `test.service:3: invalid UTF-8 in line "Description=\xff"`},
		{src: exec + "Description=a\x00b\n", want: `test.service:3: NUL byte in line "Description=a\x00b"`},

		// Line numbers: comments, CRLF and continuations count; a continued line reports its first line.
		{src: "# one\r\n\r\n; three\r\n[Service]\r\nExecStart=/bin/true\r\nType=forking\r\n", want: `test.service:6: invalid Type= value "forking": want simple, oneshot or exec`},
		{src: "[Service]\nExecStart=/bin/true \\\n  \"unterminated\nType=simple\n", want: `test.service:2: invalid ExecStart= value "/bin/true    \"unterminated": unterminated quote`},
		{src: "[Service]\nExecStart=/bin/true\nEnvironment=A=1 \\\n# comment\n  1B=2\n", want: `test.service:3: invalid Environment= value "A=1    1B=2": invalid variable name "1B"`},

		// [Unit] values.
		{src: exec + "[Unit]\nAfter=a.service not-a-unit\n", want: `test.service:4: invalid After= value "a.service not-a-unit": invalid unit name "not-a-unit": want NAME.TYPE`},
		{src: exec + "[Unit]\nBefore=x.bogus\n", want: `test.service:4: invalid Before= value "x.bogus": invalid unit name "x.bogus": unknown unit type "bogus"`},
		{src: exec + "[Unit]\nRequires=db@.service\n", want: `test.service:4: invalid Requires= value "db@.service": invalid unit name "db@.service": a template cannot be named here`},
		{src: exec + "[Unit]\nWants=a/b.service\n", want: `test.service:4: invalid Wants= value "a/b.service": invalid unit name "a/b.service": invalid character '/'`},
		{src: exec + "[Unit]\nWants=@x.service\n", want: `test.service:4: invalid Wants= value "@x.service": invalid unit name "@x.service": empty prefix before '@'`},
		{src: exec + "[Unit]\nAfter=%H.service\n", want: `test.service:4: invalid After= value "%H.service": unknown specifier "%H"`},
		{src: exec + "[Unit]\nDescription=100%\u00e9\n", want: `test.service:4: invalid Description= value "100%é": unknown specifier "%é"`},
		{src: exec + "[Unit]\nConditionPathExists=etc/x\n", want: `test.service:4: invalid ConditionPathExists= value "etc/x": path "etc/x" is not absolute`},
		{src: exec + "[Unit]\nConditionPathExists=!etc/x\n", want: `test.service:4: invalid ConditionPathExists= value "!etc/x": path "etc/x" is not absolute`},
		{src: exec + "[Unit]\nConditionPathExists=|/x\n", want: `test.service:4: invalid ConditionPathExists= value "|/x": triggering conditions ("|" prefix) are not supported`},
		{src: exec + "[Unit]\nConditionPathExists=/%q\n", want: `test.service:4: invalid ConditionPathExists= value "/%q": unknown specifier "%q"`},
		{src: exec + "[Unit]\nConditionPathExists=!/%q\n", want: `test.service:4: invalid ConditionPathExists= value "!/%q": unknown specifier "%q"`},

		// [Service] values.
		{src: exec + "Type=notify\n", want: `test.service:3: invalid Type= value "notify": want simple, oneshot or exec`},
		{src: exec + "Restart=on-abnormal\n", want: `test.service:3: invalid Restart= value "on-abnormal": want no, always or on-failure`},
		{src: exec + "RestartSec=fast\n", want: `test.service:3: invalid RestartSec= value "fast": want a number at "fast"`},
		{src: exec + "RestartSec=infinity\n", want: `test.service:3: invalid RestartSec= value "infinity": a restart delay cannot be infinite`},
		{src: exec + "RestartSec=-1\n", want: `test.service:3: invalid RestartSec= value "-1": want a number at "-1"`},
		{src: exec + "RestartSec=5x\n", want: `test.service:3: invalid RestartSec= value "5x": unknown time unit at "x"`},
		{src: exec + "TimeoutStopSec=5.\n", want: `test.service:3: invalid TimeoutStopSec= value "5.": no digits after '.'`},
		{src: exec + "TimeoutStopSec=1.2.3\n", want: `test.service:3: invalid TimeoutStopSec= value "1.2.3": unknown time unit at ".3"`},
		{src: exec + "TimeoutStartSec=10 parsecs\n", want: `test.service:3: invalid TimeoutStartSec= value "10 parsecs": want a number at "parsecs"`},
		{src: exec + "TimeoutStartSec=300y\n", want: `test.service:3: invalid TimeoutStartSec= value "300y": time span out of range`},
		{src: exec + "KillSignal=SIGFOO\n", want: `test.service:3: invalid KillSignal= value "SIGFOO": want a signal name such as SIGTERM or TERM, or a number`},
		{src: exec + "KillSignal=sigterm\n", want: `test.service:3: invalid KillSignal= value "sigterm": want a signal name such as SIGTERM or TERM, or a number`},
		{src: exec + "KillSignal=0\n", want: `test.service:3: invalid KillSignal= value "0": want a signal number from 1 to 64`},
		{src: exec + "KillSignal=65\n", want: `test.service:3: invalid KillSignal= value "65": want a signal number from 1 to 64`},
		{src: exec + "RemainAfterExit=maybe\n", want: `test.service:3: invalid RemainAfterExit= value "maybe": want yes, no, true, false, 1, 0, on or off`},
		{src: exec + "Environment=NOEQUALS\n", want: `test.service:3: invalid Environment= value "NOEQUALS": "NOEQUALS" is not NAME=VALUE`},
		{src: exec + "Environment=\"A B=c\"\n", want: `test.service:3: invalid Environment= value "\"A B=c\"": invalid variable name "A B"`},
		{src: exec + "Environment=\"A=b\n", want: `test.service:3: invalid Environment= value "\"A=b": unterminated quote`},
		{src: exec + "Environment=A=\\q\n", want: `test.service:3: invalid Environment= value "A=\\q": invalid escape sequence`},
		{src: exec + "Environment=A=\\x00\n", want: `test.service:3: invalid Environment= value "A=\\x00": invalid escape sequence`},
		{src: exec + "Environment=A=\\xff\n", want: `test.service:3: invalid Environment= value "A=\\xff": value of A is not valid UTF-8`},
		{src: exec + "Environment=A=%Z\n", want: `test.service:3: invalid Environment= value "A=%Z": unknown specifier "%Z"`},
		{src: exec + "EnvironmentFile=etc/env\n", want: `test.service:3: invalid EnvironmentFile= value "etc/env": path "etc/env" is not absolute`},
		{src: exec + "EnvironmentFile=- /etc/env\n", want: `test.service:3: invalid EnvironmentFile= value "- /etc/env": path " /etc/env" is not absolute`},
		{src: exec + "WorkingDirectory=srv\n", want: `test.service:3: invalid WorkingDirectory= value "srv": path "srv" is not absolute`},
		{src: exec + "WorkingDirectory=~\n", want: `test.service:3: invalid WorkingDirectory= value "~": path "~" is not absolute`},
		{src: exec + "WorkingDirectory=/srv/%z\n", want: `test.service:3: invalid WorkingDirectory= value "/srv/%z": unknown specifier "%z"`},
		{src: exec + "EnvironmentFile=-/etc/%z\n", want: `test.service:3: invalid EnvironmentFile= value "-/etc/%z": unknown specifier "%z"`},
		{src: exec + "EnvironmentFile=/etc/%H\n", opts: ParseOptions{Specifiers: map[rune]string{'H': "a\x00b"}}, want: `test.service:3: invalid EnvironmentFile= value "/etc/%H": specifier "%H" has a NUL byte in its value`},
		{src: "[Service]\nExecStart=/bin/echo %m\n", opts: ParseOptions{Specifiers: map[rune]string{'m': "\x00"}}, want: `test.service:2: invalid ExecStart= value "/bin/echo %m": specifier "%m" has a NUL byte in its value`},

		// Command lines.
		{src: "[Service]\nExecStart=bin/foo\n", want: `test.service:2: invalid ExecStart= value "bin/foo": executable path "bin/foo" is neither absolute nor a bare file name`},
		{src: "[Service]\nExecStart=\"\"\n", want: `test.service:2: invalid ExecStart= value "\"\"": empty executable path`},
		{src: "[Service]\nExecStart=-\n", want: `test.service:2: invalid ExecStart= value "-": empty executable path`},
		{src: "[Service]\nExecStart=--/bin/x\n", want: `test.service:2: invalid ExecStart= value "--/bin/x": executable path "-/bin/x" is neither absolute nor a bare file name`},
		{src: "[Service]\nExecStart=+/bin/x\n", want: `test.service:2: invalid ExecStart= value "+/bin/x": command prefix "+" is not supported`},
		{src: "[Service]\nExecStart=-@/bin/x x\n", want: `test.service:2: invalid ExecStart= value "-@/bin/x x": command prefix "@" is not supported`},
		{src: "[Service]\nExecStart=/usr/../bin/x\n", want: `test.service:2: invalid ExecStart= value "/usr/../bin/x": executable path "/usr/../bin/x" is not normalized`},
		{src: "[Service]\nExecStart=/bin/\n", want: `test.service:2: invalid ExecStart= value "/bin/": executable path "/bin/" names a directory`},
		{src: "[Service]\nExecStart=..\n", want: `test.service:2: invalid ExecStart= value "..": executable ".." is not a file name`},
		{src: "[Service]\nExecStart=/bin/echo \\q\n", want: `test.service:2: invalid ExecStart= value "/bin/echo \\q": invalid escape sequence`},
		{src: "[Service]\nExecStart=/bin/echo 'a\n", want: `test.service:2: invalid ExecStart= value "/bin/echo 'a": unterminated quote`},
		{src: "[Service]\nExecStart=/bin/echo %y\n", want: `test.service:2: invalid ExecStart= value "/bin/echo %y": unknown specifier "%y"`},
		{src: "[Service]\nExecStart=/bin/%y\n", want: `test.service:2: invalid ExecStart= value "/bin/%y": unknown specifier "%y"`},
		{src: "[Service]\nExecStart=\"/bin/echo\n", want: `test.service:2: invalid ExecStart= value "\"/bin/echo": unterminated quote`},
		{src: exec + "ExecStartPre=/a/./b\n", want: `test.service:3: invalid ExecStartPre= value "/a/./b": executable path "/a/./b" is not normalized`},
		{src: exec + "ExecStartPost=x/y\n", want: `test.service:3: invalid ExecStartPost= value "x/y": executable path "x/y" is neither absolute nor a bare file name`},
		{src: exec + "ExecStop=!/bin/x\n", want: `test.service:3: invalid ExecStop= value "!/bin/x": command prefix "!" is not supported`},

		// The service as a whole.
		{src: "", want: "test.service: service has no ExecStart= (only Type=oneshot services may omit it)"},
		{src: "[Unit]\nDescription=x\n[Service]\nExecStop=/bin/x\n", want: "test.service: service has no ExecStart= (only Type=oneshot services may omit it)"},
		{src: "[Service]\nExecStart=/bin/a\nExecStart=\n", want: "test.service: service has no ExecStart= (only Type=oneshot services may omit it)"},
		{src: "[Service]\nExecStart=/bin/a\n\nExecStart=/bin/b\n", want: "test.service:4: more than one ExecStart= command in a Type=simple service (only Type=oneshot services may have several)"},
		{src: "[Service]\nType=exec\nExecStart=/bin/a ; /bin/b\n", want: "test.service:3: more than one ExecStart= command in a Type=exec service (only Type=oneshot services may have several)"},
		{src: "[Service]\nType=oneshot\nExecStop=/bin/a\n", want: "test.service: service has no ExecStart= and no RemainAfterExit=yes"},
		{src: "[Service]\nType=oneshot\nRemainAfterExit=true\n", want: "test.service: service has no ExecStart= and no ExecStop="},

		// [Install] values.
		{src: exec + "[Install]\nWantedBy=multi-user\n", want: `test.service:4: invalid WantedBy= value "multi-user": invalid unit name "multi-user": want NAME.TYPE`},
		{src: exec + "[Install]\nRequiredBy=%i.target\n", want: `test.service:4: invalid RequiredBy= value "%i.target": invalid unit name ".target": want NAME.TYPE`},

		// Unit names.
		{name: "etcd", src: exec, want: `etcd: invalid unit name "etcd": want NAME.TYPE`},
		{name: "etcd.socket", src: exec, want: `etcd.socket: invalid unit name "etcd.socket": only .service and .target units are supported`},
		{name: "dir/etcd.service", src: exec, want: `dir/etcd.service: invalid unit name "dir/etcd.service": invalid character '/'`},
		{name: "@x.service", src: exec, want: `@x.service: invalid unit name "@x.service": empty prefix before '@'`},
		{name: ".service", src: exec, want: `.service: invalid unit name ".service": want NAME.TYPE`},
		{name: strings.Repeat("a", 248) + ".service", src: exec, want: strings.Repeat("a", 248) + `.service: invalid unit name "` + strings.Repeat("a", 248) + `.service": longer than 255 bytes`},
	} {
		name := tc.name
		if name == "" {
			name = "test.service"
		}
		t.Run(tc.want, func(t *testing.T) {
			u, err := ParseWith(name, strings.NewReader(tc.src), tc.opts)
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", u)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is %T, want *SyntaxError", err, err)
			}
			if se.File != name {
				t.Errorf("File = %q, want %q", se.File, name)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

func TestParseFixtures(t *testing.T) {
	host := ParseOptions{Specifiers: map[rune]string{'H': "node1", 'm': "4f1c0d1e2a"}}
	for _, tc := range []struct {
		file string // in testdata
		name string // unit name to parse it as; default its base name
		opts ParseOptions
		want Unit // Name, Path and Source are filled in
	}{
		{
			file: "apache.service",
			want: Unit{
				Description: "My Apache Frontend",
				After:       []string{"docker.service"},
				Requires:    []string{"docker.service"},
				Service: func() Service {
					s := service()
					s.TimeoutStartSec = 0
					s.ExecStartPre = []Command{
						cmd("-", "/usr/bin/docker", "kill", "apache1"),
						cmd("-", "/usr/bin/docker", "rm", "apache1"),
						cmd("/usr/bin/docker", "pull", "coreos/apache"),
					}
					s.ExecStart = []Command{cmd("/usr/bin/docker", "run", "--rm", "--name", "apache1", "-p", "80:80",
						"coreos/apache", "/usr/sbin/apache2ctl", "-D", "FOREGROUND")}
					s.ExecStop = []Command{cmd("/usr/bin/docker", "stop", "apache1")}
					return s
				}(),
				Extra: map[string]map[string][]string{"X-Fleet": {"Conflicts": {"apache*.service"}}},
			},
		},
		{
			file: "apache@.service",
			name: "apache@8080.service",
			want: Unit{
				Description: "My Apache Frontend 8080",
				After:       []string{"docker.service"},
				Requires:    []string{"docker.service"},
				Service: func() Service {
					s := service()
					s.TimeoutStartSec = 0
					s.ExecStartPre = []Command{
						cmd("-", "/usr/bin/docker", "kill", "apache8080"),
						cmd("-", "/usr/bin/docker", "rm", "apache8080"),
						cmd("/usr/bin/docker", "pull", "coreos/apache"),
					}
					s.ExecStart = []Command{cmd("/usr/bin/docker", "run", "--rm", "--name", "apache8080", "-p", "8080:80",
						"coreos/apache", "/usr/sbin/apache2ctl", "-D", "FOREGROUND")}
					s.ExecStop = []Command{cmd("/usr/bin/docker", "stop", "apache8080")}
					s.Restart = "on-failure"
					s.RestartSec = 5 * time.Second
					return s
				}(),
				Install: Install{WantedBy: []string{"multi-user.target"}},
				Extra: map[string]map[string][]string{"X-Fleet": {
					"Conflicts":       {"apache@*.service"},
					"MachineMetadata": {"region=us-east-1", "disk=ssd"},
				}},
			},
		},
		{
			file: "apache@.service", // the template itself, as fleet submits it: %i is empty
			want: Unit{
				Description: "My Apache Frontend ",
				After:       []string{"docker.service"},
				Requires:    []string{"docker.service"},
				Service: func() Service {
					s := service()
					s.TimeoutStartSec = 0
					s.ExecStartPre = []Command{
						cmd("-", "/usr/bin/docker", "kill", "apache"),
						cmd("-", "/usr/bin/docker", "rm", "apache"),
						cmd("/usr/bin/docker", "pull", "coreos/apache"),
					}
					s.ExecStart = []Command{cmd("/usr/bin/docker", "run", "--rm", "--name", "apache", "-p", ":80",
						"coreos/apache", "/usr/sbin/apache2ctl", "-D", "FOREGROUND")}
					s.ExecStop = []Command{cmd("/usr/bin/docker", "stop", "apache")}
					s.Restart = "on-failure"
					s.RestartSec = 5 * time.Second
					return s
				}(),
				Install: Install{WantedBy: []string{"multi-user.target"}},
				Extra: map[string]map[string][]string{"X-Fleet": {
					"Conflicts":       {"apache@*.service"},
					"MachineMetadata": {"region=us-east-1", "disk=ssd"},
				}},
			},
		},
		{
			file: "apache-discovery@.service",
			name: "apache-discovery@80.service",
			opts: host,
			want: Unit{
				Description: "Announce apache-discovery on port 80",
				Requires:    []string{"etcd.service"},
				Wants:       []string{"apache@80.service"},
				After:       []string{"etcd.service", "apache@80.service"},
				Service: func() Service {
					s := service()
					s.EnvironmentFiles = []EnvironmentFile{{Path: "/etc/environment"}}
					s.ExecStart = []Command{cmd("/bin/sh", "-c",
						`while true; do etcdctl set /services/website/apache@80 '{ "host": "node1", "port": 80, "version": "52c7248a14" }' --ttl 60; sleep 45; done`)}
					s.ExecStop = []Command{cmd("/usr/bin/etcdctl", "rm", "/services/website/apache@80")}
					return s
				}(),
				Extra: map[string]map[string][]string{"X-Fleet": {"MachineOf": {"apache@%i.service"}}},
			},
		},
		{
			file: "etcd.service",
			opts: host,
			want: Unit{
				Description: "etcd: the cluster registry on node1",
				Wants:       []string{"network-online.target"},
				After:       []string{"network-online.target"},
				Conditions:  []Condition{{Path: "/etc/corebox/etcd.disabled", Negate: true}},
				Service: Service{
					Type:         "exec",
					ExecStartPre: []Command{cmd("/usr/bin/corebox", "etcd", "--check-data-dir", "${ETCD_DATA_DIR}")},
					ExecStart: []Command{cmd("/usr/bin/corebox", "etcd", "--name=${ETCD_NAME}",
						"--data-dir", "${ETCD_DATA_DIR}", "$ETCD_OPTS")},
					Restart:          "always",
					RestartSec:       10 * time.Second,
					TimeoutStopSec:   90 * time.Second,
					Environment:      []string{"ETCD_NAME=4f1c0d1e2a", "ETCD_DATA_DIR=/var/lib/etcd", "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379"},
					EnvironmentFiles: []EnvironmentFile{{Path: "/etc/corebox/etcd.env", Optional: true}},
					WorkingDirectory: "/var/lib/etcd",
					KillSignal:       syscall.SIGINT,
				},
				Install: Install{WantedBy: []string{"multi-user.target"}},
			},
		},
		{
			file: "multi-user.target",
			want: Unit{
				Description: "Multi-User System",
				Requires:    []string{"basic.target"},
				After:       []string{"basic.target"},
			},
		},
		{
			file: "setup-network.service",
			want: Unit{
				Description: "Bring up setup-network's interfaces",
				Before:      []string{"network-online.target"},
				Conditions:  []Condition{{Path: "/sys/class/net/eth0"}},
				Service: func() Service {
					s := service()
					s.Type = "oneshot"
					s.TimeoutStartSec = 0
					s.RemainAfterExit = true
					s.ExecStart = []Command{
						cmd("/usr/bin/corebox", "ip", "link", "set", "lo", "up"),
						cmd("-", "/usr/bin/corebox", "ip", "link", "set", "eth0", "up"),
						cmd("/usr/bin/corebox", "dhclient", "eth0"),
					}
					s.ExecStop = []Command{cmd("/usr/bin/corebox", "ip", "link", "set", "eth0", "down")}
					return s
				}(),
				Install: Install{RequiredBy: []string{"network-online.target"}},
			},
		},
	} {
		t.Run(tc.file+" as "+tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", tc.file)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			want.Source = src
			var got *Unit
			if tc.name == "" {
				want.Name, want.Path = tc.file, path
				got, err = ParseFileWith(path, tc.opts)
			} else {
				want.Name = tc.name
				got, err = ParseWith(tc.name, strings.NewReader(string(src)), tc.opts)
			}
			if err != nil {
				t.Fatal(err)
			}
			diffUnits(t, got, &want)
		})
	}
}

func TestParseFile(t *testing.T) {
	t.Run("defaults to no host specifiers", func(t *testing.T) {
		_, err := ParseFile(filepath.Join("testdata", "etcd.service"))
		want := `testdata/etcd.service:2: invalid Description= value "etcd: the cluster registry on %H": unknown specifier "%H"`
		if err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := ParseFile(filepath.Join(t.TempDir(), "gone.service"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("err = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("errors name the path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.service")
		if err := os.WriteFile(path, []byte("[Service]\nExecStart=/bin/true\nRestart=sometimes\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ParseFile(path)
		var se *SyntaxError
		if !errors.As(err, &se) || se.File != path || se.Line != 3 {
			t.Fatalf("err = %#v, want a SyntaxError at %s:3", err, path)
		}
		if want := path + `:3: invalid Restart= value "sometimes": want no, always or on-failure`; err.Error() != want {
			t.Errorf("err = %s, want %s", err, want)
		}
	})
	t.Run("bad name in path", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.conf")
		if err := os.WriteFile(path, []byte(exec), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ParseFile(path)
		if want := path + `: invalid unit name "bad.conf": unknown unit type "conf"`; err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := Parse("x.service", iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
	var se *SyntaxError
	if errors.As(err, &se) {
		t.Errorf("a read error is a SyntaxError: %v", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	src := exec + "[Unit]\nDescription=" + strings.Repeat("x", maxSourceSize) + "\n"
	_, err := Parse("big.service", strings.NewReader(src))
	if want := fmt.Sprintf("big.service: unit file is larger than %d bytes", maxSourceSize); err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestLogicalLines(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []logicalLine
	}{
		{"", nil},
		{"a\nb", []logicalLine{{1, "a"}, {2, "b"}}},
		{"a\r\n\r\nb\r\n", []logicalLine{{1, "a"}, {2, ""}, {3, "b"}}},
		{"\ufeffa\n", []logicalLine{{1, "a"}}},
		{"# c\n  ; c\nx\n", []logicalLine{{3, "x"}}},
		{"a\\\nb\\\n c\nd", []logicalLine{{1, "a b  c"}, {4, "d"}}},
		{"a\\\\\nb", []logicalLine{{1, `a\\`}, {2, "b"}}},
		{"a\\\\\\\nb", []logicalLine{{1, `a\\ b`}}},
		{"a \\\n# c \\\n\tb", []logicalLine{{1, "a  \tb"}}},
		{"a\\\n\nb", []logicalLine{{1, "a "}, {3, "b"}}},
		{"a\\", []logicalLine{{1, "a "}}},
		{"# c \\\na", []logicalLine{{2, "a"}}},
	} {
		if got := logicalLines([]byte(tc.src)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("logicalLines(%q) = %+v, want %+v", tc.src, got, tc.want)
		}
	}
}

func TestCommandLines(t *testing.T) {
	spec := newSpecifiers("web@a b.service", map[rune]string{'H': "host"})
	for _, tc := range []struct {
		line string
		want []Command
		err  string
	}{
		{line: "/bin/echo a  b\tc", want: []Command{cmd("/bin/echo", "a", "b", "c")}},
		{line: `/bin/echo "a b" 'c d'`, want: []Command{cmd("/bin/echo", "a b", "c d")}},
		{line: `/bin/echo a"b c"d 'e'"f"`, want: []Command{cmd("/bin/echo", "ab cd", "ef")}},
		{line: `/bin/echo "it's" 'say "hi"'`, want: []Command{cmd("/bin/echo", "it's", `say "hi"`)}},
		{line: `/bin/echo "a\"b" \" 'c\'d'`, want: []Command{cmd("/bin/echo", `a"b`, `"`, "c'd")}},
		{line: `/bin/echo a\nb \t \x41 \101 \u00e9 \U0001F600 \s \\ \a\b\f\r\v`, want: []Command{cmd("/bin/echo", "a\nb", "\t", "A", "A", "é", "😀", " ", `\`, "\a\b\f\r\v")}},
		{line: `/bin/echo "\x41\s\""`, want: []Command{cmd("/bin/echo", `A "`)}},
		{line: `/bin/echo \xe9`, want: []Command{cmd("/bin/echo", "\xe9")}},
		{line: `/bin/echo \x4a\x4A\u00C9\177`, want: []Command{cmd("/bin/echo", "JJÉ\x7f")}},
		{line: `/bin/echo \108`, err: "invalid escape sequence"},
		{line: `/bin/echo \xg0`, err: "invalid escape sequence"},
		{line: `/bin/echo "" ''`, want: []Command{cmd("/bin/echo", "", "")}},
		{line: `"/bin/echo" x`, want: []Command{cmd("/bin/echo", "x")}},
		{line: `"-/bin/false"`, want: []Command{cmd("-", "/bin/false")}},
		{line: "-/bin/false x", want: []Command{cmd("-", "/bin/false", "x")}},
		{line: "true", want: []Command{cmd("true")}},
		{line: "/bin/a x ; /bin/b y", want: []Command{cmd("/bin/a", "x"), cmd("/bin/b", "y")}},
		{line: "/bin/a ; -/bin/b ;", want: []Command{cmd("/bin/a"), cmd("-", "/bin/b")}},
		{line: "/bin/a ;\t/bin/b", want: []Command{cmd("/bin/a"), cmd("/bin/b")}},
		{line: `/bin/echo \; x`, want: []Command{cmd("/bin/echo", ";", "x")}},
		{line: `/bin/echo ";" a;b ;x`, want: []Command{cmd("/bin/echo", ";", "a;b", ";x")}},
		{line: `/bin/sh -c 'echo $HOME ${X} $$'`, want: []Command{cmd("/bin/sh", "-c", "echo $HOME ${X} $$")}},
		{line: `/bin/%p %i "%i" %H %% 5%`, want: []Command{cmd("/bin/web", "a b", "a b", "host", "%", "5%")}},
		{line: `/bin/echo \%i`, err: "invalid escape sequence"},
		{line: `/bin/echo a\`, err: "trailing backslash"},
		{line: `/bin/echo "a`, err: "unterminated quote"},
		{line: `/bin/echo \z`, err: "invalid escape sequence"},
		{line: `/bin/echo \x4`, err: "invalid escape sequence"},
		{line: `/bin/echo \000`, err: "invalid escape sequence"},
		{line: `/bin/echo \400`, err: "invalid escape sequence"},
		{line: `/bin/echo \ud800`, err: "invalid escape sequence"},
		{line: `/bin/echo \U00110000`, err: "invalid escape sequence"},
		{line: `/bin/echo %z`, err: `unknown specifier "%z"`},
		{line: ":/bin/x", err: `command prefix ":" is not supported`},
		{line: "/bin/x ; ..", err: `executable ".." is not a file name`},
		{line: strings.Repeat("x", 256), err: fmt.Sprintf("executable name %q is too long", strings.Repeat("x", 256))},
	} {
		got, err := parseCommands(tc.line, spec)
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("parseCommands(%q) error = %v, want %s", tc.line, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("parseCommands(%q): %v", tc.line, err)
		case tc.err == "" && !reflect.DeepEqual(got, tc.want):
			t.Errorf("parseCommands(%q) =\n %+v\nwant\n %+v", tc.line, got, tc.want)
		}
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{
		"A":     "x y",
		"B":     "1",
		"E":     "",
		"S":     "  \t ",
		"Q":     `a "b c" 'd'  e\ f`,
		"OPEN":  `"a b`,
		"TAIL":  `a\`,
		"DOL":   "$B ${B}",
		"a.b":   "never",
		"CURLY": "}",
	}
	for _, tc := range []struct {
		argv []string
		want []string
	}{
		{[]string{"/bin/echo"}, []string{"/bin/echo"}},
		{[]string{"/bin/echo", "$A"}, []string{"/bin/echo", "x", "y"}},
		{[]string{"/bin/echo", "${A}"}, []string{"/bin/echo", "x y"}},
		{[]string{"/bin/echo", "pre${B}post", "--a=${A}"}, []string{"/bin/echo", "pre1post", "--a=x y"}},
		{[]string{"/bin/echo", "$$", "$$A", "a$$b", "$${B}"}, []string{"/bin/echo", "$", "$A", "a$b", "${B}"}},
		{[]string{"/bin/echo", "$C", "x"}, []string{"/bin/echo", "x"}},
		{[]string{"/bin/echo", "${C}", "<${C}>"}, []string{"/bin/echo", "", "<>"}},
		{[]string{"/bin/echo", "$E", "$S", "${E}"}, []string{"/bin/echo", ""}},
		{[]string{"/bin/echo", "$Q"}, []string{"/bin/echo", "a", "b c", "d", "e f"}},
		{[]string{"/bin/echo", "$OPEN", "$TAIL"}, []string{"/bin/echo", "a b", "a"}},
		{[]string{"/bin/echo", "$DOL", "${DOL}"}, []string{"/bin/echo", "$B", "${B}", "$B ${B}"}},
		{[]string{"/bin/echo", "a$Bb", "x$A"}, []string{"/bin/echo", "a$Bb", "x$A"}},
		{[]string{"/bin/echo", "$A$B", "$a.b", "$", "$1", "${a.b}"}, []string{"/bin/echo", "never"}},
		{[]string{"/bin/echo", "${A:-d}", "${B", "${", "$}", "${CURLY}}"}, []string{"/bin/echo", "${A:-d}", "${B", "${", "}}"}},
		{[]string{"/bin/echo", "${A:-d}${B}"}, []string{"/bin/echo", "${A:-d}1"}},
		{[]string{"$A", "z"}, []string{"x", "y", "z"}},
		{[]string{"$C"}, []string{}},
	} {
		c := Command{Argv: tc.argv}
		before := append([]string(nil), tc.argv...)
		got := c.Expand(env)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Expand(%q) = %q, want %q", tc.argv, got, tc.want)
		}
		if !reflect.DeepEqual(c.Argv, before) {
			t.Errorf("Expand(%q) changed Argv to %q", before, c.Argv)
		}
	}
	if got := (Command{Argv: []string{"/bin/a", "$X", "${X}"}}).Expand(nil); !reflect.DeepEqual(got, []string{"/bin/a", ""}) {
		t.Errorf("Expand(nil) = %q", got)
	}
}

func TestParseEnvironmentFile(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want []string
		err  string
	}{
		{src: "", want: nil},
		{src: "# only\n; comments\n\n", want: nil},
		{src: "A=1\nB=2", want: []string{"A=1", "B=2"}},
		{src: "A=1\r\nB=2\r\n", want: []string{"A=1", "B=2"}},
		{src: "  A  =   spaced value  \t\n", want: []string{"A=spaced value"}},
		{src: "A=\nB=''\nC=\"\"", want: []string{"A=", "B=", "C="}},
		{src: "A=b # not a comment ; either", want: []string{"A=b # not a comment ; either"}},
		{src: "A='x $y \\z \"q\"'", want: []string{`A=x $y \z "q"`}},
		{src: `A="\"\\\$\` + "`" + `\n"`, want: []string{`A="\$` + "`" + `\n`}},
		{src: `A="x"y'z' "w"`, want: []string{`A=xy'z' "w"`}},
		{src: `A="x"  'y' "w"z`, want: []string{"A=xywz"}},
		{src: `A=x "y" 'z'`, want: []string{`A=x "y" 'z'`}},
		{src: `A=x\ \ `, want: []string{"A=x  "}},
		{src: `A=\"x\"`, want: []string{`A="x"`}},
		{src: "A=first\\\nsecond\nB=2", want: []string{"A=firstsecond", "B=2"}},
		{src: "A=\"one\ntwo\\\nthree\"\nB=2", want: []string{"A=one\ntwothree", "B=2"}},
		{src: "A='one\ntwo'", want: []string{"A=one\ntwo"}},
		{src: "A=1\nB=2\nA=3", want: []string{"A=3", "B=2"}},
		{src: "_a9=ok", want: []string{"_a9=ok"}},
		{src: "A=é ü", want: []string{"A=é ü"}},
		{src: "A", err: `line 1: line is not KEY=VALUE: "A"`},
		{src: "A=1\n\n  B C\nD=2", err: `line 3: line is not KEY=VALUE: "B C"`},
		{src: "# c\nA B=c", err: `line 2: invalid variable name "A B"`},
		{src: "1A=b", err: `line 1: invalid variable name "1A"`},
		{src: "A=ok\n1B=\nC=1", err: `line 2: invalid variable name "1B"`},
		{src: "A=ok\n 1B='x'\nC=1", err: `line 2: invalid variable name "1B"`},
		{src: "export A=b", err: `line 1: invalid variable name "export A"`},
		{src: "=b", err: `line 1: line is not KEY=VALUE: "=b"`},
		{src: " =b=c", err: `line 1: invalid variable name "=b"`},
		{src: "A=1\nB='unterminated\n\n", err: "line 2: unterminated quote in value of B"},
		{src: "A=\"x\\", err: "line 1: unterminated quote in value of A"},
		{src: "A=ok\nB=\xff", err: "line 2: value of B is not valid UTF-8"},
		{src: "A=ok\nB=x\xff \nC=1", err: "line 2: value of B is not valid UTF-8"},
		{src: "A=ok\nB=a\x00b", err: "line 2: NUL byte"},
		{src: "A=\"multi\nline\"\nB\n", err: `line 3: line is not KEY=VALUE: "B"`},
	} {
		got, err := ParseEnvironmentFile(strings.NewReader(tc.src))
		switch {
		case tc.err != "":
			var se *SyntaxError
			if err == nil || err.Error() != tc.err || !errors.As(err, &se) {
				t.Errorf("ParseEnvironmentFile(%q) error = %v, want SyntaxError %s", tc.src, err, tc.err)
			}
		case err != nil:
			t.Errorf("ParseEnvironmentFile(%q): %v", tc.src, err)
		case !reflect.DeepEqual(got, tc.want):
			t.Errorf("ParseEnvironmentFile(%q) = %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestParseEnvironmentFileLimits(t *testing.T) {
	boom := errors.New("boom")
	if _, err := ParseEnvironmentFile(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("read error: err = %v, want it to wrap %v", err, boom)
	}
	_, err := ParseEnvironmentFile(strings.NewReader("A=" + strings.Repeat("x", maxSourceSize)))
	var se *SyntaxError
	if want := fmt.Sprintf("environment file is larger than %d bytes", maxSourceSize); !errors.As(err, &se) || err.Error() != want {
		t.Errorf("err = %v, want SyntaxError %s", err, want)
	}
}

func TestParseEnvironmentFileFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want []string
	}{
		{"etcd.env", []string{
			"ETCD_NAME=node1.example",
			"ETCD_OPTS=--heartbeat-interval 100 --election-timeout 1000",
			"ETCD_INITIAL_CLUSTER=node1=http://10.0.0.1:2380,node2=http://10.0.0.2:2380",
			"ETCD_DATA_DIR=/var/lib/etcd",
			"MOTD=line one\nline two \"quoted\" $HOME",
			"LONG=firstsecond",
		}},
		{"environment.env", []string{"COREOS_PUBLIC_IPV4=203.0.113.7", "COREOS_PRIVATE_IPV4=10.0.0.7"}},
	} {
		f, err := os.Open(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseEnvironmentFile(f)
		f.Close()
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
		} else if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.file, got, tc.want)
		}
	}
	// The variables of an environment file feed Expand.
	env := map[string]string{}
	f, err := os.Open(filepath.Join("testdata", "etcd.env"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	entries, err := ParseEnvironmentFile(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range entries {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	c := Command{Argv: []string{"/usr/bin/corebox", "etcd", "--name=${ETCD_NAME}", "$ETCD_OPTS"}}
	want := []string{"/usr/bin/corebox", "etcd", "--name=node1.example", "--heartbeat-interval", "100", "--election-timeout", "1000"}
	if got := c.Expand(env); !reflect.DeepEqual(got, want) {
		t.Errorf("Expand = %q, want %q", got, want)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in       string
		want     time.Duration
		infinite bool
		err      string
	}{
		{in: "0", want: 0},
		{in: "5", want: 5 * time.Second},
		{in: "5s", want: 5 * time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1min 30s", want: 90 * time.Second},
		{in: "1min30s", want: 90 * time.Second},
		{in: "1 min 30", want: 90 * time.Second},
		{in: "2m", want: 2 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "1.5h", want: 90 * time.Minute},
		{in: ".5s", want: 500 * time.Millisecond},
		{in: "0.25", want: 250 * time.Millisecond},
		{in: "1d 2hr 3minutes 4seconds 5msec 6usec", want: 26*time.Hour + 3*time.Minute + 4*time.Second + 5*time.Millisecond + 6*time.Microsecond},
		{in: "1w", want: 7 * 24 * time.Hour},
		{in: "2weeks", want: 14 * 24 * time.Hour},
		{in: "1M", want: 2629800 * time.Second},
		{in: "1y", want: 31557600 * time.Second},
		{in: "3us 4µs 5μs", want: 12 * time.Microsecond},
		{in: "1.0000009s", want: time.Second},
		{in: "  7  ", want: 7 * time.Second},
		{in: "infinity", infinite: true},
		{in: " infinity ", infinite: true},
		{in: "", err: "empty time span"},
		{in: "s", err: `want a number at "s"`},
		{in: "-1", err: `want a number at "-1"`},
		{in: "+1", err: `want a number at "+1"`},
		{in: "1x", err: `unknown time unit at "x"`},
		{in: "1 x", err: `want a number at "x"`},
		{in: "1.", err: "no digits after '.'"},
		{in: "1.s", err: "no digits after '.'"},
		{in: ".", err: "no digits after '.'"},
		{in: "infinite", err: `want a number at "infinite"`},
		{in: "1 infinity", err: `want a number at "infinity"`},
		{in: "292y", want: 292 * 31557600 * time.Second},
		{in: "293y", err: "time span out of range"},
		{in: "9223372036.854775s", want: time.Duration(9223372036854775000)},
		{in: "9223372036.854776s", err: "time span out of range"},
		{in: "99999999999999999999", err: "time span out of range"},
		{in: "9223372036s", want: 9223372036 * time.Second},
		{in: "9223372036s 854775us", want: time.Duration(9223372036854775000)},
		{in: "9223372036s 854776us", err: "time span out of range"},
	} {
		d, inf, err := parseDuration(tc.in)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseDuration(%q) = %v, %v, %v; want error %s", tc.in, d, inf, err, tc.err)
			}
		case err != nil:
			t.Errorf("parseDuration(%q): %v", tc.in, err)
		case d != tc.want || inf != tc.infinite:
			t.Errorf("parseDuration(%q) = %v, %v; want %v, %v", tc.in, d, inf, tc.want, tc.infinite)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
	}{
		{"SIGTERM", syscall.SIGTERM}, {"TERM", syscall.SIGTERM}, {"15", syscall.SIGTERM},
		{"SIGKILL", syscall.SIGKILL}, {"KILL", syscall.SIGKILL}, {"9", syscall.SIGKILL},
		{"SIGINT", syscall.SIGINT}, {"SIGHUP", syscall.SIGHUP}, {"QUIT", syscall.SIGQUIT},
		{"SIGUSR1", syscall.SIGUSR1}, {"USR2", syscall.SIGUSR2}, {"SIGWINCH", syscall.SIGWINCH},
		{"SIGCONT", syscall.SIGCONT}, {"STOP", syscall.SIGSTOP}, {"SIGPOLL", syscall.SIGIO},
		{"SIGILL", syscall.SIGILL}, {"SIGTRAP", syscall.SIGTRAP}, {"SIGABRT", syscall.SIGABRT},
		{"IOT", syscall.SIGABRT}, {"SIGBUS", syscall.SIGBUS}, {"SIGFPE", syscall.SIGFPE},
		{"SIGSEGV", syscall.SIGSEGV}, {"SIGPIPE", syscall.SIGPIPE}, {"SIGALRM", syscall.SIGALRM},
		{"SIGCHLD", syscall.SIGCHLD}, {"SIGTSTP", syscall.SIGTSTP}, {"SIGTTIN", syscall.SIGTTIN},
		{"SIGTTOU", syscall.SIGTTOU}, {"SIGURG", syscall.SIGURG}, {"SIGXCPU", syscall.SIGXCPU},
		{"SIGXFSZ", syscall.SIGXFSZ}, {"SIGVTALRM", syscall.SIGVTALRM}, {"SIGPROF", syscall.SIGPROF},
		{"SIGIO", syscall.SIGIO}, {"SIGSYS", syscall.SIGSYS},
		{"1", syscall.SIGHUP}, {"64", syscall.Signal(64)}, {"034", syscall.Signal(34)},
	} {
		got, err := parseSignal(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSignal(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "0", "65", "-1", "+9", "SIG", "SIGterm", "term", "SIGSIGTERM", "RTMIN+1", "9 "} {
		if got, err := parseSignal(in); err == nil {
			t.Errorf("parseSignal(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseBool(t *testing.T) {
	for in, want := range map[string]bool{
		"1": true, "yes": true, "y": true, "true": true, "t": true, "on": true, "YES": true, "True": true, "ON": true,
		"0": false, "no": false, "n": false, "false": false, "f": false, "off": false, "NO": false, "Off": false,
	} {
		if got, err := parseBool(in); err != nil || got != want {
			t.Errorf("parseBool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "2", "yess", "enable", " yes"} {
		if _, err := parseBool(in); err == nil {
			t.Errorf("parseBool(%q) succeeded", in)
		}
	}
	// Every spelling works through RemainAfterExit=.
	for _, v := range []string{"yes", "true", "1", "on", "no", "false", "0", "off"} {
		u, err := Parse("t.service", strings.NewReader(exec+"RemainAfterExit="+v+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := parseBool(v); u.Service.RemainAfterExit != want {
			t.Errorf("RemainAfterExit=%s gave %v", v, u.Service.RemainAfterExit)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  string
	}{
		{name: "etcd.service"},
		{name: "multi-user.target"},
		{name: "apache@.service"},
		{name: "apache@8080.service"},
		{name: "a@b@c.service"},
		{name: `sys-devices-x\x2d1.service`},
		{name: "a:b_c.d-e.service"},
		{name: strings.Repeat("a", 247) + ".service"},
		{name: "", err: `invalid unit name "": empty`},
		{name: "etcd", err: `invalid unit name "etcd": want NAME.TYPE`},
		{name: ".service", err: `invalid unit name ".service": want NAME.TYPE`},
		{name: "etcd.", err: `invalid unit name "etcd.": unknown unit type ""`},
		{name: "etcd.Service", err: `invalid unit name "etcd.Service": unknown unit type "Service"`},
		{name: "x.mount", err: `invalid unit name "x.mount": only .service and .target units are supported`},
		{name: "@.service", err: `invalid unit name "@.service": empty prefix before '@'`},
		{name: "a b.service", err: `invalid unit name "a b.service": invalid character ' '`},
		{name: "é.service", err: `invalid unit name "é.service": invalid character 'é'`},
		{name: "a@b c.service", err: `invalid unit name "a@b c.service": invalid character ' '`},
		{name: strings.Repeat("a", 248) + ".service", err: fmt.Sprintf("invalid unit name %q: longer than 255 bytes", strings.Repeat("a", 248)+".service")},
	} {
		err := CheckName(tc.name)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || err.Error() != tc.err) {
			t.Errorf("CheckName(%q) = %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestExpandSpecifiers(t *testing.T) {
	extra := map[rune]string{'H': "node1", 'm': "abc", 'i': "not used"}
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{name: "web@8080.service", in: "%n|%N|%p|%i|%%|%H|%m", want: "web@8080.service|web@8080|web|8080|%|node1|abc"},
		{name: "web.service", in: "%p-%i-%N", want: "web--web"},
		{name: "web@.service", in: "%p-%i-%N", want: "web--web@"},
		{name: "a@b@c.target", in: "%p %i", want: "a b@c"},
		{name: "web@1.service", in: "MachineOf=%p-data@%i.service", want: "MachineOf=web-data@1.service"},
		{name: "web.service", in: "no specifiers", want: "no specifiers"},
		{name: "web.service", in: "trailing %", want: "trailing %"},
		{name: "web.service", in: "%%%%n", want: "%%n"},
		{name: "web.service", in: "%b", err: `unknown specifier "%b"`},
		{name: "web.service", in: "%\xff", err: `unknown specifier "%\xff"`},
	} {
		got, err := ExpandSpecifiers(tc.name, tc.in, extra)
		switch {
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("ExpandSpecifiers(%q, %q) = %q, %v; want error %s", tc.name, tc.in, got, err, tc.err)
			}
		case err != nil || got != tc.want:
			t.Errorf("ExpandSpecifiers(%q, %q) = %q, %v; want %q", tc.name, tc.in, got, err, tc.want)
		}
	}
}

func TestSyntaxErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		err  SyntaxError
		want string
	}{
		{SyntaxError{File: "a.service", Line: 3, Msg: "bad"}, "a.service:3: bad"},
		{SyntaxError{File: "a.service", Msg: "bad"}, "a.service: bad"},
		{SyntaxError{Line: 3, Msg: "bad"}, "line 3: bad"},
		{SyntaxError{Msg: "bad"}, "bad"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%#v.Error() = %q, want %q", tc.err, got, tc.want)
		}
	}
}
