// Package rkt is the rkt applet: the daemonless pod command line of CoreOS
// (rkt 1.30's commands, flags and output formats) over corebox's image
// store (applets/rkt/image), container engine (applets/rkt/container),
// pod network (applets/rkt/network) and cgroups (applets/rkt/cgroups).
//
// It owns the command line, the pod model and the pods part of the data
// directory (--dir, default /var/lib/rkt; the image store and the network
// leases live beside it in the same directory):
//
//	pods/embryo/UUID          created, locked right after mkdir
//	pods/prepare/UUID         being prepared (locked), or an aborted prepare
//	pods/prepared/UUID        prepared: ready for run-prepared
//	pods/run/UUID             running (locked by its rkt) or exited
//	pods/exited-garbage/UUID  exited, marked by gc; deleted after the grace period
//	pods/garbage/UUID         to be deleted by the next gc
//
// A pod moves between phases by rename, so every reader sees it in exactly
// one. Its directory's flock is the pod's lock: exclusive for whoever
// prepares, runs or deletes it; list and status probe it with a shared
// lock taken and dropped at once. A pod in run/ is "running" while its rkt
// holds the lock, or while one of its apps' containers is still alive after
// that rkt died; otherwise it is "exited".
//
// A pod directory holds:
//
//	pod              the pod manifest (PodManifest, JSON): images by ID and
//	                 every app's command, environment, user, limits,
//	                 capabilities, seccomp and mounts, resolved at prepare time
//	runtime.json     what happened when it ran: pids, network, per-app exit
//	                 statuses, signals, OOM kills, times (written only by the
//	                 rkt holding the lock)
//	apps/NAME/       each app's bundle: config.json (the OCI spec generated
//	                 here) and rootfs (an overlay from the image store, with
//	                 upper/ and work/ beside it)
//	holder/          the namespace holder's bundle (pods with several apps)
//	volumes/NAME     kind=empty volumes
//	containers/      the engine's state root for the pod's containers
//
// Namespaces. A pod with one app is that app's container: it creates the
// pod's mount, PID, IPC, UTS and (unless --net=host) network namespaces.
// A pod with several apps gets a holder: a container whose only process is
// a 43-byte pause(2) loop (pause.go) that owns the PID, IPC, UTS and network
// namespaces and stays their PID 1; every app joins them by
// /proc/HOLDER/ns/* paths and has its own mount namespace. An app exiting
// thus never takes the others down; the pod ends when all its apps have
// exited (as rkt's), and the holder is killed then. The network is attached
// (network.Setup) to the owner's namespace after the engine created it and
// before any app runs, with the --port forwards (default network only:
// PORT-PROTO:HOSTPORT forwards the host's HOSTPORT, on every host address
// including 127.0.0.1, to the pod's PORT; status lists them as "ports="),
// and /etc/hosts and /etc/resolv.conf (--dns) are written into every
// app's rootfs first.
//
// Defaults of an app, as rkt's: capabilities CAP_AUDIT_WRITE, CAP_CHOWN,
// CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_KILL, CAP_MKNOD, CAP_NET_RAW,
// CAP_NET_BIND_SERVICE, CAP_SETUID, CAP_SETGID, CAP_SETPCAP, CAP_SETFCAP,
// CAP_SYS_CHROOT (--caps-retain/--caps-remove change them); the default
// seccomp profile of applets/rkt/seccomp (--seccomp changes it); runc's
// masked and read-only paths; no_new_privs. Limits go into a cgroup per app,
// /rkt/UUID/APP.
//
// Exit status: rkt's own failures exit 254 (as rkt 1.x); otherwise run
// exits with the app's status (128+N when signal N killed it), and for
// several apps with the first non-zero one in command-line order. Signals
// rkt receives while running a pod are forwarded to every app. A failed
// prepare or run deletes its pod at once; gc frees everything a pod held
// (containers, network lease and veth, cgroups, mounts) even after a crash.
//
// It does not own image formats or storage, the engine's namespaces and
// mounts, the network's bridge, addresses and NAT, or cgroup files.
package rkt
