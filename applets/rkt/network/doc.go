// Package network attaches rkt pods to the default pod network: a Linux
// bridge on the host (the network's gateway), one veth pair per pod whose
// inner end is the pod's eth0, IPv4 addresses from a lease file that survives
// restarts, a default route via the gateway, nftables masquerade for the
// pod's traffic leaving the subnet and port forwards from host ports to the
// pod (rkt's --port, what CNI's portmap plugin did). It also writes a pod's
// /etc/hosts and /etc/resolv.conf.
//
// What it owns: the bridge named by Config.Bridge, the host ends of the veth
// pairs it creates (names "veth" + 8 hex digits), the lease directory
// Config.StateDir/<bridge>/ and, in the nftables table "corebox" (family ip),
// the chains "masquerade-<bridge>" (postrouting), "portmap-in-<bridge>"
// (prerouting) and "portmap-local-<bridge>" (output). The two portmap
// chains hold one rule per forward each, its comment naming the pod and the
// host port ("corebox-rkt pod=ID tcp/8080"): Teardown deletes a pod's rules
// by that name, and Setup refuses a host port that any network's rule
// forwards. The lease file records each pod's forwards too. It turns
// net.ipv4.ip_forward on and never turns it off again (other users of the
// host may rely on it), and turns route_localnet on for a bridge with
// forwards (so that 127.0.0.1:HOSTPORT reaches the pod); that setting goes
// with the bridge.
//
// Forwarded host ports are checked under the network's lock against its
// own leases and then against every network's rules; two networks (two
// lease directories) setting up the same host port at the same moment are
// not serialised against each other. Conntrack entries of connections that
// were forwarded are left to expire.
//
// Lifetime: Setup creates the bridge and the NAT chains when they are missing;
// Teardown removes them again when the network's last lease is released and
// no other interface is enslaved to the bridge, so a host with no pods has no
// trace of the network except the lease directory and the (empty) "corebox"
// table. The table is never deleted: deleting a table deletes every chain in
// it, and another network (another bridge, another lease directory and lock)
// may be adding its chain at the same moment.
//
// A bridge this package creates carries its lease directory in its alias
// ("corebox-rkt leases=DIR"): a second lease directory naming the same
// bridge would hand out the same addresses, so Setup refuses it while the
// first network has leases or ports, and takes an idle bridge over. A new
// bridge whose subnet overlaps one of the host's routes is refused.
//
// Concurrency: every Setup and Teardown of one network holds an exclusive
// flock on Config.StateDir/<bridge>/lock for its whole duration, so
// concurrent rkt processes never hand out the same address nor race on the
// bridge and the NAT chain.
//
// What it does not own: creating or destroying the pod's network namespace
// (the container engine does that and passes its path), --net=host (nothing
// to do) and IPv6 (the pod network is IPv4 only).
package network
