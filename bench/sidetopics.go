package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
)

// countRecords returns how many records each topic holds (end − start
// offsets over its partitions); a topic that does not exist holds 0.
func (st *stage) countRecords(ctx context.Context, topics ...string) (map[string]int64, error) {
	client := st.client()
	defer client.Transport.(*kafka.Transport).CloseIdleConnections()
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata of %s: %w", strings.Join(topics, ","), err)
	}
	out := make(map[string]int64, len(topics))
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range md.Topics {
		out[t.Name] = 0
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				continue
			}
			return nil, fmt.Errorf("metadata of %s: %w", t.Name, t.Error)
		}
		for _, p := range t.Partitions {
			req.Topics[t.Name] = append(req.Topics[t.Name], kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
		}
	}
	if len(req.Topics) == 0 {
		return out, nil
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("offsets of %s: %w", strings.Join(topics, ","), err)
	}
	for t, ps := range offs.Topics {
		for _, p := range ps {
			if p.Error != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", t, p.Partition, p.Error)
			}
			out[t] += max(0, p.LastOffset-p.FirstOffset)
		}
	}
	return out, nil
}

// deadCount is the number of records on the stage's dead-letter topic.
func (st *stage) deadCount(ctx context.Context) (int64, error) {
	n, err := st.countRecords(ctx, st.DLQTopic)
	return n[st.DLQTopic], err
}

// readRecords reads every delivery record (retry or dead letter) on topic
// with webhookd's own reader.
func (st *stage) readRecords(ctx context.Context, topic string, fn func(delivery.Record) error) error {
	cfg := config.Defaults()
	cfg.Kafka = st.kafka
	cfg.Delivery.DLQ.Topic = topic
	skipped, err := delivery.ReadDeadLetters(ctx, cfg, delivery.DeadLetterFilter{}, fn)
	if err == nil && skipped > 0 {
		err = fmt.Errorf("%s: %d unreadable records", topic, skipped)
	}
	return err
}

// recordTally counts delivery records by subscription, and by reason (dead
// letters) or last status (retry records), for a note.
type recordTally struct {
	bySub   map[string]int64
	byCause map[string]map[string]int64 // subscription → cause → count
}

func newRecordTally() *recordTally {
	return &recordTally{bySub: map[string]int64{}, byCause: map[string]map[string]int64{}}
}

func (t *recordTally) add(r delivery.Record) {
	t.bySub[r.SubscriptionID]++
	cause := string(r.Reason)
	if cause == "" {
		cause = fmt.Sprintf("status %d", r.LastStatus)
	}
	if r.LastError != "" && r.LastStatus == 0 {
		cause += " (" + truncate(r.LastError, 60) + ")"
	}
	if t.byCause[r.SubscriptionID] == nil {
		t.byCause[r.SubscriptionID] = map[string]int64{}
	}
	t.byCause[r.SubscriptionID][cause]++
}

// String is "sub: n (cause m, …); …", subscriptions sorted.
func (t *recordTally) String() string {
	if len(t.bySub) == 0 {
		return "none"
	}
	subs := make([]string, 0, len(t.bySub))
	for s := range t.bySub {
		subs = append(subs, s)
	}
	sort.Strings(subs)
	parts := make([]string, 0, len(subs))
	for _, s := range subs {
		var causes []string
		for c, n := range t.byCause[s] {
			causes = append(causes, fmt.Sprintf("%s: %d", c, n))
		}
		sort.Strings(causes)
		parts = append(parts, fmt.Sprintf("%s %d (%s)", s, t.bySub[s], strings.Join(causes, ", ")))
	}
	return strings.Join(parts, "; ")
}

// deadLetters reads the stage's dead letters, after webhookd stopped.
func (b *bench) deadLetters(st *stage) (*recordTally, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t := newRecordTally()
	err := st.readRecords(ctx, st.DLQTopic, func(r delivery.Record) error { t.add(r); return nil })
	return t, err
}

// retryCounts notes the records written to the retry topic and each of its
// tiers, and returns their sum.
func (b *bench) retryCounts(res *scenarioResult, st *stage) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := delivery.RetryTopics(st.RetryTopic)
	n, err := st.countRecords(ctx, topics...)
	if err != nil {
		res.note("retry records not counted: %v", err)
		return 0
	}
	var sum int64
	parts := make([]string, 0, len(topics))
	for _, t := range topics {
		sum += n[t]
		name := "base"
		if i := strings.LastIndexByte(t, '.'); t != st.RetryTopic && i >= 0 {
			name = t[i+1:]
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, n[t]))
	}
	res.note("retry/deferral records written: %d (retry topic and its tiers: %s)", sum, strings.Join(parts, ", "))
	return sum
}
