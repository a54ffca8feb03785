// Package supervisor runs systemd-style units for corebox's init: it loads
// unit files from a list of directories, starts units in dependency order,
// restarts them by their Restart= policy with backoff, puts every unit in
// its own cgroup so that stopping it kills its whole process tree, keeps
// every unit's output in a journal, and stops everything in reverse order at
// shutdown.
//
// It owns the process's children: a Supervisor reaps every child that exits
// (it is PID 1, or a child subreaper when run as an ordinary process), so no
// other code in the same process may start and wait for children with
// os/exec. It does not own mounts, the network or the control socket (see
// package control); unit files are parsed by package unit.
package supervisor
