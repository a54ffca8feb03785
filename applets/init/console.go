package init

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// consoleHandler writes init's log lines as "[  1.234567] init: msg k=v",
// with the kernel's monotonic clock, to the console and (at info priority)
// to /dev/kmsg, so they stand beside the kernel's own lines in dmesg.
type consoleHandler struct {
	mu      *sync.Mutex
	console io.Writer
	kmsg    io.Writer // nil when there is no /dev/kmsg
	level   slog.Level
	attrs   string
}

func newConsoleHandler(console, kmsg io.Writer, level slog.Level) *consoleHandler {
	return &consoleHandler{mu: &sync.Mutex{}, console: console, kmsg: kmsg, level: level}
}

func (h *consoleHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *consoleHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, a)
		return true
	})
	if r.Level >= slog.LevelWarn {
		b.WriteString(" level=" + r.Level.String())
	}
	msg := b.String()
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.console, "[%s] init: %s\n", monotonic(), msg)
	if h.kmsg != nil {
		prio := 6
		if r.Level >= slog.LevelError {
			prio = 3
		} else if r.Level >= slog.LevelWarn {
			prio = 4
		}
		fmt.Fprintf(h.kmsg, "<%d>init: %s\n", prio, msg)
	}
	return nil
}

func appendAttr(b *strings.Builder, a slog.Attr) {
	v := a.Value.String()
	if strings.ContainsAny(v, " \t\"=") || v == "" {
		v = fmt.Sprintf("%q", v)
	}
	fmt.Fprintf(b, " %s=%s", a.Key, v)
}

func (h *consoleHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, a)
	}
	c := *h
	c.attrs = b.String()
	return &c
}

func (h *consoleHandler) WithGroup(string) slog.Handler { return h }

// monotonic formats CLOCK_MONOTONIC as the kernel prints its timestamps.
func monotonic() string {
	ns := monotonicNanos()
	return fmt.Sprintf("%5d.%06d", ns/1e9, ns%1e9/1000)
}
