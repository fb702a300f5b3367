package consumer

import (
	"sort"
	"sync"
)

// offsetTracker keeps, for one partition, the offsets handed out for
// delivery in the order they were read, and which of them are finished. The
// offset it reports as committable never passes an unfinished message:
// kafka-go commits "everything before N", so committing past a message that
// is still in flight would lose it on a crash.
type offsetTracker struct {
	mu      sync.Mutex
	pending []trackedOffset // ascending offsets, head first
	head    int             // index of the oldest unfinished entry
	next    int64           // offset after the last one started; -1 before any
}

type trackedOffset struct {
	offset int64
	done   bool
}

func newOffsetTracker() *offsetTracker {
	return &offsetTracker{next: -1}
}

// start records that the message at offset is in flight. Offsets must be
// started in increasing order, as a partition is read.
func (t *offsetTracker) start(offset int64) {
	t.mu.Lock()
	t.pending = append(t.pending, trackedOffset{offset: offset})
	t.next = offset + 1
	t.mu.Unlock()
}

// finish records that every delivery attempt of the message at offset is over.
func (t *offsetTracker) finish(offset int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	live := t.pending[t.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].offset >= offset })
	if i == len(live) || live[i].offset != offset {
		return // unknown or already compacted away: nothing to do
	}
	live[i].done = true
	for t.head < len(t.pending) && t.pending[t.head].done {
		t.head++
	}
	// Reclaim the finished prefix once it dominates the slice.
	if t.head > 1024 && t.head*2 > len(t.pending) {
		n := copy(t.pending, t.pending[t.head:])
		t.pending = t.pending[:n]
		t.head = 0
	}
}

// committable returns the offset to commit (the next message a new owner
// should read) and whether anything has been started at all.
func (t *offsetTracker) committable() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.next < 0 {
		return 0, false
	}
	if t.head < len(t.pending) {
		return t.pending[t.head].offset, true
	}
	return t.next, true
}

// inFlight is the number of started, unfinished messages.
func (t *offsetTracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.pending[t.head:] {
		if !p.done {
			n++
		}
	}
	return n
}
