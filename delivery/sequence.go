package delivery

import (
	"sync"
	"time"
)

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
//
// What queues here holds its source partition's window. So that one slow
// partner's busy key cannot fill it (and stop the partition for every
// partner), a running task may offer to step aside (turn.offer): once it
// has run for leaveAfter with tasks waiting behind it, or maxBehind tasks
// wait, the sequencer asks it to; when it agrees (its delivery took its
// place in its chain, so what follows it waits for it in the retry tiers),
// the key's queue goes on without waiting for it to end.
type sequencer struct {
	workers *workers
	now     func() time.Time

	mu    sync.Mutex
	queue map[seqKey]*taskQueue
}

// taskQueue is the tasks of one key waiting behind the one running (cur).
type taskQueue struct {
	tasks []func(*turn)
	cur   *turn
}

const (
	// leaveAfter: a task running this long with others waiting behind it
	// is asked to step aside. A fast partner answers long before, even
	// after waiting its turn in its endpoint's queue (at most about
	// queueHorizon).
	leaveAfter = queueHorizon
	// maxBehind: with this many tasks waiting behind it, a running task is
	// asked to step aside however long it has run.
	maxBehind = 64
)

// turn is one task's run. The task may offer a way to step aside while it
// waits (for its endpoint's answer), and withdraws it before it goes on.
type turn struct {
	start time.Time

	mu    sync.Mutex
	timer *time.Timer // asks it at start+leaveAfter, once a task waits behind it
	leave func() bool // offered by the task; nil when none
	left  bool        // stepped aside: the key went on without it
	over  bool        // the task returned
}

// offer lets the sequencer ask the task to step aside with leave, which
// reports whether it did. leave runs at most once, on another goroutine,
// while the task is between offer and withdraw.
func (t *turn) offer(leave func() bool) {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.leave = leave
	t.mu.Unlock()
}

// withdraw takes the offer back: once it returns, leave is not running
// and will not run, and whatever it did is visible to the task.
func (t *turn) withdraw() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.leave = nil
	t.mu.Unlock()
}

func newSequencer(w *workers) *sequencer {
	return &sequencer{workers: w, now: time.Now, queue: map[seqKey]*taskQueue{}}
}

// run runs task after every task handed over before it with the same key
// (or after the ones still running stepped aside).
func (s *sequencer) run(k seqKey, task func(*turn)) {
	if k.key == "" {
		s.workers.run(func() { task(nil) })
		return
	}
	s.mu.Lock()
	if q, busy := s.queue[k]; busy {
		q.tasks = append(q.tasks, task)
		cur := q.cur
		ran := s.now().Sub(cur.start)
		ask := len(q.tasks) >= maxBehind || ran >= leaveAfter
		s.mu.Unlock()
		if ask {
			s.stepAside(k, cur)
		} else {
			// Nothing may be handed over after this one (its partition's
			// window is full): ask when the time comes.
			s.arm(k, cur, leaveAfter-ran)
		}
		return
	}
	t := &turn{start: s.now()}
	s.queue[k] = &taskQueue{cur: t}
	s.mu.Unlock()
	s.workers.run(func() { s.drain(k, task, t) })
}

// arm asks cur, k's running task, to step aside after d, once per turn.
func (s *sequencer) arm(k seqKey, cur *turn, d time.Duration) {
	cur.mu.Lock()
	defer cur.mu.Unlock()
	if cur.timer == nil && !cur.over {
		cur.timer = time.AfterFunc(d, func() { s.stepAside(k, cur) })
	}
}

// stepAside asks cur, k's running task, to step aside and, when it does,
// runs the tasks queued behind it on a worker of their own.
func (s *sequencer) stepAside(k seqKey, cur *turn) {
	cur.mu.Lock()
	defer cur.mu.Unlock()
	if cur.over || cur.left || cur.leave == nil {
		return
	}
	leave := cur.leave
	cur.leave = nil // asked once
	if !leave() {
		return
	}
	s.mu.Lock()
	cur.left = true
	q := s.queue[k] // cur is not over, so its queue is there, and not empty: run appended to it
	task := q.tasks[0]
	q.tasks[0] = nil
	q.tasks = q.tasks[1:]
	t := &turn{start: s.now()}
	q.cur = t
	s.mu.Unlock()
	s.workers.run(func() { s.drain(k, task, t) })
}

// drain runs task, then the key's queued tasks, until the queue is empty
// or the running task stepped aside (another drain has the queue then).
func (s *sequencer) drain(k seqKey, task func(*turn), t *turn) {
	for task != nil {
		task(t)
		t.mu.Lock()
		t.over = true
		if t.timer != nil {
			t.timer.Stop()
		}
		left := t.left
		t.mu.Unlock()
		if left {
			return
		}
		s.mu.Lock()
		q := s.queue[k]
		if len(q.tasks) == 0 {
			delete(s.queue, k)
			task = nil
		} else {
			task = q.tasks[0]
			q.tasks[0] = nil
			q.tasks = q.tasks[1:]
			t = &turn{start: s.now()}
			q.cur = t
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
