package server

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corebox/corebox/applets/etcd/client/etcdtest"
)

// TestTLSClientAndPeer runs a 3-member cluster with TLS on both ports and
// client-certificate auth: a client without a certificate is refused, one
// with a certificate signed by the CA gets through, and writes replicate.
func TestTLSClientAndPeer(t *testing.T) {
	pki := etcdtest.NewTLS(t, true)
	info := TLSInfo{CertFile: pki.CertFile, KeyFile: pki.KeyFile, TrustedCAFile: pki.TrustedCAFile, ClientCertAuth: true}
	c := newTestClusterWith(t, 3, "https", "tls", info)
	lead := c.leader()
	_, cliTLS, err := info.configs()
	if err != nil {
		t.Fatal(err)
	}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: cliTLS}, Timeout: 10 * time.Second}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cliTLS.RootCAs}}, Timeout: 10 * time.Second}
	follower := (lead + 1) % 3
	req, _ := http.NewRequest("PUT", c.url(follower)+"/v2/keys/secure", strings.NewReader("value=yes"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := withCert.Do(req)
	if err != nil {
		t.Fatalf("PUT with a client certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("PUT with a client certificate: %s", resp.Status)
	}
	if resp, err := noCert.Get(c.url(lead) + "/v2/keys/secure"); err == nil {
		resp.Body.Close()
		t.Fatalf("a client without a certificate got %s", resp.Status)
	}
	resp, err = withCert.Get(c.url((lead+2)%3) + "/v2/keys/secure?quorum=true")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("quorum GET over TLS: %s", resp.Status)
	}
}
