// Package keypath holds the one path rule that the registry's server and
// its client share: how a request path is made canonical. It owns nothing
// else; key validation lives in the store.
package keypath

import "path"

// Canonical is Go's ServeMux cleaning of a request path, as etcd's client
// and server apply it: path.Clean with a leading slash, keeping a trailing
// slash.
func Canonical(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}
