package machine

import (
	"reflect"
	"testing"
)

func TestParseCmdline(t *testing.T) {
	tests := []struct {
		in     string
		args   []Param
		params map[string]string
		init   []string
	}{
		{in: "", params: map[string]string{}},
		{in: " \t\n", params: map[string]string{}},
		{
			in:     "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n",
			args:   []Param{{"BOOT_IMAGE", "/vmlinuz", true}, {"root", "/dev/sda1", true}, {"ro", "", false}, {"quiet", "", false}},
			params: map[string]string{"BOOT_IMAGE": "/vmlinuz", "root": "/dev/sda1", "ro": "", "quiet": ""},
		},
		{
			in:     `corebox.hostname="a b"  x=`,
			args:   []Param{{"corebox.hostname", "a b", true}, {"x", "", true}},
			params: map[string]string{"corebox.hostname": "a b", "x": ""},
		},
		{
			in:     `"dyndbg=file foo.c +p" next`,
			args:   []Param{{"dyndbg", "file foo.c +p", true}, {"next", "", false}},
			params: map[string]string{"dyndbg": "file foo.c +p", "next": ""},
		},
		{
			in:     `a=x"y z"w b`,
			args:   []Param{{"a", `x"y z"w`, true}, {"b", "", false}},
			params: map[string]string{"a": `x"y z"w`, "b": ""},
		},
		{
			in:     `a="unclosed quote runs on`,
			args:   []Param{{"a", "unclosed quote runs on", true}},
			params: map[string]string{"a": "unclosed quote runs on"},
		},
		{
			in:     `a="" b=" c=="d"`,
			args:   []Param{{"a", "", true}, {"b", ` c=="d`, true}},
			params: map[string]string{"a": "", "b": ` c=="d`},
		},
		{
			in:     `a="`,
			args:   []Param{{"a", "", true}},
			params: map[string]string{"a": ""},
		},
		{
			in:     "console=tty0 console=ttyS0,115200 console=ttyS1",
			args:   []Param{{"console", "tty0", true}, {"console", "ttyS0,115200", true}, {"console", "ttyS1", true}},
			params: map[string]string{"console": "ttyS1"},
		},
		{
			in:     `ro -- single "x y" k="v w" --`,
			args:   []Param{{"ro", "", false}},
			params: map[string]string{"ro": ""},
			init:   []string{"single", "x y", "k=v w", "--"},
		},
		{
			in:     "a==b =c",
			args:   []Param{{"a", "=b", true}, {"", "c", true}},
			params: map[string]string{"a": "=b", "": "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c := ParseCmdline(tt.in)
			if !reflect.DeepEqual(c.Args, tt.args) {
				t.Errorf("Args = %+v, want %+v", c.Args, tt.args)
			}
			if !reflect.DeepEqual(c.Params, tt.params) {
				t.Errorf("Params = %q, want %q", c.Params, tt.params)
			}
			if !reflect.DeepEqual(c.Init, tt.init) {
				t.Errorf("Init = %q, want %q", c.Init, tt.init)
			}
		})
	}
}

