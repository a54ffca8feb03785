package rkt

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/corebox/corebox/internal/mountinfo"

	"golang.org/x/sys/unix"
)

// parseMountPoints returns the mount points listed in a
// /proc/PID/mountinfo text, unescaped.
func parseMountPoints(b []byte) ([]string, error) {
	ms, err := mountinfo.Parse(b)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.MountPoint
	}
	return out, nil
}

// unmountBelow detaches every mount at or below dir, deepest first, so
// that removing dir cannot reach into a host volume. It is idempotent.
func unmountBelow(dir string) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("reading mount table: %w", err)
	}
	points, err := parseMountPoints(b)
	if err != nil {
		return err
	}
	var below []string
	for _, p := range points {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			below = append(below, p)
		}
	}
	// Deepest first; a path mounted twice is unmounted twice.
	slices.SortStableFunc(below, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	var errs []error
	for _, p := range below {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
