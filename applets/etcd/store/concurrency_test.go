package store

import (
	"sync"
	"testing"
)

// TestConcurrentReaders runs gets, watches, snapshots, stats and expiry
// scans while commands are applied (run with -race).
func TestConcurrentReaders(t *testing.T) {
	s := New()
	src := &commandSource{b: randomBytes(42, 4*3000), now: t0}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	reader := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f(i)
			}
		}()
	}
	for k := range 3 {
		reader(func(i int) {
			key := genKeys[(i+k)%len(genKeys)]
			if e, err := s.Get(key, i%2 == 0, i%3 == 0, t0); err == nil && e.Node == nil {
				t.Error("get without a node")
			}
		})
	}
	reader(func(int) {
		if _, err := s.Snapshot(); err != nil {
			t.Error(err)
		}
		s.Stats()
		s.Expired(t0)
		s.Index()
	})
	for k := range 4 {
		reader(func(i int) {
			w, err := s.Watch(genKeys[(i+k)%len(genKeys)], k%2 == 0, k >= 2, 0)
			if err != nil {
				t.Error(err)
				return
			}
			for n := 0; n < 3; n++ {
				select {
				case e, ok := <-w.EventChan():
					if !ok {
						n = 3
					} else if e.Node == nil {
						t.Error("event without a node")
					}
				case <-stop:
					n = 3
				}
			}
			w.Remove()
		})
	}
	for !src.done() {
		for _, c := range src.step(s) {
			s.Apply(c)
		}
	}
	close(stop)
	wg.Wait()
	checkInvariants(t, s)
}
