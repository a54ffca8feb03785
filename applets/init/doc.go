// Package init is the init applet, corebox's PID 1: early mounts, the
// console and kernel log, the kernel command line and machine config,
// hostname, machine id, network, then the unit supervisor (package
// supervisor) behind the control socket (package control), and at the end
// an orderly shutdown into reboot, poweroff or kexec.
//
// Run as an ordinary process with --root DIR it is only the supervisor and
// its socket, rooted at DIR: nothing of the host (mounts, network,
// hostname) is touched, which is how it is tested without a VM.
package init
