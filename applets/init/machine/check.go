package machine

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// This file holds the checks that the config and the command line share.

// hostNameMax is Linux's HOST_NAME_MAX.
const hostNameMax = 64

// checkHostname accepts a host name of RFC 1123 labels, at most hostNameMax
// bytes in all.
func checkHostname(s string) error {
	if len(s) > hostNameMax {
		return fmt.Errorf("%q is not a host name: longer than %d characters", s, hostNameMax)
	}
	if err := checkLabels(s); err != nil {
		return fmt.Errorf("%q is not a host name: %w", s, err)
	}
	return nil
}

// checkLabels accepts dot-separated RFC 1123 labels: 1–63 letters, digits
// and hyphens, no hyphen first or last.
func checkLabels(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	for label := range strings.SplitSeq(s, ".") {
		switch {
		case label == "":
			return errors.New("empty label")
		case len(label) > 63:
			return fmt.Errorf("label %q is longer than 63 characters", label)
		case label[0] == '-' || label[len(label)-1] == '-':
			return fmt.Errorf("label %q starts or ends with a hyphen", label)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' {
				return fmt.Errorf("label %q has %q; only letters, digits and hyphens are allowed", label, c)
			}
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// checkInterface accepts what Linux's dev_valid_name accepts, less control
// characters: 1–15 bytes, not "." or "..", no '/', ':' or whitespace.
func checkInterface(s string) error {
	bad := s == "" || len(s) > 15 || s == "." || s == ".."
	for i := 0; !bad && i < len(s); i++ {
		c := s[i]
		bad = c == '/' || c == ':' || isSpace(c) || c < 0x20 || c == 0x7f
	}
	if bad {
		return fmt.Errorf("%q is not an interface name", s)
	}
	return nil
}

// checkHTTPURL accepts an absolute http or https URL whose host is an IP
// address or a DNS name, with a port in range if it has one.
func checkHTTPURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", s, errors.Unwrap(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q is not an http or https URL", s)
	}
	host := u.Hostname()
	if host == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		if len(host) > 253 {
			return nil, fmt.Errorf("%q: host is longer than 253 characters", s)
		}
		if err := checkLabels(host); err != nil {
			return nil, fmt.Errorf("%q: host %q is not an IP address or DNS name: %w", s, host, err)
		}
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: port %q is out of range", s, p)
		}
	}
	return u, nil
}

// sourceKind is where a config comes from.
type sourceKind int

const (
	sourceEmbedded sourceKind = iota
	sourceFile
	sourceHTTP
)

// parseSource classifies a corebox.config= value: "" is the embedded
// default, an absolute path a file, an http(s) URL a download.
func parseSource(s string) (sourceKind, error) {
	switch {
	case s == "":
		return sourceEmbedded, nil
	case strings.HasPrefix(s, "/"):
		if strings.IndexByte(s, 0) >= 0 {
			return 0, fmt.Errorf("config source %q: path contains a NUL byte", s)
		}
		return sourceFile, nil
	case strings.HasPrefix(strings.ToLower(s), "http://"), strings.HasPrefix(strings.ToLower(s), "https://"):
		if _, err := checkHTTPURL(s); err != nil {
			return 0, fmt.Errorf("config source %w", err)
		}
		return sourceHTTP, nil
	}
	return 0, fmt.Errorf("config source %q is neither an absolute path nor an http(s) URL", s)
}

// fieldError is one problem with one field of a Config.
type fieldError struct {
	path string // "network.address", "units[2].name"
	msg  string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

func fieldErr(path, format string, a ...any) error {
	return &fieldError{path: path, msg: fmt.Sprintf(format, a...)}
}

// joinInline joins errs on one line, for errors about one value; nil when
// errs is empty.
func joinInline(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	args := make([]any, len(errs))
	for i, e := range errs {
		args[i] = e
	}
	return fmt.Errorf(strings.TrimSuffix(strings.Repeat("%w; ", len(errs)), "; "), args...)
}
