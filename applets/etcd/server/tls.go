package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// loadTLS reads t's files: the server side presents the certificate and,
// with ClientCertAuth, requires client certificates signed by the CA; the
// client side (peers dialing each other, forwarding) trusts the CA and
// presents the same certificate.
func loadTLS(t TLSInfo) (*tls.Config, *tls.Config, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, nil, fmt.Errorf("TLS needs both a certificate and a key file (got cert %q, key %q)", t.CertFile, t.KeyFile)
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("loading %s and %s: %w", t.CertFile, t.KeyFile, err)
	}
	srv := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	cli := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.TrustedCAFile != "" {
		pem, err := os.ReadFile(t.TrustedCAFile)
		if err != nil {
			return nil, nil, fmt.Errorf("reading CA %s: %w", t.TrustedCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("CA file %s holds no PEM certificate", t.TrustedCAFile)
		}
		srv.ClientCAs = pool
		cli.RootCAs = pool
	}
	if t.ClientCertAuth {
		if srv.ClientCAs == nil {
			return nil, nil, fmt.Errorf("client certificate auth needs a trusted CA file")
		}
		srv.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return srv, cli, nil
}
