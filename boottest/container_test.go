package boottest

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/corebox/corebox/applets/rkt/image/imagetest"
)

// TestContainersInImage runs the container launcher inside corebox's own
// image (its kernel, pure cgroup v2, overlayfs on the tmpfs /var): rkt
// fetches a busybox image from a registry on the host (QEMU's user network
// reaches the host's loopback at 10.0.2.2), runs pods on the host network
// and on the default bridge network with its NAT, enforces a memory limit
// through cgroup v2, and gc leaves nothing; runc runs a bundle extracted
// from the same image.
func TestContainersInImage(t *testing.T) {
	t.Parallel()
	img := image(t)
	ctx := testContext(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	ref, err := name.ParseReference(fmt.Sprintf("127.0.0.1:%d/corebox/busybox:test", port), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, imagetest.Busybox(t, v1.Config{Cmd: []string{"/bin/sh"}})); err != nil {
		t.Fatalf("pushing the test image: %v", err)
	}
	guestRef := fmt.Sprintf("docker://10.0.2.2:%d/corebox/busybox:test", port)

	vm, _, _ := boot(t, ctx, direct(img, "corebox.debug=1"))
	rkt := "rkt --insecure-options=image,http"

	out := run(t, ctx, vm, rkt+" fetch "+guestRef)
	id := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindString(out)
	if id == "" {
		t.Fatalf("rkt fetch printed no image id:\n%s", out)
	}
	// A pod on the host network: its output and exit status are rkt's.
	out = run(t, ctx, vm, rkt+" run --net=host "+guestRef+" --exec=/bin/sh -- -c 'echo pod-says-$((6*7)); exit 7'; echo rkt-exit=$?")
	if !strings.Contains(out, "pod-says-42") || !strings.Contains(out, "rkt-exit=7") {
		t.Fatalf("host-network pod:\n%s", out)
	}
	// Two pods on the default network: the second reaches the first's
	// listener over the bridge (retrying until it listens), and the
	// bridge's gateway. (The image has
	// no coreutils: text work happens in the pods or here.)
	run(t, ctx, vm, rkt+" run --net=default --uuid-file-save=/tmp/server.uuid "+guestRef+" --exec=/bin/sh -- -c 'echo served | nc -l -p 7000' >/tmp/server.out 2>&1 & true")
	ipRE := regexp.MustCompile(`networks=default:ip4=([0-9.]+)`)
	var ip string
	for tries := 0; ip == ""; tries++ {
		out, _ := vm.Run(ctx, "read -r u </tmp/server.uuid && "+rkt+" status $u")
		if m := ipRE.FindStringSubmatch(out); m != nil {
			ip = m[1]
		} else if tries > 100 || strings.Contains(out, "state=exited") {
			log, _ := vm.Run(ctx, "while IFS= read -r l; do echo \"$l\"; done </tmp/server.out")
			t.Fatalf("no address for the server pod:\n%s\nits output:\n%s", out, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out = run(t, ctx, vm, rkt+" run --net=default "+guestRef+" --exec=/bin/sh -- -c 'for i in $(seq 50); do nc "+ip+" 7000 && break; sleep 0.2; done; ping -c 1 -W 2 172.16.28.1 >/dev/null && echo gateway-ok'")
	if !strings.Contains(out, "served") || !strings.Contains(out, "gateway-ok") {
		t.Fatalf("client pod on the default network:\n%s", out)
	}
	run(t, ctx, vm, "wait")
	// A memory limit is a cgroup v2 limit here: the app is OOM-killed.
	out = run(t, ctx, vm, rkt+" run --net=host --uuid-file-save=/tmp/oom.uuid "+guestRef+" --memory=16M --exec=/bin/dd -- if=/dev/zero of=/dev/null bs=64M count=1; echo rkt-exit=$?; read -r u </tmp/oom.uuid; "+rkt+" status $u")
	if !strings.Contains(out, "oom-killed=true") || !strings.Contains(out, "rkt-exit=137") {
		t.Fatalf("memory-limited pod:\n%s", out)
	}
	// gc removes the exited pods and their veths.
	run(t, ctx, vm, rkt+" gc --grace-period=0s")
	if out := run(t, ctx, vm, rkt+" list --no-legend"); strings.TrimSpace(out) != "" {
		t.Fatalf("pods left after gc:\n%s", out)
	}
	out = run(t, ctx, vm, rkt+" run --net=host "+guestRef+" --exec=/bin/sh -- -c 'echo veths=$(ls /sys/class/net | grep -c ^veth)'")
	if !strings.Contains(out, "veths=0") {
		t.Fatalf("veths left after gc:\n%s", out)
	}

	// runc runs a bundle made from the same image (a pod with the host's
	// /tmp as a volume does the file work).
	tmp := " --volume=tmp,kind=host,source=/tmp " + guestRef + " --mount=volume=tmp,target=/host --exec=/bin/sh -- -c "
	run(t, ctx, vm, rkt+" run --net=none"+tmp+"'mkdir -p /host/bundle'")
	run(t, ctx, vm, rkt+" image extract "+id+" /tmp/bundle/rootfs")
	run(t, ctx, vm, "runc spec --bundle /tmp/bundle")
	// The sed script reaches the pod's shell through the environment,
	// single-quoted on the console, so that nothing in it is expanded early.
	script := `s/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo runc-in-$(hostname); exit 3"/`
	run(t, ctx, vm, rkt+" run --net=none --set-env='S="+script+"'"+tmp+"'sed -i \"$S\" /host/bundle/config.json'")
	out = run(t, ctx, vm, "runc run --bundle /tmp/bundle vmtest; echo runc-exit=$?")
	if !strings.Contains(out, "runc-in-runc") || !strings.Contains(out, "runc-exit=3") {
		t.Fatalf("runc run in the image:\n%s", out)
	}
}
