package machine

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLoadEmbedded(t *testing.T) {
	def, err := os.ReadFile("testdata/default.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(t.Context(), "", def, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "corebox" || c.Network.Mode != ModeDHCP {
		t.Errorf("Load of the embedded default = %+v", *c)
	}
	if _, err := Load(t.Context(), "", nil, LoadOptions{}); err == nil || err.Error() != "no config source given and no embedded default" {
		t.Errorf("Load with nothing embedded: %v", err)
	}
	_, err = Load(t.Context(), "", []byte(`{"hostname": "x_y"}`), LoadOptions{})
	if want := `embedded default config: hostname: "x_y" is not a host name: label "x_y" has '_'; only letters, digits and hyphens are allowed`; err == nil || err.Error() != want {
		t.Errorf("Load of a bad embedded config: %v, want %s", err, want)
	}
}

func TestLoadFile(t *testing.T) {
	abs := func(name string) string {
		p, err := filepath.Abs(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := Load(t.Context(), abs("static.json"), nil, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := staticConfig(); !reflect.DeepEqual(*c, want) {
		t.Errorf("Load = %+v\nwant %+v", *c, want)
	}

	dir := t.TempDir()
	tests := []struct {
		path string
		want string
	}{
		{abs("bad-values.json"), "config " + abs("bad-values.json") + `: hostname: "-node1" is not a host name`},
		{abs("bad-trailing.json"), "config " + abs("bad-trailing.json") + ": config has data after its object, at line 2, column 1"},
		{filepath.Join(dir, "missing.json"), "config " + filepath.Join(dir, "missing.json") + ": open " + filepath.Join(dir, "missing.json") + ": no such file or directory"},
		{dir, "config " + dir + ": not a regular file (d---------)"},
	}
	for _, tt := range tests {
		c, err := Load(t.Context(), tt.path, nil, LoadOptions{})
		if err == nil {
			t.Errorf("Load(%s) = %+v, want an error", tt.path, *c)
			continue
		}
		if !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Load(%s):\n%v\nwant it to start with:\n%s", tt.path, err, tt.want)
		}
	}
}

func TestLoadBadSource(t *testing.T) {
	for _, src := range []string{"config.json", "./config.json", "ftp://example.com/c.json", "file:///etc/c.json", "http:/x", "https://", "https://a b/"} {
		_, err := Load(t.Context(), src, []byte("{}"), LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", src)) {
			t.Errorf("Load(%q): %v, want an error naming the source", src, err)
		}
	}
}

// logRecorder collects Logf lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logRecorder) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func TestLoadHTTP(t *testing.T) {
	static, err := os.ReadFile("testdata/static.json")
	if err != nil {
		t.Fatal(err)
	}
	fast := LoadOptions{InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}

	t.Run("ok", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet || r.URL.Path != "/machines/node1.json" {
				http.NotFound(w, r)
				return
			}
			w.Write(static)
		}))
		defer srv.Close()
		c, err := Load(t.Context(), srv.URL+"/machines/node1.json", nil, fast)
		if err != nil {
			t.Fatal(err)
		}
		if want := staticConfig(); !reflect.DeepEqual(*c, want) {
			t.Errorf("Load = %+v\nwant %+v", *c, want)
		}
	})

	t.Run("fails twice then succeeds", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch n.Add(1) {
			case 1:
				http.Error(w, "starting", http.StatusServiceUnavailable)
			case 2:
				// A dropped connection: a transport error.
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
			default:
				w.Write(static)
			}
		}))
		defer srv.Close()
		var log logRecorder
		opt := fast
		opt.Logf = log.Logf
		u := srv.URL + "/c.json"
		c, err := Load(t.Context(), u, nil, opt)
		if err != nil {
			t.Fatal(err)
		}
		if c.Hostname != "node1.cluster.example" {
			t.Errorf("hostname %q", c.Hostname)
		}
		if got := n.Load(); got != 3 {
			t.Errorf("%d requests, want 3", got)
		}
		lines := log.Lines()
		if len(lines) != 2 {
			t.Fatalf("logged %q, want 2 lines", lines)
		}
		if want := "config " + u + ": attempt 1 of 5 failed: server answered 503 Service Unavailable; retrying in 1ms"; lines[0] != want {
			t.Errorf("log line 1 = %q\nwant %q", lines[0], want)
		}
		if want := "config " + u + ": attempt 2 of 5 failed: "; !strings.HasPrefix(lines[1], want) || !strings.HasSuffix(lines[1], "; retrying in 2ms") {
			t.Errorf("log line 2 = %q\nwant %q…; retrying in 2ms", lines[1], want)
		}
	})

	t.Run("never answers", func(t *testing.T) {
		var n atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			<-r.Context().Done()
		}))
		defer srv.Close()
		var log logRecorder
		opt := fast
		opt.Attempts = 3
		opt.Client = &http.Client{Timeout: 50 * time.Millisecond}
		opt.Logf = log.Logf
		u := srv.URL + "/c.json"
		_, err := Load(t.Context(), u, nil, opt)
		if err == nil {
			t.Fatal("Load succeeded")
		}
		if want := "config " + u + ": giving up after 3 attempts: "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "Client.Timeout exceeded") {
			t.Errorf("error %q, want %q and the timeout", err, want)
		}
		if got := n.Load(); got != 3 {
			t.Errorf("%d requests, want 3", got)
		}
		if got := len(log.Lines()); got != 2 {
			t.Errorf("%d log lines, want one per retry: 2", got)
		}
	})

	t.Run("nobody listening", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL + "/c.json"
		srv.Close()
		opt := fast
		opt.Attempts = 2
		_, err := Load(t.Context(), u, nil, opt)
		if want := "config " + u + ": giving up after 2 attempts: dial tcp"; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %v, want it to start with %q", err, want)
		}
	})

	permanent := []struct {
		name    string
		handler http.HandlerFunc
		want    string // after "config URL: "
	}{
		{"404", http.NotFound, "server answered 404 Not Found"},
		{"403", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) }, "server answered 403 Forbidden"},
		{"too large", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", fmt.Sprint(MaxConfigSize+1))
			w.Write([]byte(strings.Repeat(" ", MaxConfigSize+1)))
		}, fmt.Sprintf("body of %d bytes is over the 1 MiB limit", MaxConfigSize+1)},
		{"too large, no length", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(" "))
			w.(http.Flusher).Flush()
			w.Write([]byte(strings.Repeat(" ", MaxConfigSize)))
		}, "body is over the 1 MiB limit"},
		{"bad config", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"network": {"mode": "static", "address": "10.0.0.5"}}`))
		}, `network.address: "10.0.0.5" is not a CIDR address`},
	}
	for _, tt := range permanent {
		t.Run(tt.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				tt.handler(w, r)
			}))
			defer srv.Close()
			u := srv.URL + "/c.json"
			_, err := Load(t.Context(), u, nil, fast)
			if want := "config " + u + ": " + tt.want; err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
			if got := n.Load(); got != 1 {
				t.Errorf("%d requests, want 1: this failure is not retried", got)
			}
		})
	}

	t.Run("backoff doubles up to the maximum", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		}))
		defer srv.Close()
		var log logRecorder
		opt := LoadOptions{Attempts: 6, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Logf: log.Logf}
		_, err := Load(t.Context(), srv.URL, nil, opt)
		if want := "config " + srv.URL + ": giving up after 6 attempts: server answered 429 Too Many Requests"; err == nil || err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
		var waits []string
		for _, l := range log.Lines() {
			waits = append(waits, l[strings.LastIndex(l, " ")+1:])
		}
		if want := []string{"1ms", "2ms", "4ms", "5ms", "5ms"}; !reflect.DeepEqual(waits, want) {
			t.Errorf("waits %q, want %q", waits, want)
		}
	})

	t.Run("cancelled while waiting", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
		}))
		defer srv.Close()
		ctx, cancel := context.WithCancel(t.Context())
		opt := LoadOptions{InitialBackoff: time.Hour, Logf: func(string, ...any) { cancel() }}
		_, err := Load(ctx, srv.URL, nil, opt)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if want := "config " + srv.URL + ": stopped after attempt 1 of 5: context canceled (last failure: server answered 502 Bad Gateway)"; err.Error() != want {
			t.Errorf("error:\n%v\nwant:\n%s", err, want)
		}
	})
}
