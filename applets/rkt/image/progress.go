package image

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// progressBar draws download progress on a terminal; on anything else
// (or nil) it draws nothing.
type progressBar struct {
	w     io.Writer // nil: no drawing
	label string
	total int64

	mu    sync.Mutex
	done  int64
	start time.Time
	drawn time.Time
}

func newProgressBar(w io.Writer, label string) *progressBar {
	if !isTerminal(w) {
		w = nil
	}
	return &progressBar{w: w, label: label, start: time.Now()}
}

// isTerminal says whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func (b *progressBar) add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.w == nil || time.Since(b.drawn) < 100*time.Millisecond {
		return
	}
	b.drawn = time.Now()
	fmt.Fprint(b.w, "\r"+renderBar(b.label, b.done, b.total, time.Since(b.start), 30))
}

func (b *progressBar) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil {
		return
	}
	fmt.Fprint(b.w, "\r"+renderBar(b.label, b.done, b.total, time.Since(b.start), 30)+"\n")
}

// renderBar is one line of progress: label, bar, bytes and rate.
func renderBar(label string, done, total int64, elapsed time.Duration, width int) string {
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	full := int(frac * float64(width))
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	rate := ""
	if s := elapsed.Seconds(); s > 0 {
		rate = " " + humanBytes(int64(float64(done)/s)) + "/s"
	}
	return fmt.Sprintf("%s [%s] %s/%s%s", label, bar, humanBytes(done), humanBytes(total), rate)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
