// Package runc is the `runc` applet: the OCI runtime command line over
// the container engine (applets/rkt/container), so that OCI tooling — the
// runtime-tools validation suite, containerd, podman — can drive corebox
// as its runtime. It owns the command line (commands, flags, exit codes,
// messages and output formats as runc has them) and the foreground duties
// of `run` and `exec` (signal forwarding, the terminal); the engine owns
// everything about the container itself.
//
// State lives under --root (default /run/corebox/runc, apart from runc's
// /run/runc).
package runc
