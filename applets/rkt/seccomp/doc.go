// Package seccomp turns a container's system-call policy into a seccomp BPF
// program and installs it. It owns two things: the default allowlist that
// rkt pods and `runc spec` use (Default, in the spirit of moby's default
// profile: everything an ordinary program needs, namespace, module, clock,
// keyring and tracing calls left out unless a capability asks for them), and
// the translation of an OCI linux.seccomp section into a filter for the
// native architecture (Compile), assembled in pure Go with
// github.com/elastic/go-seccomp-bpf.
//
// What the translation cannot express is an error naming the field, never a
// rule silently dropped: SCMP_ACT_NOTIFY, listenerPath, argument
// comparisons other than the six orderings and the two masked forms the
// assembler has, and unknown flags. Syscall names unknown to the native
// architecture are skipped, as runc and libseccomp skip them, so that one
// profile serves several architectures. Calls made through a non-native
// architecture listed in the profile (x86 and x32 on amd64) take the
// default action; x32 calls always fail with ENOSYS.
//
// It does not decide when to install the program: the container engine
// loads it on the thread that is about to execve the container's process.
package seccomp
