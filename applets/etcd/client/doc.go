// Package client is corebox's client of the etcd v2 API: the keys API
// (/v2/keys), the members API (/v2/members), /health and /version, spoken
// over plain HTTP/JSON with the standard library only. It is what fleet,
// locksmith and etcdctl use to reach the registry, and because it speaks only
// the public v2 API it works the same against corebox's etcd and against a
// real etcd 3.4 started with --enable-v2.
//
// A Client holds a list of endpoints. A call goes to the endpoint that last
// answered; on a connection error or a 5xx answer it moves on to the next one,
// up to Config.Retries more attempts, and remembers the endpoint that worked.
// An etcd error (a 4xx answer carrying an errorCode) is the answer to the
// call: it is returned as an *Error and never retried. Calls that create
// something (Create, CreateInOrder, Set with PrevExist "false", AddMember)
// move on only when the request surely never reached a server (the connection
// could not be made), so that a lost answer cannot turn into a second,
// spurious "already exists". (Other writes may be sent again after a lost
// answer, as etcd's own client does; a delete or compare-and-swap retried so
// may then report 100 or 101 about its own first success, which a
// compare-and-swap loop handles by reading again.) When every attempt fails
// the error is a *ClusterError listing each attempt's error; a 5xx attempt
// is a *ServerError. A cancelled or expired context
// ends a call at once with the context's error, unwrapped.
//
// The JSON field names of Node and Response are those of etcd's own Go
// client, so that marshalling a Response gives what etcdctl -o json prints.
//
// The package owns the wire protocol and the endpoint bookkeeping; it owns no
// command line (applets/etcdctl) and no server (applets/etcd).
package client
