package delivery

import (
	"sync"
	"time"
)

// workers runs fan-out tasks on reused goroutines. A fresh goroutine per
// task would grow its stack through the HTTP client on every delivery (the
// profile showed 5% of CPU copying stacks); a reused one keeps its grown
// stack. Idle workers exit after idleTimeout, and all exit on close.
//
// Each idle worker waits on a channel of its own, on a stack: a task goes to
// the most recently idle worker (its stack and caches still warm), and the
// least recently used ones are the ones that time out. Idle workers all
// waiting on one shared channel (plus a shared stop channel) made every
// hand-off lock and dequeue among hundreds of waiters (1.9% of CPU in the
// fast bench).
type workers struct {
	mu     sync.Mutex
	idle   []*worker // most recently idle last
	closed bool
	wg     sync.WaitGroup
}

// worker is one goroutine's mailbox: a task, or nil to stop. It has room
// for one, and is only sent to once taken off the idle stack, so a send
// never blocks.
type worker struct{ tasks chan func() }

const idleTimeout = 30 * time.Second

func newWorkers() *workers { return &workers{} }

// run hands f to an idle worker, or starts one. After close it runs f on
// the caller's goroutine.
func (w *workers) run(f func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		wk := w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		wk.tasks <- f
		return
	}
	if w.closed {
		w.mu.Unlock()
		f()
		return
	}
	w.wg.Add(1)
	w.mu.Unlock()
	go w.loop(&worker{tasks: make(chan func(), 1)}, f)
}

func (w *workers) loop(wk *worker, f func()) {
	defer w.wg.Done()
	idle := time.NewTimer(idleTimeout)
	defer idle.Stop()
	for {
		f()
		idle.Reset(idleTimeout)
		if !w.park(wk) {
			return
		}
		select {
		case f = <-wk.tasks:
		case <-idle.C:
			if w.unpark(wk) {
				return
			}
			f = <-wk.tasks // taken off the stack meanwhile: a task, or the stop
		}
		if f == nil {
			return
		}
	}
}

// park puts wk on the idle stack, unless the workers are closed.
func (w *workers) park(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return false
	}
	w.idle = append(w.idle, wk)
	return true
}

// unpark takes wk off the idle stack; false when run or close already has.
func (w *workers) unpark(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, x := range w.idle {
		if x == wk {
			w.idle = append(w.idle[:i], w.idle[i+1:]...)
			return true
		}
	}
	return false
}

// close stops the idle workers and waits for busy ones to finish.
func (w *workers) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		for _, wk := range w.idle {
			wk.tasks <- nil
		}
		w.idle = nil
	}
	w.mu.Unlock()
	w.wg.Wait()
}
