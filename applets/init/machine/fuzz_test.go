package machine

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func FuzzDecode(f *testing.F) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		``, `{}`, `null`, `[]`, `{"units": [{}]}`, `{"network": {"mode": "static", "address": "fd00::1/64", "gateway": "fd00::2"}}`,
		`{"hostname": "a", "hostname": 1}`, `{"registry": {"peers": ["a=http://[::1]:1"], "discovery": "http://x"}}`,
		`{"a": {"b": [{"c": [[]]}]}} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(bytes.NewReader(data))
		if err != nil {
			if c != nil {
				t.Fatalf("Decode returned a config and %v", err)
			}
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Decode accepted a config that does not validate: %v", err)
		}
		// What Decode accepts survives a round trip.
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Decode of its own output %s: %v", out, err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip changed the config:\n%+v\n%+v", c, again)
		}
	})
}

func FuzzParseCmdline(f *testing.F) {
	for _, s := range []string{
		"", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n", `corebox.hostname="a b"`, `"a=b c"`, `a=x"y z"w`, `a="`, `"`, `""`,
		"ip=10.0.0.5::10.0.0.1:255.255.255.0:h:eth0:off:1.1.1.1 corebox.debug=1 corebox.emergency",
		"corebox.config=https://x/c.json -- single x=y", "a==b =c --", "\t\v\f\r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := ParseCmdline(s)
		if len(c.Params) > len(c.Args) {
			t.Fatalf("%d params from %d args", len(c.Params), len(c.Args))
		}
		for k, v := range c.Params {
			p, ok := c.last(k)
			if !ok || p.Value != v {
				t.Fatalf("Params[%q] = %q, but the last such arg is %+v", k, v, p)
			}
		}
		for _, p := range c.Args {
			if p.Value != "" && !p.HasValue {
				t.Fatalf("arg %+v has a value but no '='", p)
			}
		}
		// The accessors agree with Validate and never panic.
		err := c.Validate()
		_, e1 := c.ConfigSource()
		_, e2 := c.Debug()
		_, e3 := c.Emergency()
		_, e4 := c.Hostname()
		_, _, e5 := c.IP()
		if (err == nil) != (e1 == nil && e2 == nil && e3 == nil && e4 == nil && e5 == nil) {
			t.Fatalf("Validate = %v, but the accessors say %v %v %v %v %v", err, e1, e2, e3, e4, e5)
		}
		var def Config
		def.ApplyDefaults()
		if m := def.Merge(c); m.Validate() != nil {
			t.Fatalf("Merge gave an invalid config: %v", m.Validate())
		}
	})
}

func FuzzParseIP(f *testing.F) {
	for _, s := range []string{
		"", "dhcp", "off", "none", "on", "bootp",
		"10.0.0.5:10.0.0.1:10.0.0.1:255.255.255.0:node5:eth0:off:10.0.0.1:8.8.8.8:10.0.0.1",
		"::::node9:eth1:dhcp", "10.0.0.5:::255.0.x:::", "192.168.1.2", ":::::::", "fd00::1", "10.0.0.5::10.0.0.1:255.255.255.255",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := ParseIP(s)
		if err != nil {
			if !reflect.DeepEqual(ip, IPConfig{}) {
				t.Fatalf("ParseIP returned %+v with %v", ip, err)
			}
			return
		}
		if errs := validateNetwork(ip.Network, "network"); len(errs) > 0 {
			t.Fatalf("ParseIP(%q) = %+v, which does not validate: %v", s, ip, errs)
		}
		if ip.Hostname != "" {
			if err := checkHostname(ip.Hostname); err != nil {
				t.Fatalf("ParseIP(%q) gave host name %q: %v", s, ip.Hostname, err)
			}
		}
	})
}
