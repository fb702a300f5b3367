package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// offsetCommitter is the part of a kafka-go generation the committer uses.
// Commits are scoped to the generation: once it is over, the coordinator
// refuses them, so a pod never commits for a partition it no longer owns.
type offsetCommitter interface {
	CommitOffsets(offsets map[string]map[int]int64) error
}

var _ offsetCommitter = (*kafka.Generation)(nil)

type topicPartition struct {
	topic     string
	partition int
}

type trackedPartition struct {
	tracker   *offsetTracker
	committed int64 // last offset committed by this generation; -1 for none
}

// committer batches the committable offsets of all partitions of one
// generation into one OffsetCommit request per interval.
type committer struct {
	gen offsetCommitter
	log *zap.Logger

	mu    sync.Mutex // serialises commits and guards parts
	parts map[topicPartition]*trackedPartition
}

func newCommitter(gen offsetCommitter, log *zap.Logger) *committer {
	return &committer{gen: gen, log: log, parts: make(map[topicPartition]*trackedPartition)}
}

func (c *committer) track(topic string, partition int, t *offsetTracker) {
	c.mu.Lock()
	c.parts[topicPartition{topic, partition}] = &trackedPartition{tracker: t, committed: -1}
	c.mu.Unlock()
}

// run commits every interval until the generation ends.
func (c *committer) run(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			c.mu.Lock()
			c.commitLocked(nil)
			c.mu.Unlock()
		}
	}
}

// flush commits one partition's final offset and stops tracking it.
func (c *committer) flush(topic string, partition int) {
	tp := topicPartition{topic, partition}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commitLocked(&tp)
	delete(c.parts, tp)
}

// commitLocked commits the advanced partitions (only tp when not nil).
func (c *committer) commitLocked(only *topicPartition) {
	offsets := map[string]map[int]int64{}
	var advanced []*trackedPartition
	var values []int64
	for tp, st := range c.parts {
		if only != nil && tp != *only {
			continue
		}
		off, ok := st.tracker.committable()
		if !ok || off <= st.committed {
			continue
		}
		if offsets[tp.topic] == nil {
			offsets[tp.topic] = map[int]int64{}
		}
		offsets[tp.topic][tp.partition] = off
		advanced = append(advanced, st)
		values = append(values, off)
	}
	if len(advanced) == 0 {
		return
	}
	if err := c.gen.CommitOffsets(offsets); err != nil {
		// Not fatal: the offsets are committed by a later attempt, or the
		// messages are delivered again by the partition's next owner.
		c.log.Warn("offset commit failed", zap.Any("offsets", offsets), zap.Error(err))
		return
	}
	for i, st := range advanced {
		st.committed = values[i]
	}
	c.log.Debug("committed offsets", zap.Any("offsets", offsets))
}
