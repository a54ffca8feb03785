package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// discover runs the etcd v2 discovery protocol against discoveryURL (a
// keys URL such as http://host:2379/v2/keys/_etcd/registry/TOKEN, whose
// _config/size says how many members the cluster has): it registers this
// member, waits until the expected number have registered and returns the
// --initial-cluster they form. A member registered beyond the size is
// refused ("cluster is full").
func discover(ctx context.Context, hc *http.Client, discoveryURL, id, name string, peerURLs []string) (string, error) {
	base := strings.TrimSuffix(discoveryURL, "/")
	var size struct {
		Node struct{ Value string } `json:"node"`
	}
	if err := discoveryGet(ctx, hc, base+"/_config/size", &size); err != nil {
		return "", fmt.Errorf("--discovery: reading the cluster size: %w", err)
	}
	n, err := strconv.Atoi(size.Node.Value)
	if err != nil || n < 1 {
		return "", fmt.Errorf("--discovery: bad cluster size %q at %s/_config/size", size.Node.Value, base)
	}
	var self []string
	for _, u := range peerURLs {
		self = append(self, name+"="+u)
	}
	value := strings.Join(self, ",")
	form := url.Values{"value": {value}}
	req, _ := http.NewRequestWithContext(ctx, "PUT", base+"/"+id+"?prevExist=false", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("--discovery: registering: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusPreconditionFailed {
		return "", fmt.Errorf("--discovery: registering at %s: %s", base, resp.Status)
	}
	for {
		var dir struct {
			Node struct {
				ModifiedIndex uint64 `json:"modifiedIndex"`
				Nodes         []struct {
					Key          string `json:"key"`
					Value        string `json:"value"`
					CreatedIndex uint64 `json:"createdIndex"`
				} `json:"nodes"`
			} `json:"node"`
		}
		index, err := discoveryGetIndex(ctx, hc, base, &dir)
		if err != nil {
			return "", fmt.Errorf("--discovery: listing members: %w", err)
		}
		nodes := dir.Node.Nodes
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].CreatedIndex < nodes[j].CreatedIndex })
		if len(nodes) >= n {
			var cluster []string
			in := false
			for _, nd := range nodes[:n] {
				cluster = append(cluster, nd.Value)
				if strings.HasSuffix(nd.Key, "/"+id) {
					in = true
				}
			}
			if !in {
				return "", errors.New("--discovery: cluster is full")
			}
			return strings.Join(cluster, ","), nil
		}
		// Wait for the next registration.
		w := fmt.Sprintf("%s?wait=true&recursive=true&waitIndex=%d", base, index+1)
		var ev map[string]any
		if err := discoveryGet(ctx, hc, w, &ev); err != nil && ctx.Err() != nil {
			return "", fmt.Errorf("--discovery: waiting for %d members: %w", n, err)
		} else if err != nil {
			time.Sleep(500 * time.Millisecond)
		}
	}
}

func discoveryGet(ctx context.Context, hc *http.Client, u string, v any) error {
	_, err := discoveryGetIndex(ctx, hc, u, v)
	return err
}

// discoveryGetIndex GETs u into v and returns its X-Etcd-Index.
func discoveryGetIndex(ctx context.Context, hc *http.Client, u string, v any) (uint64, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	idx, _ := strconv.ParseUint(resp.Header.Get("X-Etcd-Index"), 10, 64)
	return idx, json.NewDecoder(resp.Body).Decode(v)
}
