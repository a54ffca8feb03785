// Package etcdtest runs a real etcd for tests: the `etcd` found on $PATH
// (Debian's etcd 3.4 in CI) with the v2 API enabled, on loopback ports, with
// its data in the test's temporary directory. Tests that need it are skipped
// with a message when no etcd is installed. It owns nothing but starting,
// stopping and waiting for those processes.
package etcdtest
