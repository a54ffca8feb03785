package machine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// LoadOptions tune how Load fetches a config over HTTP. Zero fields take the
// defaults given.
type LoadOptions struct {
	Attempts       int           // GET attempts before giving up; default 5
	InitialBackoff time.Duration // wait after the first failure, doubling after each next; default 500ms
	MaxBackoff     time.Duration // the longest wait; default 5s
	// Client makes the requests; default a client with a 10s timeout.
	// Without a timeout, a server that never answers holds up the boot.
	Client *http.Client
	// Logf, when set, is told of each failed attempt that will be retried.
	Logf func(format string, args ...any)
}

func (o LoadOptions) withDefaults() LoadOptions {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// Load gets the machine config from source, the corebox.config= value, and
// decodes it with Decode: "" means embedded, the image's default; an
// absolute path is read; an http:// or https:// URL is fetched with GET.
// Anything else is an error naming source.
//
// A GET is retried, with exponential backoff, after a transport error, a
// 5xx, 408 or 429 status; any other status but 200 fails at once, as does a
// body over MaxConfigSize or a config that does not decode. Errors name the
// source, and after the last attempt the last cause. Cancelling ctx stops
// the retries.
func Load(ctx context.Context, source string, embedded []byte, opt LoadOptions) (*Config, error) {
	kind, err := parseSource(source)
	if err != nil {
		return nil, err
	}
	switch kind {
	case sourceEmbedded:
		if len(embedded) == 0 {
			return nil, errors.New("no config source given and no embedded default")
		}
		c, err := Decode(bytes.NewReader(embedded))
		if err != nil {
			return nil, fmt.Errorf("embedded default config: %w", err)
		}
		return c, nil
	case sourceFile:
		c, err := loadFile(source)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", source, err)
		}
		return c, nil
	}
	return loadURL(ctx, source, opt.withDefaults())
}

func loadFile(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	return Decode(f)
}

// permanentError is a fetch failure that retrying will not cure.
type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

func loadURL(ctx context.Context, u string, opt LoadOptions) (*Config, error) {
	backoff := opt.InitialBackoff
	var last error
	for attempt := 1; ; attempt++ {
		c, err := fetch(ctx, opt.Client, u)
		if err == nil {
			return c, nil
		}
		last = err
		var perm permanentError
		if errors.As(err, &perm) {
			return nil, fmt.Errorf("config %s: %w", u, perm.err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("config %s: stopped after attempt %d of %d: %w", u, attempt, opt.Attempts, last)
		}
		if attempt == opt.Attempts {
			break
		}
		opt.Logf("config %s: attempt %d of %d failed: %v; retrying in %s", u, attempt, opt.Attempts, err, backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("config %s: stopped after attempt %d of %d: %w (last failure: %w)", u, attempt, opt.Attempts, ctx.Err(), last)
		case <-t.C:
		}
		backoff = min(2*backoff, opt.MaxBackoff)
	}
	return nil, fmt.Errorf("config %s: giving up after %d attempts: %w", u, opt.Attempts, last)
}

// fetch makes one GET of u and decodes the body.
func fetch(ctx context.Context, client *http.Client, u string) (*Config, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, permanentError{err}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by the caller
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("server answered %s", resp.Status)
		switch {
		case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests:
			return nil, err
		}
		return nil, permanentError{err}
	}
	if resp.ContentLength > MaxConfigSize {
		return nil, permanentError{fmt.Errorf("body of %d bytes is over the %d MiB limit", resp.ContentLength, MaxConfigSize>>20)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if len(body) > MaxConfigSize {
		return nil, permanentError{fmt.Errorf("body is over the %d MiB limit", MaxConfigSize>>20)}
	}
	c, err := Decode(bytes.NewReader(body))
	if err != nil {
		return nil, permanentError{err}
	}
	return c, nil
}
