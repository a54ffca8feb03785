package container_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/corebox/corebox/applets/rkt/container"
	"github.com/corebox/corebox/applets/rkt/container/containertest"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Every kind of hook runs with the state on its stdin: the runtime's in
// the host, createContainer before pivot_root, startContainer inside the
// container.
func TestHooks(t *testing.T) {
	containertest.RequireRoot(t)
	out := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(out, name)}}
	}
	spec := containertest.Spec("true")
	spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{hook("prestart")},
		CreateRuntime:   []specs.Hook{hook("createRuntime")},
		CreateContainer: []specs.Hook{hook("createContainer")},
		// Inside the container: its /bin/sh, its /tmp.
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /tmp/startContainer"}}},
		Poststart:      []specs.Hook{hook("poststart")},
		Poststop:       []specs.Hook{hook("poststop")},
	}
	spec.Annotations = map[string]string{"k": "v"}
	bundle := containertest.Bundle(t, spec)
	c, err := container.Create(context.Background(), container.Options{ID: "hooks", Bundle: bundle, Spec: spec, StateRoot: stateRoot(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	c.Wait(context.Background())
	if err := c.Delete(false); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"prestart": filepath.Join(out, "prestart"), "createRuntime": filepath.Join(out, "createRuntime"),
		"createContainer": filepath.Join(out, "createContainer"), "startContainer": filepath.Join(bundle, "rootfs/tmp/startContainer"),
		"poststart": filepath.Join(out, "poststart"), "poststop": filepath.Join(out, "poststop"),
	}
	for name, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s hook did not run: %v", name, err)
			continue
		}
		var st specs.State
		if err := json.Unmarshal(b, &st); err != nil || st.ID != "hooks" || st.Bundle == "" || st.Annotations["k"] != "v" {
			t.Errorf("%s hook got state %q (%v)", name, b, err)
		}
		if name != "poststop" && st.Pid == 0 {
			t.Errorf("%s hook got no pid: %q", name, b)
		}
	}
	// A failing createRuntime hook fails the create and leaves nothing.
	spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
	root := stateRoot(t)
	if _, err := container.Create(context.Background(), container.Options{ID: "badhook", Bundle: bundle, Spec: spec, StateRoot: root}); err == nil {
		t.Error("a failing createRuntime hook did not fail the create")
	}
	if _, err := os.Stat(filepath.Join(root, "badhook")); !os.IsNotExist(err) {
		t.Errorf("state left behind: %v", err)
	}
}
