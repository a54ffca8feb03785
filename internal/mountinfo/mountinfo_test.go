package mountinfo

import (
	"strings"
	"testing"
)

const sample = `22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
30 22 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
31 22 0:27 /sub /mnt/with\040space rw shared:1 master:2 - overlay overlay rw,lowerdir=/l/a:/l/b,upperdir=/u,workdir=/w
`

func TestParse(t *testing.T) {
	ms, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 3 {
		t.Fatalf("%d mounts, want 3", len(ms))
	}
	want := Mount{Root: "/sub", MountPoint: "/mnt/with space", Options: "rw", FSType: "overlay", Source: "overlay", SuperOptions: "rw,lowerdir=/l/a:/l/b,upperdir=/u,workdir=/w"}
	if ms[2] != want {
		t.Errorf("got %+v\nwant %+v", ms[2], want)
	}
	if ms[1].SuperOptions != "rw,memory" || ms[1].FSType != "cgroup" {
		t.Errorf("cgroup line: %+v", ms[1])
	}
	for _, bad := range []string{"1 2 3\n", "1 2 0:1 / /x rw - proc\n", "1 2 0:1 / /x - proc proc rw\n"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestSelf(t *testing.T) {
	ms, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || !strings.HasPrefix(ms[0].MountPoint, "/") {
		t.Fatalf("own mount table: %+v", ms)
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `\134`: `\`, `x\09`: `x\09`, `end\`: `end\`, "plain": "plain"} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse: arbitrary tables never panic, and every accepted mount has
// a file system type.
func FuzzParse(f *testing.F) {
	f.Add([]byte(sample))
	f.Add([]byte("1 2 0:1 / / rw - x y z\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := Parse(b)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.FSType == "" {
				t.Fatalf("a mount without a type: %+v", m)
			}
		}
	})
}
