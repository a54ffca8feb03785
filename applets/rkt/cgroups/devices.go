package cgroups

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// deviceRule is a checked OCI device cgroup rule.
type deviceRule struct {
	allow        bool
	typ          byte  // 'a', 'b' or 'c'
	major, minor int64 // -1: any
	access       uint32
}

const accessAll = unix.BPF_DEVCG_ACC_MKNOD | unix.BPF_DEVCG_ACC_READ | unix.BPF_DEVCG_ACC_WRITE

// parseDeviceRule checks d: type a, b, c (empty is a), major and minor
// -1/absent (any) or a number, access letters from "rwm" (empty is rwm).
func parseDeviceRule(d specs.LinuxDeviceCgroup) (deviceRule, error) {
	r := deviceRule{allow: d.Allow, major: -1, minor: -1}
	switch d.Type {
	case "", "a":
		r.typ = 'a'
	case "b", "c":
		r.typ = d.Type[0]
	default:
		return r, fmt.Errorf("device type %q: want a, b or c", d.Type)
	}
	for _, f := range []struct {
		name string
		in   *int64
		out  *int64
	}{{"major", d.Major, &r.major}, {"minor", d.Minor, &r.minor}} {
		if f.in == nil {
			continue
		}
		if *f.in < -1 || *f.in > 1<<32-1 {
			return r, fmt.Errorf("device %s %d: out of range", f.name, *f.in)
		}
		*f.out = *f.in
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	for _, ch := range access {
		var bit uint32
		switch ch {
		case 'r':
			bit = unix.BPF_DEVCG_ACC_READ
		case 'w':
			bit = unix.BPF_DEVCG_ACC_WRITE
		case 'm':
			bit = unix.BPF_DEVCG_ACC_MKNOD
		default:
			return r, fmt.Errorf("device access %q: want letters from rwm", d.Access)
		}
		if r.access&bit != 0 {
			return r, fmt.Errorf("device access %q: %q repeated", d.Access, ch)
		}
		r.access |= bit
	}
	return r, nil
}

func (r deviceRule) all() bool {
	return r.typ == 'a' && r.major == -1 && r.minor == -1 && r.access == accessAll
}

// deviceRulesV1 is d as lines for devices.allow or devices.deny. The v1
// kernel reads any "a" line as "all devices", so a type-a rule narrower
// than that becomes a b and a c line.
func deviceRulesV1(d specs.LinuxDeviceCgroup) ([]string, error) {
	r, err := parseDeviceRule(d)
	if err != nil {
		return nil, err
	}
	if r.all() {
		return []string{"a"}, nil
	}
	num := func(n int64) string {
		if n < 0 {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	var acc strings.Builder
	for _, x := range []struct {
		bit uint32
		ch  byte
	}{{unix.BPF_DEVCG_ACC_READ, 'r'}, {unix.BPF_DEVCG_ACC_WRITE, 'w'}, {unix.BPF_DEVCG_ACC_MKNOD, 'm'}} {
		if r.access&x.bit != 0 {
			acc.WriteByte(x.ch)
		}
	}
	types := []byte{r.typ}
	if r.typ == 'a' {
		types = []byte{'b', 'c'}
	}
	var out []string
	for _, t := range types {
		out = append(out, fmt.Sprintf("%c %s:%s %s", t, num(r.major), num(r.minor), acc.String()))
	}
	return out, nil
}

// bpfInsn is one eBPF instruction.
type bpfInsn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
}

const (
	opLdxMemW  = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W
	opMov64X   = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_X
	opMov64K   = unix.BPF_ALU64 | unix.BPF_MOV | unix.BPF_K
	opAnd64K   = unix.BPF_ALU64 | unix.BPF_AND | unix.BPF_K
	opRsh64K   = unix.BPF_ALU64 | unix.BPF_RSH | unix.BPF_K
	opJne32K   = unix.BPF_JMP32 | unix.BPF_JNE | unix.BPF_K
	opExit     = unix.BPF_JMP | unix.BPF_EXIT
	bpfInsnLen = 8
)

// DeviceFilter compiles OCI device rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program: the rules apply in order over "deny everything", so the last
// rule matching an access decides it, and an access no rule matches is
// denied. The context (struct bpf_cgroup_dev_ctx) is access<<16|type,
// major, minor.
func DeviceFilter(rules []specs.LinuxDeviceCgroup) ([]byte, error) {
	parsed := make([]deviceRule, len(rules))
	for i, d := range rules {
		r, err := parseDeviceRule(d)
		if err != nil {
			return nil, fmt.Errorf("device rule %d: %w", i, err)
		}
		parsed[i] = r
	}
	prog := []bpfInsn{
		{code: opLdxMemW, dst: 2, src: 1, off: 0}, // r2 = access_type
		{code: opMov64X, dst: 3, src: 2},          // r3 = r2
		{code: opAnd64K, dst: 3, imm: 0xffff},     // r3 = type
		{code: opRsh64K, dst: 2, imm: 16},         // r2 = access
		{code: opLdxMemW, dst: 4, src: 1, off: 4}, // r4 = major
		{code: opLdxMemW, dst: 5, src: 1, off: 8}, // r5 = minor
	}
	unconditional := false
	for i := len(parsed) - 1; i >= 0; i-- {
		r := parsed[i]
		var block []bpfInsn
		var jumps []int // indexes of jumps to the end of the block
		if r.typ != 'a' {
			t := int32(unix.BPF_DEVCG_DEV_CHAR)
			if r.typ == 'b' {
				t = unix.BPF_DEVCG_DEV_BLOCK
			}
			jumps = append(jumps, len(block))
			block = append(block, bpfInsn{code: opJne32K, dst: 3, imm: t})
		}
		if r.access != accessAll {
			// The access asked for must be within the rule's.
			block = append(block,
				bpfInsn{code: opMov64X, dst: 6, src: 2},
				bpfInsn{code: opAnd64K, dst: 6, imm: int32(^r.access & accessAll)})
			jumps = append(jumps, len(block))
			block = append(block, bpfInsn{code: opJne32K, dst: 6, imm: 0})
		}
		if r.major >= 0 {
			jumps = append(jumps, len(block))
			block = append(block, bpfInsn{code: opJne32K, dst: 4, imm: int32(uint32(r.major))})
		}
		if r.minor >= 0 {
			jumps = append(jumps, len(block))
			block = append(block, bpfInsn{code: opJne32K, dst: 5, imm: int32(uint32(r.minor))})
		}
		verdict := int32(0)
		if r.allow {
			verdict = 1
		}
		block = append(block, bpfInsn{code: opMov64K, dst: 0, imm: verdict}, bpfInsn{code: opExit})
		for _, j := range jumps {
			block[j].off = int16(len(block) - j - 1)
		}
		prog = append(prog, block...)
		if len(jumps) == 0 {
			// It matches everything: earlier rules and the default are
			// unreachable (and the verifier rejects unreachable code).
			unconditional = true
			break
		}
	}
	if !unconditional {
		prog = append(prog, bpfInsn{code: opMov64K, dst: 0, imm: 0}, bpfInsn{code: opExit})
	}
	out := make([]byte, 0, len(prog)*bpfInsnLen)
	for _, in := range prog {
		out = append(out, in.code, in.dst&0xf|in.src<<4)
		out = binary.LittleEndian.AppendUint16(out, uint16(in.off))
		out = binary.LittleEndian.AppendUint32(out, uint32(in.imm))
	}
	return out, nil
}

type bpfProgLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

type bpfAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

type bpfQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

type bpfGetFDAttr struct {
	id        uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(attr), size)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// loadDeviceProgram loads a compiled device filter; on a verifier
// rejection the error carries the verifier's log.
func loadDeviceProgram(code []byte) (int, error) {
	license := []byte("Apache\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(code) / bpfInsnLen),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
	}
	copy(attr.progName[:], "corebox_devices")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	if err == nil {
		runtime.KeepAlive(code)
		runtime.KeepAlive(license)
		return fd, nil
	}
	log := make([]byte, 64*1024)
	attr.logLevel, attr.logSize, attr.logBuf = 1, uint32(len(log)), uint64(uintptr(unsafe.Pointer(&log[0])))
	_, err2 := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(log)
	msg := strings.TrimSpace(string(log[:clen(log)]))
	if err2 == nil {
		msg = "(loads with a log)"
	}
	return -1, fmt.Errorf("loading the device filter (BPF_PROG_LOAD): %w: %s", err, msg)
}

func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}

// setDeviceFilter attaches a program for rules to the cgroup (v2) and
// then detaches the programs attached before, so there is no moment
// without a filter.
func (c *Cgroup) setDeviceFilter(rules []specs.LinuxDeviceCgroup) error {
	if c.fd < 0 {
		return fmt.Errorf("device rules: cgroup %s has no open directory", c.path)
	}
	code, err := DeviceFilter(rules)
	if err != nil {
		return err
	}
	old, err := c.attachedDevicePrograms()
	if err != nil {
		return err
	}
	prog, err := loadDeviceProgram(code)
	if err != nil {
		return err
	}
	defer unix.Close(prog)
	attach := bpfAttachAttr{targetFd: uint32(c.fd), attachBpfFd: uint32(prog), attachType: unix.BPF_CGROUP_DEVICE, attachFlags: unix.BPF_F_ALLOW_MULTI}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return fmt.Errorf("attaching the device filter to %s (BPF_PROG_ATTACH): %w", c.unified, err)
	}
	for _, id := range old {
		get := bpfGetFDAttr{id: id}
		fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if err != nil {
			return fmt.Errorf("detaching old device filter %d from %s: %w", id, c.unified, err)
		}
		detach := bpfAttachAttr{targetFd: uint32(c.fd), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		_, err = bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("detaching old device filter %d from %s: %w", id, c.unified, err)
		}
	}
	return nil
}

// attachedDevicePrograms lists the ids of device programs attached to the
// cgroup itself (not inherited).
func (c *Cgroup) attachedDevicePrograms() ([]uint32, error) {
	ids := make([]uint32, 64)
	q := bpfQueryAttr{targetFd: uint32(c.fd), attachType: unix.BPF_CGROUP_DEVICE, progIDs: uint64(uintptr(unsafe.Pointer(&ids[0]))), progCnt: uint32(len(ids))}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&q), unsafe.Sizeof(q))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, fmt.Errorf("listing device filters of %s (BPF_PROG_QUERY): %w", c.unified, err)
	}
	return ids[:q.progCnt], nil
}
