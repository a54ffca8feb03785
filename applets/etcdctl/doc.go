// Package etcdctl is the etcdctl applet: etcd's v2 command line (what
// `ETCDCTL_API=2 etcdctl` of etcd 3.4 does) over applets/etcd/client, with
// the same commands, flags, output formats, error messages and exit codes, so
// that scripts written for CoreOS's etcdctl keep working.
//
// It owns only the command line: parsing the way etcdctl's urfave/cli does
// (flags after arguments are moved before them, one value each), the help
// texts, and the printing of answers. Exit codes are etcdctl's: 1 bad
// arguments, 2 no connection to the cluster, 3 unknown command, 4 an error
// answered by etcd, 5 an unhealthy cluster.
package etcdctl
