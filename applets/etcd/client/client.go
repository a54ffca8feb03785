package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/corebox/corebox/applets/etcd/keypath"
)

// Config configures a Client. Only Endpoints is required.
type Config struct {
	// Endpoints are the members' client URLs, http://host:port or
	// https://host:port, optionally with a path prefix.
	Endpoints []string
	// TLS is used for https endpoints: the CA to trust, the client
	// certificate to present. Nil means the system's roots and no client
	// certificate.
	TLS *tls.Config
	// HeaderTimeout bounds each request until the answer's headers arrive
	// (dialling included); a request that exceeds it counts as a failed
	// attempt and the call moves to the next endpoint. It does not apply to
	// watches, whose answers come when an event does. Zero means 5s;
	// negative means no timeout.
	HeaderTimeout time.Duration
	// Retries is how many more attempts a call makes, round-robin across
	// the endpoints, after its first one fails. Zero means twice the number
	// of endpoints (as Sync last left them); negative means none. A pause
	// grows between rounds (250ms per round passed, at most 2s).
	Retries int
}

// Client talks to an etcd cluster through the v2 API. It is safe for
// concurrent use.
type Client struct {
	http          *http.Client
	transport     *http.Transport
	headerTimeout time.Duration
	retries       int // as configured: 0 is 2×len(endpoints), negative none

	mu        sync.Mutex
	endpoints []*url.URL
	pinned    int // index in endpoints of the one that answered last
}

// New validates cfg and returns a Client. It does not contact the cluster.
func New(cfg Config) (*Client, error) {
	eps, err := parseEndpoints(cfg.Endpoints)
	if err != nil {
		return nil, err
	}
	c := &Client{
		headerTimeout: cfg.HeaderTimeout,
		retries:       cfg.Retries,
		endpoints:     eps,
	}
	if c.headerTimeout == 0 {
		c.headerTimeout = 5 * time.Second
	}
	c.transport = &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     cfg.TLS.Clone(),
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	c.http = &http.Client{Transport: c.transport}
	return c, nil
}

func parseEndpoints(list []string) ([]*url.URL, error) {
	if len(list) == 0 {
		return nil, errors.New("etcd client: no endpoints")
	}
	eps := make([]*url.URL, 0, len(list))
	for _, s := range list {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("etcd client: endpoint %q: %w", s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("etcd client: endpoint %q: scheme must be http or https", s)
		}
		if u.Host == "" {
			return nil, fmt.Errorf("etcd client: endpoint %q: no host", s)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("etcd client: endpoint %q: only scheme, host, port and path are allowed", s)
		}
		eps = append(eps, u)
	}
	return eps, nil
}

// Endpoints returns the endpoints the client uses, in order.
func (c *Client) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.endpoints))
	for i, u := range c.endpoints {
		out[i] = u.String()
	}
	return out
}

