package consumer

import (
	"errors"
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"testing"

	"go.uber.org/zap"
)

type fakeGen struct {
	commits []map[string]map[int]int64
	fail    bool
}

func (g *fakeGen) CommitOffsets(o map[string]map[int]int64) error {
	if g.fail {
		return errors.New("generation has ended")
	}
	g.commits = append(g.commits, o)
	return nil
}

func TestCommitterBatchesAndCommitsOnlyAdvances(t *testing.T) {
	gen := &fakeGen{}
	c := newCommitter(gen, zap.NewNop())
	a, b := newOffsetTracker(), newOffsetTracker()
	c.track("t", 0, a)
	c.track("t", 1, b)

	c.commitLocked(nil)
	if len(gen.commits) != 0 {
		t.Fatalf("committed before anything was read: %v", gen.commits)
	}
	a.start(0)
	a.start(1)
	b.start(7)
	a.finish(1) // 0 still in flight: partition 0 may only commit 0
	b.finish(7)
	c.commitLocked(nil)
	want := map[int]int64{0: 0, 1: 8}
	if got := gen.commits[0]["t"]; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("first batch %v, want %v", gen.commits[0], want)
	}

	c.commitLocked(nil)
	if len(gen.commits) != 1 {
		t.Fatalf("recommitted unchanged offsets: %v", gen.commits[1:])
	}

	a.finish(0)
	c.flush("t", 0)
	if got := gen.commits[1]["t"]; len(got) != 1 || got[0] != 2 {
		t.Fatalf("flush committed %v, want partition 0 at 2", gen.commits[1])
	}
	if _, tracked := c.parts[topicPartition{"t", 0}]; tracked {
		t.Fatal("flushed partition still tracked")
	}
}

func TestCommitterRetriesAfterFailedCommit(t *testing.T) {
	gen := &fakeGen{fail: true}
	c := newCommitter(gen, zap.NewNop())
	tr := newOffsetTracker()
	c.track("t", 0, tr)
	tr.start(4)
	tr.finish(4)
	c.commitLocked(nil)
	gen.fail = false
	c.commitLocked(nil)
	if len(gen.commits) != 1 || gen.commits[0]["t"][0] != 5 {
		t.Fatalf("offset not committed after the failure cleared: %v", gen.commits)
	}
}

func TestLaneOfKeepsAKeyOnOneLane(t *testing.T) {
	var rr uint32
	seed := maphash.MakeSeed()
	for _, key := range []string{"player-1", "player-2", "x"} {
		first := laneOf(seed, []byte(key), &rr, 32)
		for i := 0; i < 10; i++ {
			if got := laneOf(seed, []byte(key), &rr, 32); got != first {
				t.Fatalf("key %s moved from lane %d to %d", key, first, got)
			}
		}
	}
	seen := map[int]bool{}
	for i := 0; i < 64; i++ {
		seen[laneOf(seed, nil, &rr, 4)] = true
	}
	if len(seen) != 4 {
		t.Fatalf("keyless messages use %d of 4 lanes", len(seen))
	}
}

// Keys that kafka-go's Hash balancer (FNV-1a) put in one partition must
// still spread over every lane of that partition.
func TestLanesSpreadKeysOfOnePartition(t *testing.T) {
	var rr uint32
	seed := maphash.MakeSeed()
	used := map[int]bool{}
	for i := 0; len(used) < 32 && i < 100000; i++ {
		key := []byte(fmt.Sprint("player-", i))
		h := fnv.New32a()
		_, _ = h.Write(key)
		if h.Sum32()%12 != 0 {
			continue // not in partition 0 of 12
		}
		used[laneOf(seed, key, &rr, 32)] = true
	}
	if len(used) != 32 {
		t.Fatalf("keys of one partition use %d of 32 lanes", len(used))
	}
}
