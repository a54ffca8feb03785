package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/corebox/corebox/applets/etcd/keypath"
)

// Member is a member of the cluster. A member that was added but has not
// started yet has no Name and no ClientURLs.
type Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
}

const membersPath = "/v2/members"

// Members lists the cluster's members.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	rep, err := c.do(ctx, &request{method: "GET", path: membersPath})
	if err != nil {
		return nil, err
	}
	if rep.status != http.StatusOK {
		return nil, unexpectedStatus(rep)
	}
	return decodeMembers(rep.body)
}

// decodeMembers decodes the members API's list.
func decodeMembers(body []byte) ([]Member, error) {
	var list struct {
		Members []Member `json:"members"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("etcd client: decoding the member list: %w", err)
	}
	return list.Members, nil
}

// Leader returns the member that leads the cluster.
func (c *Client) Leader(ctx context.Context) (Member, error) {
	rep, err := c.do(ctx, &request{method: "GET", path: membersPath + "/leader"})
	if err != nil {
		return Member{}, err
	}
	if rep.status != http.StatusOK {
		return Member{}, unexpectedStatus(rep)
	}
	var m Member
	if err := json.Unmarshal(rep.body, &m); err != nil {
		return Member{}, fmt.Errorf("etcd client: decoding the leader: %w", err)
	}
	return m, nil
}

// AddMember adds a member that will join with peerURL, and returns it (with
// its new ID, without a name until it starts). The cluster refuses with a
// *MemberError, e.g. when the URL is a member's already.
func (c *Client) AddMember(ctx context.Context, peerURL string) (Member, error) {
	urls, err := checkPeerURLs([]string{peerURL})
	if err != nil {
		return Member{}, err
	}
	body, _ := json.Marshal(map[string][]string{"peerURLs": urls})
	rep, err := c.do(ctx, &request{method: "POST", path: membersPath, json: body, create: true})
	if err != nil {
		return Member{}, err
	}
	switch rep.status {
	case http.StatusCreated:
		var m Member
		if err := json.Unmarshal(rep.body, &m); err != nil {
			return Member{}, fmt.Errorf("etcd client: decoding the added member: %w", err)
		}
		return m, nil
	case http.StatusConflict:
		return Member{}, memberError(rep)
	}
	return Member{}, unexpectedStatus(rep)
}

// RemoveMember removes the member with the given (hexadecimal) ID. Removing
// a member that was removed already succeeds.
func (c *Client) RemoveMember(ctx context.Context, id string) error {
	rep, err := c.do(ctx, &request{method: "DELETE", path: membersPath + "/" + url.PathEscape(id)})
	if err != nil {
		return err
	}
	switch rep.status {
	case http.StatusNoContent, http.StatusGone:
		return nil
	case http.StatusNotFound, http.StatusConflict:
		return memberError(rep)
	}
	return unexpectedStatus(rep)
}

// UpdateMember replaces the peer URLs of the member with the given ID.
func (c *Client) UpdateMember(ctx context.Context, id string, peerURLs []string) error {
	urls, err := checkPeerURLs(peerURLs)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string][]string{"peerURLs": urls})
	rep, err := c.do(ctx, &request{method: "PUT", path: membersPath + "/" + url.PathEscape(id), json: body})
	if err != nil {
		return err
	}
	switch rep.status {
	case http.StatusNoContent:
		return nil
	case http.StatusNotFound, http.StatusConflict:
		return memberError(rep)
	}
	return unexpectedStatus(rep)
}

// checkPeerURLs validates peer URLs as etcd does (scheme http, https, unix
// or unixs; host:port; no path) and returns them sorted.
func checkPeerURLs(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("no valid URLs given")
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		switch u.Scheme {
		case "http", "https", "unix", "unixs":
		default:
			return nil, fmt.Errorf("URL scheme must be http, https, unix, or unixs: %s", s)
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil {
			return nil, fmt.Errorf(`URL address does not have the form "host:port": %s`, s)
		}
		if u.Path != "" {
			return nil, fmt.Errorf("URL must not contain a path: %s", s)
		}
		out = append(out, u.String())
	}
	slices.Sort(out)
	return out, nil
}

func memberError(rep *reply) error {
	e := &MemberError{StatusCode: rep.status}
	if err := json.Unmarshal(rep.body, e); err != nil || e.Message == "" {
		return unexpectedStatus(rep)
	}
	return e
}

// unexpectedStatus words an answer the API does not define, as etcd's
// client does.
func unexpectedStatus(rep *reply) error {
	return fmt.Errorf("unexpected status code %d", rep.status)
}

// Health asks the member at endpoint (a client URL) whether it is healthy:
// nil if it answers {"health":"true"}, an error wrapping ErrUnhealthy if it
// answers otherwise, and net/http's error if it does not answer. Health goes
// to endpoint only, whatever the client's endpoints are.
func (c *Client) Health(ctx context.Context, endpoint string) error {
	body, err := c.get(ctx, endpoint, "/health")
	if err != nil {
		return err
	}
	var asString struct{ Health string }
	var asBool struct{ Health bool }
	if err := json.Unmarshal(body, &asString); err != nil {
		if err := json.Unmarshal(body, &asBool); err != nil {
			return fmt.Errorf("decoding the /health answer of %s: %w", endpoint, err)
		}
	}
	if asString.Health == "true" || asBool.Health {
		return nil
	}
	return fmt.Errorf("%w: %s answered %s", ErrUnhealthy, endpoint, excerpt(body))
}

// Version returns the etcd version of the member at endpoint and the
// cluster's version ("not_decided" while the cluster has not agreed on one).
func (c *Client) Version(ctx context.Context, endpoint string) (server, cluster string, err error) {
	body, err := c.get(ctx, endpoint, "/version")
	if err != nil {
		return "", "", err
	}
	var v struct {
		Server  string `json:"etcdserver"`
		Cluster string `json:"etcdcluster"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return "", "", fmt.Errorf("decoding the /version answer of %s: %w", endpoint, err)
	}
	return v.Server, v.Cluster, nil
}

// get reads endpoint+p whatever its status, bounded by the header timeout.
func (c *Client) get(ctx context.Context, endpoint, p string) ([]byte, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, fmt.Errorf("etcd client: endpoint %q: %w", endpoint, err)
	}
	u.RawPath = ""
	u.Path = keypath.Canonical(u.Path + p)
	if c.headerTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.headerTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("etcd client: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	return body, nil
}
