// Package etcd is the etcd applet: the registry member, configured with
// etcd's flags and ETCD_* variables. The member itself (raft, the peer
// port, the v2 HTTP API) is package server; the data model is package
// store; the client other applets use is package client.
package etcd
