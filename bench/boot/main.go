// Command boot measures the image: sizes of the binary, initramfs and
// kernel, and QEMU wall time from start to `corebox ready` for a direct
// -kernel/-initrd boot and an iPXE boot, against the goals of the
// foundation issue. Boots run one at a time so that they do not slow each
// other down.
//
//	go run ./bench/boot -image out -n 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/corebox/corebox/vmtest"
)

var readyRE = regexp.MustCompile(`corebox ready version=(\S+) userspace=([0-9.]+)s`)

func main() {
	image := flag.String("image", "out", "the `directory` with corebox, vmlinuz, initramfs.img and boot.ipxe")
	n := flag.Int("n", 3, "boots of each kind (the median is reported)")
	flag.Parse()
	if err := run(*image, *n); err != nil {
		fmt.Fprintf(os.Stderr, "bench/boot: %v\n", err)
		os.Exit(1)
	}
}

type row struct {
	what, value, goal string
	ok                bool
}

func run(image string, n int) error {
	var rows []row
	size := func(name string, goalMB float64) error {
		fi, err := os.Stat(filepath.Join(image, name))
		if err != nil {
			return err
		}
		mb := float64(fi.Size()) / 1e6
		rows = append(rows, row{name + " size", fmt.Sprintf("%.1f MB", mb), fmt.Sprintf("≤ %.0f MB", goalMB), mb <= goalMB})
		return nil
	}
	if err := size("corebox", 40); err != nil {
		return err
	}
	if err := size("initramfs.img", 15); err != nil {
		return err
	}
	if err := size("vmlinuz", 6); err != nil {
		return err
	}
	direct := vmtest.Config{
		Kernel: filepath.Join(image, "vmlinuz"), Initrd: filepath.Join(image, "initramfs.img"),
		Append: "console=ttyS0 quiet", Memory: 1024,
	}
	wall, user, err := boots(direct, n)
	if err != nil {
		return fmt.Errorf("direct boot: %w", err)
	}
	rows = append(rows,
		row{"direct boot to ready (QEMU wall)", secs(wall), "≤ 5 s", wall <= 5*time.Second},
		row{"  of it userspace (init)", secs(user), "≤ 1 s", user <= time.Second})
	abs, _ := filepath.Abs(image)
	wall, _, err = boots(vmtest.Config{Netboot: &vmtest.Netboot{TFTPRoot: abs, Bootfile: "boot.ipxe"}, Memory: 1024}, n)
	if err != nil {
		return fmt.Errorf("iPXE boot: %w", err)
	}
	rows = append(rows, row{"iPXE boot to ready (QEMU wall)", secs(wall), "≤ 12 s", wall <= 12*time.Second})

	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure\tvalue\tgoal\tmet\n")
	for _, r := range rows {
		met := "yes"
		if !r.ok {
			met = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.what, r.value, r.goal, met)
	}
	tw.Flush()
	fmt.Printf("(medians of %d boots each, TCG, one boot at a time)\n", n)
	return nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// boots boots cfg n times and returns the median wall time to the ready
// line and the median userspace time it reports.
func boots(cfg vmtest.Config, n int) (time.Duration, time.Duration, error) {
	var walls, users []time.Duration
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		start := time.Now()
		vm, err := vmtest.Start(ctx, cfg)
		if err != nil {
			cancel()
			return 0, 0, err
		}
		m, err := vm.Expect(ctx, readyRE)
		wall := time.Since(start)
		vm.Kill()
		cancel()
		if err != nil {
			return 0, 0, err
		}
		u, _ := strconv.ParseFloat(m[2], 64)
		walls = append(walls, wall)
		users = append(users, time.Duration(u*float64(time.Second)))
	}
	slices.Sort(walls)
	slices.Sort(users)
	return walls[n/2], users[n/2], nil
}
