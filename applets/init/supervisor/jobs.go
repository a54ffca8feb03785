package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Start starts the named units with everything they require or want, in
// the order their After= and Before= say. It returns when each is started:
// a simple or exec service once its main process runs and ExecStartPost is
// done, a oneshot once it has finished. A unit that fails to start fails
// the units that require it; the errors of all failures are joined.
func (s *Supervisor) Start(ctx context.Context, names ...string) error {
	s.jobs.Lock()
	defer s.jobs.Unlock()
	order, err := s.transaction(names)
	if err != nil {
		return err
	}
	failed := map[string]bool{}
	var errs []error
	for _, name := range order {
		s.mu.Lock()
		st := s.units[name]
		if st.active == "deactivating" && st.run != nil { // let the stop finish first
			done := st.run.done
			s.mu.Unlock()
			select {
			case <-done:
			case <-ctx.Done():
				return fmt.Errorf("starting %s: %w", name, ctx.Err())
			}
			s.mu.Lock()
		}
		def := st.def
		if def == nil {
			s.mu.Unlock()
			failed[name] = true
			errs = append(errs, fmt.Errorf("%s: %w", name, ErrNotFound))
			continue
		}
		var blocker string
		for _, req := range def.Requires {
			if failed[req] {
				blocker = req
			}
		}
		if blocker != "" {
			st.result = "dependency"
			s.mu.Unlock()
			failed[name] = true
			s.journal.logf(name, "Dependency failed for %s: %s failed", name, blocker)
			errs = append(errs, fmt.Errorf("%s: dependency %s failed", name, blocker))
			continue
		}
		r := st.run
		if r == nil {
			r = &run{stop: make(chan struct{}), done: make(chan struct{}), started: make(chan error, 1)}
			st.run = r
			st.active, st.sub, st.since, st.result, st.exit = "activating", "start-pre", time.Now(), "", ""
			go s.lifecycle(st, def, r)
		} else if st.active == "active" || st.active == "activating" {
			// Already running or starting: nothing to wait for beyond its first start.
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		select {
		case err := <-r.started:
			if err != nil {
				failed[name] = true
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("starting %s: %w", name, ctx.Err())
		}
	}
	return errors.Join(errs...)
}

// transaction returns the units to start for names, dependencies first.
func (s *Supervisor) transaction(names []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := map[string]bool{}
	var missing []error
	var visit func(name, from string, required bool)
	visit = func(name, from string, required bool) {
		if set[name] {
			return
		}
		st := s.units[name]
		if st == nil || st.def == nil {
			if required {
				switch {
				case st != nil && st.loadErr != nil:
					missing = append(missing, fmt.Errorf("%s: unit file has errors: %w", name, st.loadErr))
				case from != "":
					missing = append(missing, fmt.Errorf("%s requires %s: %w", from, name, ErrNotFound))
				default:
					missing = append(missing, fmt.Errorf("%s: %w", name, ErrNotFound))
				}
			}
			return
		}
		set[name] = true
		for _, d := range st.def.Requires {
			visit(d, name, true)
		}
		for _, d := range st.def.Wants {
			visit(d, name, false)
		}
	}
	for _, n := range names {
		visit(n, "", true)
	}
	if len(missing) > 0 {
		return nil, errors.Join(missing...)
	}
	return s.orderLocked(set)
}

// orderLocked sorts set so that every unit comes after the units it is
// ordered After= (and before those it is ordered Before=). Ties go by name,
// so the order is deterministic. A cycle is an error naming its units.
func (s *Supervisor) orderLocked(set map[string]bool) ([]string, error) {
	before := map[string][]string{} // a -> units that must start before a
	for name := range set {
		d := s.units[name].def
		for _, a := range d.After {
			if set[a] {
				before[name] = append(before[name], a)
			}
		}
		for _, b := range d.Before {
			if set[b] {
				before[b] = append(before[b], name)
			}
		}
	}
	indeg := map[string]int{}
	after := map[string][]string{}
	for name := range set {
		indeg[name] += 0
		for _, p := range uniq(before[name]) {
			indeg[name]++
			after[p] = append(after[p], name)
		}
	}
	var ready, order []string
	for name, n := range indeg {
		if n == 0 {
			ready = append(ready, name)
		}
	}
	sort.Strings(ready)
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		order = append(order, n)
		for _, m := range after[n] {
			indeg[m]--
			if indeg[m] == 0 {
				ready = append(ready, m)
				sort.Strings(ready)
			}
		}
	}
	if len(order) < len(set) {
		var cyc []string
		for name, n := range indeg {
			if n > 0 {
				cyc = append(cyc, name)
			}
		}
		sort.Strings(cyc)
		return nil, fmt.Errorf("ordering cycle between %s", strings.Join(cyc, ", "))
	}
	return order, nil
}

func uniq(xs []string) []string {
	slices.Sort(xs)
	return slices.Compact(xs)
}

// Stop stops the named units and, first, the running units that require
// them. It returns when their processes are gone.
func (s *Supervisor) Stop(ctx context.Context, names ...string) error {
	s.mu.Lock()
	set := map[string]bool{}
	var errs []error
	for _, n := range names {
		if s.units[n] == nil {
			errs = append(errs, fmt.Errorf("%s: %w", n, ErrNotFound))
			continue
		}
		set[n] = true
	}
	// Add the units that require (transitively) any unit being stopped.
	for grew := true; grew; {
		grew = false
		for name, st := range s.units {
			if set[name] || st.def == nil || st.run == nil {
				continue
			}
			for _, r := range st.def.Requires {
				if set[r] {
					set[name], grew = true, true
					break
				}
			}
		}
	}
	s.mu.Unlock()
	return errors.Join(append(errs, s.stopSet(ctx, set))...)
}

// StopAll stops every unit in reverse dependency order: what init does at
// shutdown.
func (s *Supervisor) StopAll(ctx context.Context) error {
	s.mu.Lock()
	set := map[string]bool{}
	for name, st := range s.units {
		if st.run != nil {
			set[name] = true
		}
	}
	s.mu.Unlock()
	return s.stopSet(ctx, set)
}

func (s *Supervisor) stopSet(ctx context.Context, set map[string]bool) error {
	s.mu.Lock()
	known := map[string]bool{}
	var unordered []string
	for name := range set {
		if s.units[name].def != nil {
			known[name] = true
		} else {
			unordered = append(unordered, name)
		}
	}
	order, err := s.orderLocked(known)
	if err != nil { // a cycle: stop in name order rather than not at all
		order = nil
		for n := range known {
			order = append(order, n)
		}
		sort.Strings(order)
	}
	order = append(order, unordered...)
	s.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		name := order[i]
		s.mu.Lock()
		r := s.units[name].run
		s.mu.Unlock()
		if r == nil {
			continue
		}
		r.requestStop()
		select {
		case <-r.done:
		case <-ctx.Done():
			return fmt.Errorf("stopping %s: %w", name, ctx.Err())
		}
	}
	return nil
}

// Restart stops the unit if it runs, then starts it.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	s.mu.Lock()
	st := s.units[name]
	s.mu.Unlock()
	if st == nil {
		return fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	if err := s.stopSet(ctx, map[string]bool{name: true}); err != nil {
		return err
	}
	return s.Start(ctx, name)
}
