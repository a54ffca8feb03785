package rkt

import (
	"encoding/binary"
)

// pauseCode is the x86-64 machine code of the pod's namespace holder: it
// sets SIGCHLD to SIG_IGN (so that the kernel reaps the orphans it
// inherits as the pod's PID 1) and then sleeps in pause(2) forever. It is
// what Kubernetes' pause container does, in 43 bytes, so that no host
// binary has to be placed in a pod.
var pauseCode = []byte{
	0x6a, 0x00, // push 0            sa_mask
	0x6a, 0x00, // push 0            sa_restorer
	0x6a, 0x00, // push 0            sa_flags
	0x6a, 0x01, // push 1            sa_handler = SIG_IGN
	0xb8, 0x0d, 0x00, 0x00, 0x00, // mov eax, 13   rt_sigaction
	0xbf, 0x11, 0x00, 0x00, 0x00, // mov edi, 17   SIGCHLD
	0x48, 0x89, 0xe6, // mov rsi, rsp
	0x31, 0xd2, // xor edx, edx      no old action
	0x41, 0xba, 0x08, 0x00, 0x00, 0x00, // mov r10d, 8   sizeof(sigset_t)
	0x0f, 0x05, // syscall
	0xb8, 0x22, 0x00, 0x00, 0x00, // loop: mov eax, 34   pause
	0x0f, 0x05, // syscall
	0xeb, 0xf7, // jmp loop
}

// pauseELF returns a static ELF64 executable of pauseCode: one PT_LOAD
// segment mapping the file at 0x400000, entry right after the headers.
func pauseELF() []byte {
	const (
		base     = 0x400000
		ehdrSize = 64
		phdrSize = 56
	)
	entry := uint64(base + ehdrSize + phdrSize)
	b := make([]byte, ehdrSize+phdrSize, ehdrSize+phdrSize+len(pauseCode))
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2 /* 64-bit */, 1 /* little endian */, 1 /* version */})
	le := binary.LittleEndian
	le.PutUint16(b[16:], 2)    // ET_EXEC
	le.PutUint16(b[18:], 0x3e) // EM_X86_64
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], entry)
	le.PutUint64(b[32:], ehdrSize) // program headers right after
	le.PutUint16(b[52:], ehdrSize)
	le.PutUint16(b[54:], phdrSize)
	le.PutUint16(b[56:], 1) // one program header
	ph := b[ehdrSize:]
	size := uint64(ehdrSize + phdrSize + len(pauseCode))
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // PF_R|PF_X
	le.PutUint64(ph[8:], 0) // offset
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], size)
	le.PutUint64(ph[40:], size)
	le.PutUint64(ph[48:], 0x1000)
	return append(b, pauseCode...)
}