func TestCmdlineAccessors(t *testing.T) {
	type want struct {
		source    string
		debug     bool
		emergency bool
		hostname  string
		ip        *IPConfig
		err       string // Validate's error, "" for none
	}
	tests := []struct {
		in   string
		want want
	}{
		{"", want{}},
		{"quiet", want{}},
		{"corebox.config=https://boot.example.com/m/node1.json", want{source: "https://boot.example.com/m/node1.json"}},
		{"corebox.config=http://10.0.0.1:8080/c.json?mac=52:54:00:12:34:56", want{source: "http://10.0.0.1:8080/c.json?mac=52:54:00:12:34:56"}},
		{"corebox.config=/var/lib/corebox/config.json", want{source: "/var/lib/corebox/config.json"}},
		{"corebox.config=", want{}},
		{"corebox.config=config.json", want{err: `corebox.config=: config source "config.json" is neither an absolute path nor an http(s) URL`}},
		{"corebox.config=ftp://x/c.json", want{err: `corebox.config=: config source "ftp://x/c.json" is neither an absolute path nor an http(s) URL`}},
		{"corebox.config=http://", want{err: `corebox.config=: config source "http://" has no host`}},
		{"corebox.debug=1", want{debug: true}},
		{"corebox.debug", want{debug: true}},
		{"corebox.debug=1 corebox.debug=0", want{}},
		{"corebox.debug=yes", want{err: `corebox.debug=: want 1 or 0, got "yes"`}},
		{"corebox.debug=", want{err: `corebox.debug=: want 1 or 0, got ""`}},
		{"corebox.emergency=1", want{emergency: true}},
		{"corebox.emergency", want{emergency: true}},
		{"corebox.emergency=0", want{}},
		{"corebox.emergency=2", want{err: `corebox.emergency=: want 1 or 0, got "2"`}},
		{"corebox.hostname=node7", want{hostname: "node7"}},
		{"corebox.hostname=no_de", want{err: `corebox.hostname=: "no_de" is not a host name: label "no_de" has '_'; only letters, digits and hyphens are allowed`}},
		{"corebox.hostname=", want{err: `corebox.hostname=: "" is not a host name: empty`}},
		{"ip=dhcp", want{ip: &IPConfig{Network: Network{Mode: ModeDHCP}}}},
		{"ip=10.0.0.5:::255.0.x:::", want{err: `ip=: bad netmask "255.0.x"`}},
		{
			"corebox.debug=x corebox.hostname=-a ip=bootp corebox.config=x",
			want{err: "corebox.config=: config source \"x\" is neither an absolute path nor an http(s) URL\n" +
				"corebox.debug=: want 1 or 0, got \"x\"\n" +
				"corebox.hostname=: \"-a\" is not a host name: label \"-a\" starts or ends with a hyphen\n" +
				"ip=: autoconf \"bootp\" is not supported; use dhcp"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c := ParseCmdline(tt.in)
			err := c.Validate()
			if tt.want.err != "" {
				if err == nil || err.Error() != tt.want.err {
					t.Fatalf("Validate:\n%v\nwant:\n%s", err, tt.want.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			var got want
			got.source, _ = c.ConfigSource()
			got.debug, _ = c.Debug()
			got.emergency, _ = c.Emergency()
			got.hostname, _ = c.Hostname()
			if ip, ok, _ := c.IP(); ok {
				got.ip = &ip
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseIP(t *testing.T) {
	tests := []struct {
		in   string
		want IPConfig
		err  string
	}{
		{in: "dhcp", want: IPConfig{Network: Network{Mode: ModeDHCP}}},
		{in: "on", want: IPConfig{Network: Network{Mode: ModeDHCP}}},
		{in: "any", want: IPConfig{Network: Network{Mode: ModeDHCP}}},
		{in: "both", want: IPConfig{Network: Network{Mode: ModeDHCP}}},
		{in: "none", want: IPConfig{Network: Network{Mode: ModeNone}}},
		{in: "off", want: IPConfig{Network: Network{Mode: ModeNone}}},
		{in: "", want: IPConfig{Network: Network{Mode: ModeNone}}},
		{in: "bootp", err: `autoconf "bootp" is not supported; use dhcp`},
		{in: "rarp", err: `autoconf "rarp" is not supported; use dhcp`},
		{in: "DHCP", err: `bad client-ip "DHCP"`},
		{
			in:   "10.0.0.5:10.0.0.1:10.0.0.1:255.255.255.0:node5:eth0:off:10.0.0.1:8.8.8.8:10.0.0.1",
			want: IPConfig{Hostname: "node5", Network: Network{Mode: ModeStatic, Interface: "eth0", Address: "10.0.0.5/24", Gateway: "10.0.0.1", DNS: []string{"10.0.0.1", "8.8.8.8"}}},
		},
		{
			in:   "10.0.0.5:::255.255.255.0::eth0:none",
			want: IPConfig{Network: Network{Mode: ModeStatic, Interface: "eth0", Address: "10.0.0.5/24"}},
		},
		{in: "192.168.7.2", want: IPConfig{Network: Network{Mode: ModeStatic, Address: "192.168.7.2/24"}}},
		{in: "172.16.0.9::172.16.0.1", want: IPConfig{Network: Network{Mode: ModeStatic, Address: "172.16.0.9/16", Gateway: "172.16.0.1"}}},
		{in: "10.1.2.3:::::", want: IPConfig{Network: Network{Mode: ModeStatic, Address: "10.1.2.3/8"}}},
		{in: "10.0.0.5:::255.255.255.255", want: IPConfig{Network: Network{Mode: ModeStatic, Address: "10.0.0.5/32"}}},
		{in: "::::node9:eth1:dhcp", want: IPConfig{Hostname: "node9", Network: Network{Mode: ModeDHCP, Interface: "eth1"}}},
		{in: ":::::eth1:dhcp:1.1.1.1", want: IPConfig{Network: Network{Mode: ModeDHCP, Interface: "eth1", DNS: []string{"1.1.1.1"}}}},
		{in: ":::::eth1:off", want: IPConfig{Network: Network{Mode: ModeNone, Interface: "eth1"}}},
		{in: ":::::::", want: IPConfig{Network: Network{Mode: ModeNone}}},
		{in: "10.0.0.5:::255.0.x:::", err: `bad netmask "255.0.x"`},
		{in: "10.0.0.5:::255.0.255.0", err: `bad netmask "255.0.255.0"`},
		{in: "10.0.0.5:::::::", want: IPConfig{Network: Network{Mode: ModeStatic, Address: "10.0.0.5/8"}}},
		{in: "10.0.0.256", err: `bad client-ip "10.0.0.256"`},
		{in: "0.0.0.0", err: `bad client-ip "0.0.0.0": not a unicast host address`},
		{in: "227.100.100.100", err: `bad client-ip "227.100.100.100": not a unicast host address`},
		{in: "10.0.0.5::255.255.255.255", err: `bad gw-ip "255.255.255.255": not a unicast host address`},
		{in: ":::::eth0:dhcp:0.0.0.0", err: `bad dns0-ip "0.0.0.0": not a unicast host address`},
		{in: "10.0.0.5:0.0.0.0::::::::0.0.0.0", want: IPConfig{Network: Network{Mode: ModeStatic, Address: "10.0.0.5/8"}}},
		{in: "fd00::5", err: `bad client-ip "fd00"; bad gw-ip "5"`},
		{in: "10.0.0.5:x", err: `bad server-ip "x"`},
		{in: "10.0.0.5::10.1.0.1:255.255.255.0", err: `gw-ip 10.1.0.1 is outside 10.0.0.5/24`},
		{in: "10.0.0.5:::::eth/0", err: `bad device: "eth/0" is not an interface name`},
		{in: "10.0.0.5::::-x", err: `bad hostname: "-x" is not a host name: label "-x" starts or ends with a hyphen`},
		{in: "10.0.0.5::::::dhcp", err: `client-ip, gw-ip and netmask are for autoconf off or none, not "dhcp"`},
		{in: "::10.0.0.1::::off", err: `gw-ip, netmask and dns-ips need a client-ip or autoconf dhcp`},
		{in: ":::::::1.1.1.1", err: `gw-ip, netmask and dns-ips need a client-ip or autoconf dhcp`},
		{in: "10.0.0.5::::::static", err: `bad autoconf "static": want dhcp, on, any, both, off or none`},
		{in: "10.0.0.5::::::::::", err: `"10.0.0.5::::::::::" has 11 fields, want at most 10`},
		{in: "10.0.0.5:::::::8.8.8:9.9.9.9.9", err: `bad dns0-ip "8.8.8"; bad dns1-ip "9.9.9.9.9"`},
		{in: "10.0.0.5::::::::::1.2.3", err: `"10.0.0.5::::::::::1.2.3" has 11 fields, want at most 10`},
		{in: "10.0.0.5:::::::::1.2.3", err: `bad ntp0-ip "1.2.3"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseIP(tt.in)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("ParseIP: %v", err)
			case tt.err != "" && err == nil:
				t.Fatalf("ParseIP = %+v, want error %q", got, tt.err)
			case tt.err != "" && err.Error() != tt.err:
				t.Fatalf("ParseIP error:\n%v\nwant:\n%s", err, tt.err)
			case tt.err == "" && !reflect.DeepEqual(got, tt.want):
				t.Fatalf("ParseIP = %+v, want %+v", got, tt.want)
			}
			if err == nil {
				if errs := validateNetwork(got.Network, "ip"); len(errs) > 0 {
					t.Errorf("ParseIP gave a network that does not validate: %v", errs)
				}
			}
		})
	}
}
