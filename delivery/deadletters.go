package delivery

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/kafkaconn"
)

// Dead letters: written here (KafkaSink.Dead), read and filtered here
// (ReadDeadLetters, for `dlq list` and the admin API), redelivered in
// replay.go.

// Dead writes a record to the dead-letter topic, keyed by subscription, so
// that one subscription's dead letters stay in order on one partition.
func (s *KafkaSink) Dead(ctx context.Context, r Record) error {
	return s.writeRecord(ctx, s.dlqTopic, r.SubscriptionID, r)
}

// DeadLetterFilter selects dead letters by subscription and by when they
// were dead-lettered; zero fields match everything.
type DeadLetterFilter struct {
	SubscriptionID string
	Since, Until   time.Time
}

// Match reports whether r passes the filter.
func (f DeadLetterFilter) Match(r Record) bool {
	switch {
	case f.SubscriptionID != "" && r.SubscriptionID != f.SubscriptionID:
		return false
	case !f.Since.IsZero() && r.DeadAt.Before(f.Since):
		return false
	case !f.Until.IsZero() && r.DeadAt.After(f.Until):
		return false
	}
	return true
}

// ReadDeadLetters reads the dead-letter topic from its start to its end as
// of the call, and calls fn for each record the filter matches, partition
// by partition in offset order. Unreadable records are counted and skipped.
func ReadDeadLetters(ctx context.Context, cfg config.Config, filter DeadLetterFilter, fn func(Record) error) (skipped int, err error) {
	topic := cfg.Delivery.DLQ.Topic
	transport, err := kafkaconn.Transport(cfg.Kafka)
	if err != nil {
		return 0, err
	}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Timeout: cfg.Kafka.DialTimeout, Transport: transport}

	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("read %s metadata: %w", topic, err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		if len(md.Topics) == 1 && errors.Is(md.Topics[0].Error, kafka.UnknownTopicOrPartition) {
			return 0, nil // nothing was ever dead-lettered
		}
		return 0, fmt.Errorf("read %s metadata: %v", topic, md.Topics)
	}
	var parts []int
	for _, p := range md.Topics[0].Partitions {
		parts = append(parts, p.ID)
	}
	sort.Ints(parts)
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	offs, err := client.ListOffsets(ctx, req)
	if err != nil {
		return 0, fmt.Errorf("read %s offsets: %w", topic, err)
	}
	for _, po := range offs.Topics[topic] {
		if po.Error != nil {
			return skipped, fmt.Errorf("read %s partition %d offsets: %w", topic, po.Partition, po.Error)
		}
		if po.FirstOffset >= po.LastOffset {
			continue
		}
		n, err := readPartition(ctx, cfg, topic, po.Partition, po.FirstOffset, po.LastOffset, filter, fn)
		skipped += n
		if err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

func readPartition(ctx context.Context, cfg config.Config, topic string, partition int, first, end int64,
	filter DeadLetterFilter, fn func(Record) error) (skipped int, err error) {
	dialer, err := kafkaconn.Dialer(cfg.Kafka)
	if err != nil {
		return 0, err
	}
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   cfg.Kafka.Brokers,
		Topic:     topic,
		Partition: partition,
		Dialer:    dialer,
		MaxWait:   500 * time.Millisecond,
	})
	defer func() { _ = r.Close() }()
	if err := r.SetOffset(first); err != nil {
		return 0, fmt.Errorf("seek %s/%d: %w", topic, partition, err)
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return skipped, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		}
		rec, derr := DecodeRecord(m.Value)
		switch {
		case derr != nil:
			skipped++
		case filter.Match(rec):
			if err := fn(rec); err != nil {
				return skipped, err
			}
		}
		if m.Offset >= end-1 {
			return skipped, nil
		}
	}
}
