package proxy

import "sync"

// slotted is a connection record that keeps its own place in a connSet.
type slotted interface {
	comparable
	// slot returns where the record keeps 1 + its index in the set's
	// list, 0 while it is in none; only the set touches it, under its
	// mutex.
	slot() *int
}

// connSet is a set of connection records that the watchdog's sweeps visit:
// a slice in which each record keeps its own index, so that adding or
// removing one is a few stores under a mutex taken once per connection,
// with no allocation once the slice has grown and no hashing (a map or a
// sync.Map does both for each), and a sweep walks a slice, not a map.
type connSet[T slotted] struct {
	mu   sync.Mutex
	list []T
	snap []T // the sweep's copy of list; only the sweeping goroutine touches it
}

// add puts r in the set, unless it is there.
func (s *connSet[T]) add(r T) {
	s.mu.Lock()
	s.addLocked(r)
	s.mu.Unlock()
}

func (s *connSet[T]) addLocked(r T) {
	if p := r.slot(); *p == 0 {
		s.list = append(s.list, r)
		*p = len(s.list)
	}
}

// remove takes r out of the set, if it is there.
func (s *connSet[T]) remove(r T) {
	s.mu.Lock()
	s.removeLocked(r)
	s.mu.Unlock()
}

func (s *connSet[T]) removeLocked(r T) {
	p := r.slot()
	i := *p - 1
	if i < 0 {
		return
	}
	last := len(s.list) - 1
	if i != last {
		moved := s.list[last]
		s.list[i] = moved
		*moved.slot() = i + 1
	}
	var zero T
	s.list[last] = zero
	s.list = s.list[:last]
	*p = 0
}

// snapshot returns the records in the set now, in a slice the next call
// reuses: a sweep works through it without holding the mutex. A record
// removed meanwhile is at worst visited once more, which must do nothing
// to a closed connection.
func (s *connSet[T]) snapshot() []T {
	s.mu.Lock()
	s.snap = append(s.snap[:0], s.list...)
	s.mu.Unlock()
	clear(s.snap[len(s.snap):cap(s.snap)]) // no stale records kept alive past the end
	return s.snap
}
