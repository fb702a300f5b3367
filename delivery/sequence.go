package delivery

import "sync"

// seqKey is a (subscription, Kafka key): the unit of delivery order.
type seqKey struct{ sub, key string }

// sequencer runs tasks on the fan-out's workers, one at a time per key and
// in the order they were handed over, and tasks of different keys in
// parallel. A task with no key (an event without a Kafka key has no order
// to keep) runs at once.
//
// It is what keeps a (subscription, key)'s deliveries in order now that the
// source lanes no longer wait for them: the lane hands an event over and
// reads on, and the next event of the key queues here behind the last,
// for that subscription only.
type sequencer struct {
	workers *workers

	mu    sync.Mutex
	queue map[seqKey]*taskQueue
}

// taskQueue is the tasks of one key waiting behind the one running.
type taskQueue struct{ tasks []func() }

func newSequencer(w *workers) *sequencer {
	return &sequencer{workers: w, queue: map[seqKey]*taskQueue{}}
}

// run runs task after every task handed over before it with the same key.
func (s *sequencer) run(k seqKey, task func()) {
	if k.key == "" {
		s.workers.run(task)
		return
	}
	s.mu.Lock()
	if q, busy := s.queue[k]; busy {
		q.tasks = append(q.tasks, task)
		s.mu.Unlock()
		return
	}
	s.queue[k] = &taskQueue{}
	s.mu.Unlock()
	s.workers.run(func() { s.drain(k, task) })
}

// drain runs task, then the key's queued tasks, until the queue is empty.
func (s *sequencer) drain(k seqKey, task func()) {
	for task != nil {
		task()
		s.mu.Lock()
		q := s.queue[k]
		if len(q.tasks) == 0 {
			delete(s.queue, k)
			task = nil
		} else {
			task = q.tasks[0]
			q.tasks[0] = nil
			q.tasks = q.tasks[1:]
		}
		s.mu.Unlock()
	}
}

// busy is how many keys have a task running.
func (s *sequencer) busy() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}
