package machine

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f admin@example.com"

// staticConfig is testdata/static.json.
func staticConfig() Config {
	return Config{
		Hostname: "node1.cluster.example",
		Network: Network{
			Mode:      ModeStatic,
			Interface: "eth0",
			Address:   "10.0.0.11/24",
			Gateway:   "10.0.0.1",
			DNS:       []string{"10.0.0.1", "2001:4860:4860::8888"},
		},
		Units: []UnitFile{
			{Name: "hello.service", Contents: "[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/bin/rkt run example.com/hello:1.0\nRestart=always\n", Enable: true},
			{Name: "web@.service", Contents: "[Service]\nExecStart=/bin/rkt run example.com/web:%i\n"},
		},
		Registry: Registry{Peers: []string{
			"node1=http://10.0.0.11:2380",
			"node2=http://10.0.0.12:2380",
			"node3=http://10.0.0.13:2380",
		}},
		Update:            Update{Server: "https://updates.example.com/v1/update/", Group: "beta"},
		SSHAuthorizedKeys: []string{testKey},
	}
}

// errorMatches reports whether err's message has the lines of want, where a
// want line ending in "…" need only be a prefix: the reasons package unit
// gives for a bad unit name are its own to word.
func errorMatches(err error, want string) bool {
	if err == nil {
		return want == ""
	}
	got, wantLines := strings.Split(err.Error(), "\n"), strings.Split(want, "\n")
	if len(got) != len(wantLines) {
		return false
	}
	for i, w := range wantLines {
		if p, ok := strings.CutSuffix(w, "…"); ok && strings.HasPrefix(got[i], p) {
			continue
		}
		if got[i] != w {
			return false
		}
	}
	return true
}

func decodeFile(t *testing.T, name string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return Decode(bytes.NewReader(data))
}

func TestDecodeDefault(t *testing.T) {
	c, err := decodeFile(t, "default.json")
	if err != nil {
		t.Fatal(err)
	}
	// default.json spells out exactly what ApplyDefaults gives an empty
	// config; empty lists are written as [] there.
	var want Config
	want.ApplyDefaults()
	want.Network.DNS = []string{}
	want.Units = []UnitFile{}
	want.Registry.Peers = []string{}
	want.SSHAuthorizedKeys = []string{}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("default.json = %+v\nwant %+v", *c, want)
	}
	empty, err := Decode(strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if empty.Hostname != "corebox" || empty.Network.Mode != "dhcp" || empty.Update.Group != "stable" {
		t.Errorf("{} decodes to %+v, want the defaults", *empty)
	}
}

func TestDecodeStatic(t *testing.T) {
	c, err := decodeFile(t, "static.json")
	if err != nil {
		t.Fatal(err)
	}
	if want := staticConfig(); !reflect.DeepEqual(*c, want) {
		t.Errorf("static.json = %+v\nwant %+v", *c, want)
	}
}