// Sync replaces the client's endpoints with the client URLs the cluster's
// members publish, as etcdctl does before each command. It fails with
// ErrNoEndpoints when no member publishes one, leaving the endpoints as they
// were.
func (c *Client) Sync(ctx context.Context) error {
	ms, err := c.Members(ctx)
	if err != nil {
		return err
	}
	var urls []string
	for _, m := range ms {
		urls = append(urls, m.ClientURLs...)
	}
	if len(urls) == 0 {
		return ErrNoEndpoints
	}
	eps, err := parseEndpoints(urls)
	if err != nil {
		return fmt.Errorf("etcd client: sync: a member publishes a bad client URL: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.endpoints[c.pinned].String()
	c.endpoints, c.pinned = eps, 0
	for i, u := range eps {
		if u.String() == old {
			c.pinned = i
		}
	}
	return nil
}

// Close releases the client's idle connections. A Client needs no Close to
// be collected; it is for tests and short-lived programs.
func (c *Client) Close() {
	c.transport.CloseIdleConnections()
}

// request is one API call before it is sent to an endpoint.
type request struct {
	method string
	path   string     // under the endpoint's path, e.g. "/v2/keys/foo"
	query  url.Values // nil for none
	form   url.Values // body as application/x-www-form-urlencoded; nil for none
	json   []byte     // body as application/json; nil for none
	// wait marks a long poll (a watch): no header timeout.
	wait bool
	// create marks a request that must not run twice: it moves to another
	// endpoint only when it surely was not sent.
	create bool
}

// reply is an endpoint's answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends r to the endpoints in turn until one answers without a 5xx.
func (c *Client) do(ctx context.Context, r *request) (*reply, error) {
	c.mu.Lock()
	eps := c.endpoints
	first := c.pinned
	c.mu.Unlock()

	retries := c.retries
	switch {
	case retries == 0:
		retries = 2 * len(eps)
	case retries < 0:
		retries = 0
	}
	var errs []error
	for attempt := 0; attempt <= retries; attempt++ {
		if round := attempt / len(eps); attempt > 0 && attempt%len(eps) == 0 {
			pause := min(time.Duration(round)*250*time.Millisecond, 2*time.Second)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(pause):
			}
		}
		i := (first + attempt) % len(eps)
		rep, err := c.roundTrip(ctx, eps[i], r)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err == nil && rep.status/100 == 5 {
			err = serverError(eps[i], rep)
		}
		if err == nil {
			c.pin(eps, i)
			return rep, nil
		}
		errs = append(errs, err)
		if r.create && !notSent(err) {
			c.pin(eps, (i+1)%len(eps))
			return nil, err
		}
	}
	return nil, &ClusterError{Errors: errs}
}

// pin remembers endpoint i of eps, unless Sync replaced the list meanwhile.
func (c *Client) pin(eps []*url.URL, i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.endpoints) == len(eps) && &c.endpoints[0] == &eps[0] {
		c.pinned = i
	}
}

// ServerError is an endpoint's 5xx answer: it has no leader, is not
// connected to a quorum, or timed out. Err is what the body said (an *Error,
// a *MemberError), if anything.
type ServerError struct {
	Endpoint   string
	StatusCode int
	Err        error
}

// Error words e as etcd's Go client does, which etcdctl prints.
func (e *ServerError) Error() string {
	switch e.StatusCode {
	case http.StatusInternalServerError, http.StatusServiceUnavailable:
		return fmt.Sprintf("client: etcd member %s has no leader", e.Endpoint)
	}
	return fmt.Sprintf("client: etcd member %s returns server error [%s]", e.Endpoint, http.StatusText(e.StatusCode))
}

func (e *ServerError) Unwrap() error { return e.Err }

func serverError(ep *url.URL, rep *reply) error {
	e := &ServerError{Endpoint: ep.String(), StatusCode: rep.status}
	if err := decodeError(rep.status, rep.body); ErrorCode(err) != 0 {
		e.Err = err
	} else if me := (&MemberError{}); json.Unmarshal(rep.body, me) == nil && me.Message != "" {
		me.StatusCode = rep.status
		e.Err = me
	}
	return e
}

// notSent reports whether err says the request never left: the connection
// could not be made.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// errHeaderTimeout cancels a request whose headers took too long.
var errHeaderTimeout = errors.New("header timeout")

// roundTrip sends r to one endpoint and reads the whole answer. Transport
// errors come back without net/http's *url.Error wrapping, as etcd's client
// reports them ("dial tcp 127.0.0.1:1: connect: connection refused").
func (c *Client) roundTrip(ctx context.Context, ep *url.URL, r *request) (*reply, error) {
	u := *ep
	u.RawPath = ""
	u.Path = keypath.Canonical(ep.Path + r.path)
	u.RawQuery = r.query.Encode()
	var body io.Reader
	var contentType string
	switch {
	case r.form != nil:
		body, contentType = strings.NewReader(r.form.Encode()), "application/x-www-form-urlencoded"
	case r.json != nil:
		body, contentType = bytes.NewReader(r.json), "application/json"
	}

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(rctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("etcd client: building %s %s: %w", r.method, u.String(), err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	var timer *time.Timer
	if !r.wait && c.headerTimeout > 0 {
		timer = time.AfterFunc(c.headerTimeout, func() { cancel(errHeaderTimeout) })
	}
	resp, err := c.http.Do(req)
	if timer != nil && !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		if ctx.Err() == nil {
			return nil, fmt.Errorf("client: endpoint %s exceeded header timeout", ep)
		}
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}
