package seccomp

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"strings"
	"unsafe"

	bpfasm "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Program is a compiled filter, ready to be installed with Load. Its
// fields are exported so that it can cross a process boundary as JSON.
type Program struct {
	// Instructions are the raw BPF instructions.
	Instructions []unix.SockFilter `json:"instructions"`
	// Flags are the SECCOMP_FILTER_FLAG_* bits passed to seccomp(2).
	Flags uint `json:"flags,omitempty"`
}

// nativeArch is the OCI name of the architecture this binary runs on.
func nativeArch() specs.Arch {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64
	case "386":
		return specs.ArchX86
	case "arm64":
		return specs.ArchAARCH64
	case "arm":
		return specs.ArchARM
	case "riscv64":
		return specs.ArchRISCV64
	case "s390x":
		return specs.ArchS390X
	case "ppc64le":
		return specs.ArchPPC64LE
	}
	return specs.Arch("SCMP_ARCH_" + strings.ToUpper(runtime.GOARCH))
}

var knownArches = map[specs.Arch]bool{
	specs.ArchX86: true, specs.ArchX86_64: true, specs.ArchX32: true, specs.ArchARM: true,
	specs.ArchAARCH64: true, specs.ArchMIPS: true, specs.ArchMIPS64: true, specs.ArchMIPS64N32: true,
	specs.ArchMIPSEL: true, specs.ArchMIPSEL64: true, specs.ArchMIPSEL64N32: true, specs.ArchPPC: true,
	specs.ArchPPC64: true, specs.ArchPPC64LE: true, specs.ArchS390: true, specs.ArchS390X: true,
	specs.ArchPARISC: true, specs.ArchPARISC64: true, specs.ArchRISCV64: true,
}

// filterFlags are the seccomp(2) flags an OCI profile may name.
var filterFlags = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: 1 << 5, // SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	"SECCOMP_FILTER_FLAG_TSYNC":            unix.SECCOMP_FILTER_FLAG_TSYNC,
}

// Compile translates an OCI seccomp section into a filter for the native
// architecture. A nil section compiles to a nil Program (no filter).
func Compile(s *specs.LinuxSeccomp) (*Program, error) {
	if s == nil {
		return nil, nil
	}
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: %w", err)
	}
	if s.ListenerPath != "" || len(s.ListenerMetadata) > 0 {
		return nil, errors.New("linux.seccomp.listenerPath: seccomp user notification is not supported")
	}
	p := &Program{}
	for _, f := range s.Flags {
		v, ok := filterFlags[f]
		if !ok {
			return nil, fmt.Errorf("linux.seccomp.flags: unknown flag %q", f)
		}
		p.Flags |= v
	}
	if len(s.Architectures) > 0 {
		native := false
		for _, a := range s.Architectures {
			if !knownArches[a] {
				return nil, fmt.Errorf("linux.seccomp.architectures: unknown architecture %q", a)
			}
			native = native || a == nativeArch()
		}
		if !native {
			return nil, fmt.Errorf("linux.seccomp.architectures: %v does not include the native architecture %s", s.Architectures, nativeArch())
		}
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp.defaultAction: %w", err)
	}
	policy := bpfasm.Policy{DefaultAction: bpfasm.ActionAllow}
	for i, rule := range s.Syscalls {
		where := fmt.Sprintf("linux.seccomp.syscalls[%d]", i)
		act, err := action(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("%s.action: %w", where, err)
		}
		if len(rule.Names) == 0 {
			return nil, fmt.Errorf("%s.names: empty", where)
		}
		conds, err := conditions(rule.Args)
		if err != nil {
			return nil, fmt.Errorf("%s.args: %w", where, err)
		}
		group := bpfasm.SyscallGroup{Action: act}
		seen := map[string]bool{}
		for _, name := range rule.Names {
			if _, ok := info.SyscallNames[name]; !ok || seen[name] {
				// Unknown on this architecture (skipped as libseccomp
				// does) or listed twice in one rule.
				continue
			}
			seen[name] = true
			if conds == nil {
				group.Names = append(group.Names, name)
			} else {
				group.NamesWithCondtions = append(group.NamesWithCondtions, bpfasm.NameWithConditions{Name: name, Conditions: conds})
			}
		}
		if len(group.Names)+len(group.NamesWithCondtions) > 0 {
			policy.Syscalls = append(policy.Syscalls, group)
		}
	}
	if len(policy.Syscalls) == 0 {
		// The assembler wants one group; a rule that never matches
		// (a syscall number no architecture has) keeps the
		// default-only profile expressible.
		policy.Syscalls = []bpfasm.SyscallGroup{{Names: []string{"restart_syscall"}, Action: def}}
	}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: assembling the filter: %w", err)
	}
	// The assembler validates the default action against its bare action
	// list, which has no room for an errno value; it emits the default as
	// the program's last instruction, the target of every non-match, so
	// that instruction is replaced with the real default.
	last, ok := insts[len(insts)-1].(bpf.RetConstant)
	if !ok || last.Val != uint32(bpfasm.ActionAllow) {
		return nil, fmt.Errorf("linux.seccomp: unexpected filter layout (last instruction %v)", insts[len(insts)-1])
	}
	insts[len(insts)-1] = bpf.RetConstant{Val: uint32(def)}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("linux.seccomp: assembling the filter: %w", err)
	}
	if len(raw) > 4096 {
		return nil, fmt.Errorf("linux.seccomp: the filter has %d instructions, more than the kernel's 4096", len(raw))
	}
	p.Instructions = make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		p.Instructions[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return p, nil
}

