package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"

	"github.com/corebox/corebox/applets/init/supervisor"
)

// Status and Entry are the supervisor's, as they travel on the wire.
type (
	Status = supervisor.Status
	Entry  = supervisor.Entry
)

// UnitFile is a unit file as GET /v1/units/NAME/file returns it.
type UnitFile struct {
	Name     string `json:"name"`
	Path     string `json:"path"`
	Contents string `json:"contents"`
}

// Error is an error answered by init. Kind is "not-found", "bad-request",
// "forbidden" or "failed".
type Error struct {
	Kind    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// ErrNotFound matches (errors.Is) an Error of kind "not-found".
var ErrNotFound = errors.New("not found")

func (e *Error) Is(target error) bool { return target == ErrNotFound && e.Kind == "not-found" }

// Client talks to init's control socket.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client of the socket at path (DefaultSocket if "").
func NewClient(path string) *Client {
	if path == "" {
		path = DefaultSocket
	}
	return &Client{socket: path, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	resp, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding init's answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) request(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://init"+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("talking to init at %s: %w", c.socket, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var ae apiError
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &ae) != nil || ae.Error == "" {
			ae = apiError{Error: fmt.Sprintf("%s %s: %s", method, path, resp.Status), Kind: "failed"}
		}
		return nil, &Error{Kind: ae.Kind, Message: ae.Error}
	}
	return resp, nil
}

// List returns every unit's status.
func (c *Client) List(ctx context.Context) ([]Status, error) {
	var out []Status
	return out, c.do(ctx, "GET", "/v1/units", nil, &out)
}

// Status returns one unit's status.
func (c *Client) Status(ctx context.Context, name string) (Status, error) {
	var out Status
	return out, c.do(ctx, "GET", "/v1/units/"+url.PathEscape(name), nil, &out)
}

// UnitFile returns a unit's file.
func (c *Client) UnitFile(ctx context.Context, name string) (UnitFile, error) {
	var out UnitFile
	return out, c.do(ctx, "GET", "/v1/units/"+url.PathEscape(name)+"/file", nil, &out)
}

// AddUnit writes a runtime unit file (validated by init first).
func (c *Client) AddUnit(ctx context.Context, name string, contents []byte) error {
	return c.do(ctx, "PUT", "/v1/units/"+url.PathEscape(name)+"/file", contents, nil)
}

// RemoveUnit stops and deletes a runtime unit file.
func (c *Client) RemoveUnit(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", "/v1/units/"+url.PathEscape(name)+"/file", nil, nil)
}

// Start, Stop and Restart act on a unit and return its status afterwards.
func (c *Client) Start(ctx context.Context, name string) (Status, error) {
	return c.action(ctx, name, "start")
}

func (c *Client) Stop(ctx context.Context, name string) (Status, error) {
	return c.action(ctx, name, "stop")
}

func (c *Client) Restart(ctx context.Context, name string) (Status, error) {
	return c.action(ctx, name, "restart")
}

func (c *Client) action(ctx context.Context, name, a string) (Status, error) {
	var out Status
	return out, c.do(ctx, "POST", "/v1/units/"+url.PathEscape(name)+"/"+a, nil, &out)
}

// Reload re-reads the unit files.
func (c *Client) Reload(ctx context.Context) error {
	return c.do(ctx, "POST", "/v1/reload", nil, nil)
}

// System asks init to "reboot", "poweroff" or "halt".
func (c *Client) System(ctx context.Context, action string) error {
	return c.do(ctx, "POST", "/v1/system/"+url.PathEscape(action), nil, nil)
}

// Kexec asks init to load req's kernel and then stop everything and boot it.
func (c *Client) Kexec(ctx context.Context, req PowerRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return c.do(ctx, "POST", "/v1/system/kexec", b, nil)
}

// Logs calls fn with the last n entries of unit ("" for all, n 0 for all
// kept) and, with follow, every new entry until ctx ends.
func (c *Client) Logs(ctx context.Context, unitName string, n int, follow bool, fn func(Entry) error) error {
	q := url.Values{}
	if unitName != "" {
		q.Set("unit", unitName)
	}
	if n > 0 {
		q.Set("n", strconv.Itoa(n))
	}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.request(ctx, "GET", "/v1/logs?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("decoding log entry: %w", err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}
