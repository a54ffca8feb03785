// Package faulttest runs the registry as real processes on loopback and
// injects faults into them: kill -9 and restart, SIGSTOP and SIGCONT, and
// network partitions between members through a TCP proxy on the peer ports.
//
// The package's library is the machinery: Member (one `corebox etcd`
// process with its data dir and log), Cluster (the layout of ports, data
// dirs and flags of n members, optionally behind a Proxy), Proxy (a TCP
// proxy in front of every member's peer port that stalls or refuses the
// connections between chosen pairs of members) and Client (the few v2 calls
// the tests make, with errors that keep "the server said no" apart from "the
// answer was lost"). The tests are the cluster tier of corebox's tests: fail
// over, restart, membership changes, snapshot catch-up, and a porcupine
// linearizability check of a register-with-CAS history recorded under faults.
//
// The package owns no part of the registry; it drives the binary the way an
// operator would, through flags, signals and the HTTP API.
package faulttest