// action translates an OCI action and its errno into a seccomp return value.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (bpfasm.Action, error) {
	data := func(def uint) uint32 {
		if errnoRet != nil {
			return uint32(*errnoRet) & unix.SECCOMP_RET_DATA
		}
		return uint32(def)
	}
	if errnoRet != nil && a != specs.ActErrno && a != specs.ActTrace {
		return 0, fmt.Errorf("errnoRet is only meaningful with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %q", a)
	}
	switch a {
	case specs.ActAllow:
		return bpfasm.ActionAllow, nil
	case specs.ActErrno:
		return bpfasm.Action(uint32(bpfasm.ActionErrno) | data(uint(unix.EPERM))), nil
	case specs.ActTrace:
		return bpfasm.Action(uint32(bpfasm.ActionTrace) | data(uint(unix.EPERM))), nil
	case specs.ActKill, specs.ActKillThread:
		return bpfasm.ActionKillThread, nil
	case specs.ActKillProcess:
		return bpfasm.ActionKillProcess, nil
	case specs.ActTrap:
		return bpfasm.ActionTrap, nil
	case specs.ActLog:
		return bpfasm.ActionLog, nil
	case specs.ActNotify:
		return 0, errors.New("SCMP_ACT_NOTIFY is not supported")
	case "":
		return 0, errors.New("missing")
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// conditions translates OCI argument comparisons; nil means none.
func conditions(args []specs.LinuxSeccompArg) (bpfasm.ArgumentConditions, error) {
	if len(args) == 0 {
		return nil, nil
	}
	var out bpfasm.ArgumentConditions
	for i, a := range args {
		if a.Index > 5 {
			return nil, fmt.Errorf("[%d].index %d: a syscall has six arguments (0-5)", i, a.Index)
		}
		c := bpfasm.Condition{Argument: uint32(a.Index), Value: a.Value}
		switch a.Op {
		case specs.OpEqualTo:
			c.Operation = bpfasm.Equal
		case specs.OpNotEqual:
			c.Operation = bpfasm.NotEqual
		case specs.OpLessThan:
			c.Operation = bpfasm.LessThan
		case specs.OpLessEqual:
			c.Operation = bpfasm.LessOrEqual
		case specs.OpGreaterThan:
			c.Operation = bpfasm.GreaterThan
		case specs.OpGreaterEqual:
			c.Operation = bpfasm.GreaterOrEqual
		case specs.OpMaskedEqual:
			// (arg & value) == valueTwo: the assembler has "no bit of
			// value set" (valueTwo 0) and "the bit set" (a single-bit
			// value equal to valueTwo).
			switch {
			case a.ValueTwo == 0:
				c.Operation = bpfasm.BitsNotSet
			case a.ValueTwo == a.Value && bits.OnesCount64(a.Value) == 1:
				c.Operation = bpfasm.BitsSet
			default:
				return nil, fmt.Errorf("[%d]: SCMP_CMP_MASKED_EQ with mask %#x and value %#x is not supported (only value 0, or a single-bit mask equal to the value)", i, a.Value, a.ValueTwo)
			}
		case "":
			return nil, fmt.Errorf("[%d].op: missing", i)
		default:
			return nil, fmt.Errorf("[%d].op: unknown operator %q", i, a.Op)
		}
		out = append(out, c)
	}
	return out, nil
}

// Load installs the program on the calling thread (only: no TSYNC unless
// the profile asked for it). The caller must either have set
// no_new_privs or hold CAP_SYS_ADMIN. A nil Program loads nothing.
func (p *Program) Load() error {
	if p == nil || len(p.Instructions) == 0 {
		return nil
	}
	prog := unix.SockFprog{Len: uint16(len(p.Instructions)), Filter: &p.Instructions[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(p.Flags), uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("loading the seccomp filter (%d instructions): %w", len(p.Instructions), errno)
	}
	return nil
}
