package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/unibo/webhookd/consumer"
	"github.com/unibo/webhookd/internal/testenv"
)

// Once AwaitTopics has created new topics, every partition's leader answers
// the first request a partition reader makes (its offsets), so the readers
// start without "Not Leader For Partition" warnings; the wait for a new
// topic's leaders is logged at debug level only.
func TestAwaitTopicsReturnsOnceNewPartitionsHaveLeaders(t *testing.T) {
	env := testenv.Start(t)
	cfg := env.Config(t)
	cfg.Kafka.Partitions = 12
	core, logs := observer.New(zapcore.DebugLevel)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := consumer.AwaitTopics(ctx, cfg.Kafka, cfg.Kafka.Topics, zap.New(core)); err != nil {
		t.Fatal(err)
	}

	client := &kafka.Client{Addr: kafka.TCP(env.Brokers...), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, topic := range cfg.Kafka.Topics {
		for p := range cfg.Kafka.Partitions {
			req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p))
		}
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for topic, parts := range res.Topics {
		if len(parts) != cfg.Kafka.Partitions {
			t.Errorf("%s: %d partitions answered, want %d", topic, len(parts), cfg.Kafka.Partitions)
		}
		for _, p := range parts {
			if p.Error != nil {
				t.Errorf("partition %d of %s right after AwaitTopics: %v", p.Partition, topic, p.Error)
			}
		}
	}
	for _, e := range logs.All() {
		if e.Level >= zapcore.WarnLevel {
			t.Errorf("warned while creating topics: %s %v", e.Message, e.ContextMap())
		}
	}
}
