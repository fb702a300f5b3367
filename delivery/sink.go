package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/kafkaconn"
)

// KafkaSink writes what leaves a source partition without being delivered:
// retry records (Retry, below), dead letters (Dead, in deadletters.go) and
// invalid domain events (Invalid, below). A write returns
// only once the broker has acknowledged it (all in-sync replicas), or ctx
// ends: until then the source message is not finished, so its offset is not
// committed and nothing is lost if the pod dies.
type KafkaSink struct {
	w            *kafka.Writer
	retryTopic   string
	dlqTopic     string
	invalidTopic string
	log          *zap.Logger
}

// NewKafkaSink builds the sink on the configured brokers and topics.
func NewKafkaSink(cfg config.Config, log *zap.Logger) (*KafkaSink, error) {
	transport, err := kafkaconn.Transport(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	return &KafkaSink{
		w: &kafka.Writer{
			Addr:         kafka.TCP(cfg.Kafka.Brokers...),
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: 5 * time.Millisecond,
			MaxAttempts:  3,
			Transport:    transport,
		},
		retryTopic:   cfg.Delivery.Retry.Topic,
		dlqTopic:     cfg.Delivery.DLQ.Topic,
		invalidTopic: cfg.Consumer.InvalidTopic,
		log:          log,
	}, nil
}

// Close flushes and closes the writer.
func (s *KafkaSink) Close() error { return s.w.Close() }

// Retry writes a record waiting for its next attempt to the delay tier of
// the retry topic that fits the wait until its not_before (tiers.go), keyed
// like its source event.
func (s *KafkaSink) Retry(ctx context.Context, r Record) error {
	return s.writeRecord(ctx, tierTopic(s.retryTopic, time.Until(r.NotBefore)), r.Source.Key, r)
}

// Invalid writes a message that is not a valid domain event to the invalid
// topic: its raw bytes and key as they came, the reason and origin in
// headers.
//
// A value longer than maxInvalidValue is cut to it, with its full length in
// a header: the writer (and the broker's default message.max.bytes) refuse
// messages over 1 MiB, and a write retried for ever would stall the
// partition. The whole message stays in its source topic, which the headers
// locate.
func (s *KafkaSink) Invalid(ctx context.Context, m *kafka.Message, reason error) error {
	value, extra := m.Value, []kafka.Header(nil)
	if len(value) > maxInvalidValue {
		value = value[:maxInvalidValue]
		extra = []kafka.Header{{Key: "webhookd-truncated-from-bytes", Value: []byte(strconv.Itoa(len(m.Value)))}}
	}
	return s.write(ctx, kafka.Message{
		Topic: s.invalidTopic,
		Key:   m.Key,
		Value: value,
		Headers: append(append([]kafka.Header{
			{Key: "webhookd-reason", Value: []byte(reason.Error())},
			{Key: "webhookd-source-topic", Value: []byte(m.Topic)},
			{Key: "webhookd-source-partition", Value: []byte(strconv.Itoa(m.Partition))},
			{Key: "webhookd-source-offset", Value: []byte(strconv.FormatInt(m.Offset, 10))},
			{Key: "webhookd-received-at", Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
		}, extra...), m.Headers...),
	})
}

// maxInvalidValue is the most of an invalid message's value the invalid
// topic keeps.
const maxInvalidValue = 512 << 10

func (s *KafkaSink) writeRecord(ctx context.Context, topic, key string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode delivery record: %w", err)
	}
	return s.write(ctx, kafka.Message{Topic: topic, Key: []byte(key), Value: b})
}

// write retries until the broker acknowledges or ctx ends.
func (s *KafkaSink) write(ctx context.Context, m kafka.Message) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.w.WriteMessages(ctx, m)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("write to %s: %w", m.Topic, ctx.Err())
		}
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn("cannot write to Kafka yet; retrying (the source offset waits)",
				zap.String("topic", m.Topic), zap.Int("attempt", attempt), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("write to %s: %w", m.Topic, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
