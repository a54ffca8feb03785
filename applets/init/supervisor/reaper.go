package supervisor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper owns wait4 for the whole process: it collects every child that
// exits, hands the status of the children it spawned to their waiters and
// silently reaps the rest (orphans re-parented to init or, off PID 1, to this
// subreaper). Nothing else in the process may wait for children: os/exec's
// Wait would race with it. Spawn children through reaper.spawn.
//
// There is one reaper per process (wait4(-1) is process-wide, so two would
// steal each other's children); every Supervisor shares it.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	sigs    chan os.Signal
}

// processReaper is the process's one reaper, started on first use and never
// stopped: the only package-level state, because the kernel's child wait
// queue it mirrors is itself per process.
var processReaper = sync.OnceValue(newReaper)

func newReaper() *reaper {
	r := &reaper{
		waiters: map[int]chan syscall.WaitStatus{},
		sigs:    make(chan os.Signal, 1),
	}
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.loop()
	return r
}

// spawn runs start (which forks a child and returns its pid) with the
// reaper's lock held, so that the child cannot be reaped before its waiter
// is registered. The channel receives the child's wait status once.
func (r *reaper) spawn(start func() (int, error)) (int, <-chan syscall.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiters[pid] = ch
	return pid, ch, nil
}

func (r *reaper) loop() {
	for {
		r.reapAll()
		<-r.sigs
	}
}

func (r *reaper) reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		ch := r.waiters[pid]
		delete(r.waiters, pid)
		r.mu.Unlock()
		if ch != nil {
			ch <- ws
		}
	}
}