func TestDecodeBadFiles(t *testing.T) {
	tests := []struct {
		file string
		want []string // the error's lines, in order
	}{
		{"bad-unknown-fields.json", []string{
			`unknown field "hostnmae" at top level`,
			`unknown field "dsn" in network`,
			`unknown field "enabled" in units[0]`,
			`unknown field "Update" at top level (did you mean "update"?)`,
		}},
		{"bad-values.json", []string{
			`hostname: "-node1" is not a host name: label "-node1" starts or ends with a hyphen`,
			`network.interface: "eth/0" is not an interface name`,
			`network.address: "10.0.0.5" is not a CIDR address`,
			`network.gateway: "10.0.0.256" is not an IP address`,
			`network.dns[1]: "8.8.8" is not an IP address`,
			`units[1].name: "a.service" is already units[0]`,
			`units[2].name: "../x" is not a unit name: …`,
			`units[2].contents: empty`,
			`units[3].enable: "t@.service" is a template; enable an instance of it instead`,
			`registry: peers and discovery are mutually exclusive; set one`,
			`registry.peers[1]: "node2" is not name=URL`,
			`update.server: "ftp://updates.example.com/" is not an http or https URL`,
			`update.group: "st able" is not a group name: want 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`,
			`ssh_authorized_keys[0]: not an OpenSSH public key: key data is not base64`,
		}},
		{"bad-types.json", []string{
			`hostname: want a string, got number 5`,
			`network.dns: want an array, got string "10.0.0.1"`,
			`units[0].enable: want true or false, got string "yes"`,
			`registry: want an object, got an array`,
		}},
		{"bad-trailing.json", []string{`config has data after its object, at line 2, column 1`}},
		{"bad-syntax.json", []string{`config is not valid JSON: line 3, column 30: invalid character '}' looking for beginning of object key string`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := decodeFile(t, tt.file)
			if err == nil {
				t.Fatalf("Decode = %+v, want an error", c)
			}
			if c != nil {
				t.Errorf("Decode returned a config with its error")
			}
			if want := strings.Join(tt.want, "\n"); !errorMatches(err, want) {
				t.Errorf("error lines:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // "" for success
	}{
		{"empty object", `{}`, ""},
		{"nulls are absent", `{"hostname": null, "network": null, "units": null}`, ""},
		{"whitespace around", " \n\t{}\n\n ", ""},
		{"empty input", ``, "config is empty"},
		{"only space", "  \n", "config is empty"},
		{"array", `[]`, "config must be a JSON object, not an array"},
		{"null", `null`, "config must be a JSON object, not null"},
		{"string", `"x"`, `config must be a JSON object, not string "x"`},
		{"truncated", `{"hostname": "a"`, "config is not valid JSON: it ends too early"},
		{"trailing object", `{} {}`, "config has data after its object, at line 1, column 4"},
		{"trailing garbage", "{}\nx", "config has data after its object, at line 2, column 1"},
		{"unknown top", `{"hostnmae": "x"}`, `unknown field "hostnmae" at top level`},
		{"unknown nested", `{"network": {"adress": "10.0.0.1/8"}}`, `unknown field "adress" in network`},
		{"unknown in list", `{"units": [{"name": "a.service", "contents": "x"}, {"nmae": "b"}]}`,
			"unknown field \"nmae\" in units[1]\nunits[1].name: \"\" is not a unit name: …\nunits[1].contents: empty"},
		{"unknown with object value", `{"extra": {"a": [1, {"b": 2}]}, "hostname": "ok"}`, `unknown field "extra" at top level`},
		{"case differs", `{"HostName": "x"}`, `unknown field "HostName" at top level (did you mean "hostname"?)`},
		{"repeated", `{"hostname": "a", "hostname": "b"}`, `hostname: given more than once`},
		{"repeated nested", `{"update": {"group": "a", "group": "b"}}`, `update.group: given more than once`},
		{"string for bool", `{"units": [{"name": "a.service", "contents": "x", "enable": "true"}]}`, `units[0].enable: want true or false, got string "true"`},
		{"number for string", `{"network": {"dns": [1]}}`, `network.dns[0]: want a string, got number 1`},
		{"object for string", `{"update": {"server": {}}}`, `update.server: want a string, got an object`},
		{"string for list", `{"ssh_authorized_keys": "ssh-ed25519 AAAA"}`, `ssh_authorized_keys: want an array, got string "ssh-ed25519 AAAA"`},
		{"string for object", `{"network": "dhcp"}`, `network: want an object, got string "dhcp"`},
		{"wrong type and bad value", `{"hostname": 1, "network": {"mode": "wifi"}}`,
			"hostname: want a string, got number 1\nnetwork.mode: \"wifi\" is not one of \"dhcp\", \"static\", \"none\""},
		{"too large", `{"hostname": "` + strings.Repeat("a", MaxConfigSize) + `"}`, "config is larger than the 1 MiB limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode(strings.NewReader(tt.in))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Decode: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Decode = %+v, want error %q", *c, tt.want)
			case tt.want != "" && !errorMatches(err, tt.want):
				t.Fatalf("Decode error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string // the whole error; "" for none
	}{
		{"static as given", func(c *Config) {}, ""},
		{"zero config", func(c *Config) { *c = Config{} }, ""},

		// hostname
		{"hostname short", func(c *Config) { c.Hostname = "a" }, ""},
		{"hostname digits and hyphens", func(c *Config) { c.Hostname = "node-01.rack-2" }, ""},
		{"hostname 64", func(c *Config) { c.Hostname = strings.Repeat("a", 63) + "." }, `hostname: "` + strings.Repeat("a", 63) + `." is not a host name: empty label`},
		{"hostname too long", func(c *Config) { c.Hostname = strings.Repeat("a.", 32) + "b" }, `hostname: "` + strings.Repeat("a.", 32) + `b" is not a host name: longer than 64 characters`},
		{"hostname long label", func(c *Config) { c.Hostname = strings.Repeat("a", 64) }, `hostname: "` + strings.Repeat("a", 64) + `" is not a host name: label "` + strings.Repeat("a", 64) + `" is longer than 63 characters`},
		{"hostname underscore", func(c *Config) { c.Hostname = "a_b" }, `hostname: "a_b" is not a host name: label "a_b" has '_'; only letters, digits and hyphens are allowed`},
		{"hostname trailing hyphen", func(c *Config) { c.Hostname = "a-" }, `hostname: "a-" is not a host name: label "a-" starts or ends with a hyphen`},
		{"hostname empty label", func(c *Config) { c.Hostname = "a..b" }, `hostname: "a..b" is not a host name: empty label`},

		// network
		{"mode dhcp", func(c *Config) { c.Network = Network{Mode: "dhcp", DNS: []string{"1.1.1.1"}} }, ""},
		{"mode none", func(c *Config) { c.Network = Network{Mode: "none"} }, ""},
		{"mode empty means dhcp", func(c *Config) { c.Network = Network{} }, ""},
		{"mode bad", func(c *Config) { c.Network.Mode = "DHCP" }, `network.mode: "DHCP" is not one of "dhcp", "static", "none"` +
			"\n" + `network.address: set, but network.mode is "DHCP", not "static"` + "\n" + `network.gateway: set, but network.mode is "DHCP", not "static"`},
		{"interface long", func(c *Config) { c.Network.Interface = "enp0s31f6abcdef" }, ""},
		{"interface too long", func(c *Config) { c.Network.Interface = "enp0s31f6abcdefg" }, `network.interface: "enp0s31f6abcdefg" is not an interface name`},
		{"interface colon", func(c *Config) { c.Network.Interface = "eth0:1" }, `network.interface: "eth0:1" is not an interface name`},
		{"interface dotdot", func(c *Config) { c.Network.Interface = ".." }, `network.interface: ".." is not an interface name`},
		{"interface space", func(c *Config) { c.Network.Interface = "eth 0" }, `network.interface: "eth 0" is not an interface name`},
		{"address v6", func(c *Config) { c.Network.Address, c.Network.Gateway = "fd00::5/64", "fd00::1" }, ""},
		{"address missing", func(c *Config) { c.Network.Address, c.Network.Gateway = "", "" }, `network.address: required when network.mode is "static"`},
		{"address no prefix", func(c *Config) { c.Network.Address = "10.0.0.5" }, `network.address: "10.0.0.5" is not a CIDR address`},
		{"address bad prefix", func(c *Config) { c.Network.Address = "10.0.0.5/33" }, `network.address: "10.0.0.5/33" is not a CIDR address`},
		{"address unspecified", func(c *Config) { c.Network.Address, c.Network.Gateway = "0.0.0.0/0", "" }, `network.address: "0.0.0.0/0" is not a unicast host address`},
		{"address with dhcp", func(c *Config) { c.Network = Network{Mode: "dhcp", Address: "10.0.0.5/24"} }, `network.address: set, but network.mode is "dhcp", not "static"`},
		{"gateway absent", func(c *Config) { c.Network.Gateway = "" }, ""},
		{"gateway bad", func(c *Config) { c.Network.Gateway = "10.0.0" }, `network.gateway: "10.0.0" is not an IP address`},
		{"gateway outside", func(c *Config) { c.Network.Gateway = "10.0.1.1" }, `network.gateway: 10.0.1.1 is outside network.address 10.0.0.11/24`},
		{"gateway other family", func(c *Config) { c.Network.Gateway = "fd00::1" }, `network.gateway: fd00::1 is outside network.address 10.0.0.11/24`},
		{"gateway multicast", func(c *Config) { c.Network.Gateway = "224.0.0.1" }, `network.gateway: "224.0.0.1" is not a unicast host address`},
		{"gateway with none", func(c *Config) { c.Network = Network{Mode: "none", Gateway: "10.0.0.1"} }, `network.gateway: set, but network.mode is "none", not "static"`},
		{"dns bad", func(c *Config) { c.Network.DNS = []string{"1.1.1.1", "one.one"} }, `network.dns[1]: "one.one" is not an IP address`},
		{"dns zone", func(c *Config) { c.Network.DNS = []string{"fe80::1%eth0"} }, `network.dns[0]: "fe80::1%eth0" is not an IP address`},
		{"dns with none", func(c *Config) { c.Network = Network{Mode: "none", DNS: []string{"1.1.1.1"}} }, `network.dns: set, but network.mode is "none"`},

		// units
		{"unit instance", func(c *Config) { c.Units[1].Name, c.Units[1].Enable = "web@8080.service", true }, ""},
		{"unit target", func(c *Config) { c.Units[0].Name = "multi-user.target" }, ""},
		{"unit escapes", func(c *Config) { c.Units[0].Name = `serial-getty@ttyS0\x2d1.service` }, ""},
		{"unit type init does not run", func(c *Config) { c.Units[0].Name = "backup.timer" }, `units[0].name: "backup.timer" is not a unit name: …`},
		{"unit slash", func(c *Config) { c.Units[0].Name = "../x" }, `units[0].name: "../x" is not a unit name: …`},
		{"unit path", func(c *Config) { c.Units[1].Name = "/etc/x.service" }, `units[1].name: "/etc/x.service" is not a unit name: …`},
		{"unit no type", func(c *Config) { c.Units[0].Name = "hello" }, `units[0].name: "hello" is not a unit name: …`},
		{"unit bad type", func(c *Config) { c.Units[0].Name = "hello.conf" }, `units[0].name: "hello.conf" is not a unit name: …`},
		{"unit no name", func(c *Config) { c.Units[0].Name = ".service" }, `units[0].name: ".service" is not a unit name: …`},
		{"unit at first", func(c *Config) { c.Units[0].Name = "@x.service" }, `units[0].name: "@x.service" is not a unit name: …`},
		{"unit space", func(c *Config) { c.Units[0].Name = "a b.service" }, `units[0].name: "a b.service" is not a unit name: …`},
		{"unit too long", func(c *Config) { c.Units[0].Name = strings.Repeat("a", 248) + ".service" }, `units[0].name: "` + strings.Repeat("a", 248) + `.service" is not a unit name: …`},
		{"unit repeated", func(c *Config) { c.Units[1].Name = "hello.service" }, `units[1].name: "hello.service" is already units[0]`},
		{"unit empty", func(c *Config) { c.Units[0].Contents = "" }, `units[0].contents: empty`},
		{"unit enable template", func(c *Config) { c.Units[1].Enable = true }, `units[1].enable: "web@.service" is a template; enable an instance of it instead`},

		// registry
		{"peers https and names", func(c *Config) {
			c.Registry.Peers = []string{"a.b-c_d=https://node1.example:2380", "e=http://[fd00::1]:2380/"}
		}, ""},
		{"discovery", func(c *Config) {
			c.Registry = Registry{Discovery: "https://discovery.etcd.io/3e86b59982e49066c5d813af1c2e2579"}
		}, ""},
		{"peers and discovery", func(c *Config) { c.Registry.Discovery = "https://discovery.etcd.io/x" }, `registry: peers and discovery are mutually exclusive; set one`},
		{"peer no name", func(c *Config) { c.Registry.Peers[0] = "http://10.0.0.11:2380" }, `registry.peers[0]: "http://10.0.0.11:2380" is not name=URL`},
		{"peer empty name", func(c *Config) { c.Registry.Peers[0] = "=http://10.0.0.11:2380" }, `registry.peers[0]: "=http://10.0.0.11:2380" is not name=URL`},
		{"peer comma", func(c *Config) { c.Registry.Peers[0] = "a,b=http://10.0.0.11:2380" }, `registry.peers[0]: member name "a,b" has a comma or whitespace`},
		{"peer no port", func(c *Config) { c.Registry.Peers[2] = "node3=http://10.0.0.13" }, `registry.peers[2]: "http://10.0.0.13" has no port`},
		{"peer path", func(c *Config) { c.Registry.Peers[2] = "node3=http://10.0.0.13:2380/etcd" }, `registry.peers[2]: "http://10.0.0.13:2380/etcd" must be scheme://host:port and nothing more`},
		{"peer scheme", func(c *Config) { c.Registry.Peers[1] = "node2=tcp://10.0.0.12:2380" }, `registry.peers[1]: "tcp://10.0.0.12:2380" is not an http or https URL`},
		{"peer port range", func(c *Config) { c.Registry.Peers[1] = "node2=http://10.0.0.12:70000" }, `registry.peers[1]: "http://10.0.0.12:70000": port "70000" is out of range`},
		{"peer bad host", func(c *Config) { c.Registry.Peers[1] = "node2=http://no_de:2380" }, `registry.peers[1]: "http://no_de:2380": host "no_de" is not an IP address or DNS name: label "no_de" has '_'; only letters, digits and hyphens are allowed`},
		{"peer same URL", func(c *Config) { c.Registry.Peers[2] = "node9=http://10.0.0.11:2380" }, `registry.peers[2]: peer URL http://10.0.0.11:2380 is already registry.peers[0]`},
		{"discovery not URL", func(c *Config) { c.Registry = Registry{Discovery: "discovery.etcd.io/x"} }, `registry.discovery: "discovery.etcd.io/x" is not an http or https URL`},
		{"discovery no host", func(c *Config) { c.Registry = Registry{Discovery: "https:///x"} }, `registry.discovery: "https:///x" has no host`},

		// update
		{"update off", func(c *Config) { c.Update = Update{} }, ""},
		{"update server http", func(c *Config) { c.Update.Server = "http://10.0.0.2:8080/v1/update/" }, ""},
		{"update server bad", func(c *Config) { c.Update.Server = "updates.example.com" }, `update.server: "updates.example.com" is not an http or https URL`},
		{"update server unparsable", func(c *Config) { c.Update.Server = "http://a b/" }, `update.server: "http://a b/" is not a URL: invalid character " " in host name`},
		{"group alpha", func(c *Config) { c.Update.Group = "alpha" }, ""},
		{"group uuid", func(c *Config) { c.Update.Group = "5b810680-e36a-4879-b98a-4f989e80b899" }, ""},
		{"group slash", func(c *Config) { c.Update.Group = "a/b" }, `update.group: "a/b" is not a group name: want 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`},
		{"group dot first", func(c *Config) { c.Update.Group = ".hidden" }, `update.group: ".hidden" is not a group name: want 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`},

		// ssh_authorized_keys
		{"key with options", func(c *Config) {
			c.SSHAuthorizedKeys = append(c.SSHAuthorizedKeys, `no-pty,command="echo ssh-rsa hi" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAABADA/+4= ops`)
		}, ""},
		{"key no comment", func(c *Config) { c.SSHAuthorizedKeys[0] = strings.TrimSuffix(testKey, " admin@example.com") }, ""},
		{"key empty", func(c *Config) { c.SSHAuthorizedKeys = []string{testKey, ""} }, `ssh_authorized_keys[1]: not an OpenSSH public key: no key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ecdsa-sha2-nistp384, ecdsa-sha2-nistp521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com, ssh-dss)`},
		{"key two lines", func(c *Config) { c.SSHAuthorizedKeys[0] = testKey + "\n" + testKey }, `ssh_authorized_keys[0]: has a line break; give one key per entry`},
		{"key no data", func(c *Config) { c.SSHAuthorizedKeys[0] = "ssh-ed25519" }, `ssh_authorized_keys[0]: not an OpenSSH public key: no key data after "ssh-ed25519"`},
		{"key type mismatch", func(c *Config) { c.SSHAuthorizedKeys[0] = "ssh-rsa " + strings.Fields(testKey)[1] }, `ssh_authorized_keys[0]: not an OpenSSH public key: key data is a "ssh-ed25519" key, not "ssh-rsa"`},
		{"key truncated", func(c *Config) { c.SSHAuthorizedKeys[0] = "ssh-ed25519 AAAAC3Nz" }, `ssh_authorized_keys[0]: not an OpenSSH public key: key data is truncated`},

		// several at once
		{"errors collected", func(c *Config) {
			c.Hostname = "bad_host"
			c.Units[1].Name = "x"
			c.Update.Group = "?"
		}, `hostname: "bad_host" is not a host name: label "bad_host" has '_'; only letters, digits and hyphens are allowed` + "\n" +
			`units[1].name: "x" is not a unit name: …` + "\n" +
			`update.group: "?" is not a group name: want 1–64 letters, digits, '.', '_' or '-', starting with a letter or digit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := staticConfig()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate = nil, want %q", tt.want)
			case tt.want != "" && !errorMatches(err, tt.want):
				t.Fatalf("Validate:\n%v\nwant:\n%s", err, tt.want)
			}
			// What Validate accepts must survive a trip through JSON and
			// Decode, which validates again after the defaults.
			if err == nil {
				data, err := json.Marshal(c)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Decode(bytes.NewReader(data)); err != nil {
					t.Errorf("Decode of the valid config: %v", err)
				}
			}
		})
	}
}

func TestMerge(t *testing.T) {
	file := staticConfig()
	tests := []struct {
		cmdline string
		want    func(*Config)
	}{
		{"quiet console=ttyS0", func(c *Config) {}},
		{"ip=dhcp", func(c *Config) { c.Network = Network{Mode: ModeDHCP} }},
		{"ip=off", func(c *Config) { c.Network = Network{Mode: ModeNone} }},
		{"corebox.hostname=other", func(c *Config) { c.Hostname = "other" }},
		{"ip=10.1.0.5::10.1.0.1:255.255.0.0:fromip:eth1:off:10.1.0.1", func(c *Config) {
			c.Hostname = "fromip"
			c.Network = Network{Mode: ModeStatic, Interface: "eth1", Address: "10.1.0.5/16", Gateway: "10.1.0.1", DNS: []string{"10.1.0.1"}}
		}},
		{"corebox.hostname=wins ip=::::fromip::dhcp", func(c *Config) {
			c.Hostname = "wins"
			c.Network = Network{Mode: ModeDHCP}
		}},
		// Bad values are left to Cmdline.Validate and change nothing.
		{"ip=10.0.0.5:::255.0.x::: corebox.hostname=bad_name", func(c *Config) {}},
	}
	for _, tt := range tests {
		t.Run(tt.cmdline, func(t *testing.T) {
			want := staticConfig()
			tt.want(&want)
			got := file.Merge(ParseCmdline(tt.cmdline))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Merge =\n%+v\nwant\n%+v", got, want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("merged config does not validate: %v", err)
			}
		})
	}
	// The result shares no slices with the file's config.
	got := file.Merge(ParseCmdline(""))
	got.Units[0].Name = "changed.service"
	got.Network.DNS[0] = "9.9.9.9"
	if !reflect.DeepEqual(file, staticConfig()) {
		t.Errorf("changing Merge's result changed its receiver")
	}
}
