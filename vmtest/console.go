package vmtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// tailSize is how much of the console an error message shows.
const tailSize = 2048

// console is the transcript of the serial console and the Expect cursor.
type console struct {
	mu      sync.Mutex
	buf     []byte
	cursor  int           // where the next Expect starts matching
	changed chan struct{} // closed and replaced on every append
	log     io.Writer
}

func (c *console) init(log io.Writer) {
	c.changed = make(chan struct{})
	c.log = log
}

// append adds console output and wakes the waiters. Only readConsole calls
// it, so the copy to log keeps the console's order.
func (c *console) append(p []byte) {
	if c.log != nil {
		c.log.Write(p)
	}
	c.mu.Lock()
	c.buf = append(c.buf, p...)
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return string(c.buf)
}

// match looks for re after the cursor and moves the cursor past the match.
// When there is none it returns the channel that is closed on new output.
func (c *console) match(re *regexp.Regexp) ([]string, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rest := c.buf[c.cursor:]
	m := re.FindSubmatchIndex(rest)
	if m == nil {
		return nil, c.changed
	}
	subs := make([]string, len(m)/2)
	for i := range subs {
		if m[2*i] >= 0 {
			subs[i] = string(rest[m[2*i]:m[2*i+1]])
		}
	}
	c.cursor += m[1]
	return subs, nil
}

// tail returns the last tailSize bytes of the console for an error message.
func (c *console) tail() string {
	c.mu.Lock()
	n := len(c.buf)
	c.mu.Unlock()
	return c.tailFrom(max(0, n-tailSize))
}

// tailFrom returns up to tailSize bytes of the console from offset i on.
func (c *console) tailFrom(i int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.buf[i:min(len(c.buf), i+tailSize)]
	return strings.ReplaceAll(string(s), "\r", "")
}

// Expect waits until the console output after the previous match matches re,
// moves past the match and returns the match and its submatches as
// re.FindStringSubmatch does. It fails when ctx is done or QEMU exits first;
// the error then shows the end of the console and, on exit, wraps ErrExited.
func (v *VM) Expect(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	exited := false
	for {
		subs, changed := v.console.match(re)
		if subs != nil {
			return subs, nil
		}
		if exited {
			return nil, fmt.Errorf("vmtest: waiting for console output matching %q: %w%s; console ends with:\n%s",
				re, ErrExited, v.exitDetail(), v.console.tail())
		}
		select {
		case <-changed:
		case <-v.done:
			exited = true // match once more: readConsole drained the output before done
		case <-ctx.Done():
			return nil, fmt.Errorf("vmtest: waiting for console output matching %q: %w; console ends with:\n%s",
				re, ctx.Err(), v.console.tail())
		}
	}
}

// ExpectString is Expect for the literal s.
func (v *VM) ExpectString(ctx context.Context, s string) error {
	_, err := v.Expect(ctx, regexp.MustCompile(regexp.QuoteMeta(s)))
	return err
}

// ExitError is Run's error for a command whose exit status is not 0.
type ExitError struct {
	Cmd    string
	Status int
	Output string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("vmtest: %q exited with status %d; its output:\n%s", e.Cmd, e.Status, e.Output)
}

// Run types cmd into a shell on the console, waits for it to finish and
// returns what it printed (standard output and error, as the console shows
// them, with "\r\n" turned into "\n"). cmd is one command line as a shell
// reads it, not ending in '&' (the ';' that follows would make that a syntax
// error). A status other than 0 is an *ExitError that carries the output
// too. Run moves the Expect cursor past the command's end.
//
// The line typed is
//
//	echo 'VMTEST''_B_<id>'; cmd; echo 'VMTEST''_E_<id>' $?
//
// so that the markers appear joined only in the shell's output, never in the
// terminal's echo of the line.
func (v *VM) Run(ctx context.Context, cmd string) (string, error) {
	if strings.ContainsAny(cmd, "\r\n") {
		return "", fmt.Errorf("vmtest: run %q: a command must be one line", cmd)
	}
	v.runMu.Lock()
	v.runs++
	id := v.token + "_" + strconv.Itoa(v.runs)
	v.runMu.Unlock()

	begin, end := "VMTEST_B_"+id, "VMTEST_E_"+id
	line := fmt.Sprintf("echo 'VMTEST''_B_%s'; %s; echo 'VMTEST''_E_%s' $?\n", id, cmd, id)
	re := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(begin) + `\r?\n(.*?)` + regexp.QuoteMeta(end) + ` (\d+)\r?\n`)
	if err := v.Send(line); err != nil {
		return "", fmt.Errorf("vmtest: run %q: %w", cmd, err)
	}
	m, err := v.Expect(ctx, re)
	if err != nil {
		return "", fmt.Errorf("vmtest: run %q: %w", cmd, err)
	}
	out := strings.ReplaceAll(m[1], "\r\n", "\n")
	status, _ := strconv.Atoi(m[2])
	if status != 0 {
		return out, &ExitError{Cmd: cmd, Status: status, Output: out}
	}
	return out, nil
}

// terminalControl matches what LineWriter leaves out of a line: escape
// sequences (the firmware's screen control) and control characters.
var terminalControl = regexp.MustCompile(`\x1b(\[[0-9;?]*[@-~]|.)|[\x00-\x08\x0b-\x1f\x7f]`)

// LineWriter returns a writer for Config.Log that passes each complete line
// to logf (t.Logf in a test) after prefix, without carriage returns, escape
// sequences and other control characters. A last line without a newline is
// held back until its newline comes.
func LineWriter(logf func(format string, args ...any), prefix string) io.Writer {
	return &lineWriter{logf: logf, prefix: prefix}
}

type lineWriter struct {
	mu     sync.Mutex
	logf   func(format string, args ...any)
	prefix string
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := terminalControl.ReplaceAll(w.buf[:i], nil)
		w.logf("%s%s", w.prefix, line)
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}
