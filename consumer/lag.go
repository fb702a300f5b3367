package consumer

import (
	"context"
	"fmt"
	"sort"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/kafkaconn"
)

// newClient returns a Kafka client on a transport of its own, built from the
// configuration (SASL, TLS), and the func that closes its connections. Its
// own transport, because kafka-go's shared default one answers metadata
// requests from a cache that may predate a topic's creation.
func newClient(cfg config.Kafka) (*kafka.Client, func(), error) {
	transport, err := kafkaconn.Transport(cfg)
	if err != nil {
		return nil, nil, err
	}
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.DialTimeout, Transport: transport}
	return client, transport.CloseIdleConnections, nil
}

// PartitionLag is one partition's position for a consumer group.
type PartitionLag struct {
	Topic     string
	Partition int
	End       int64 // high watermark
	Committed int64 // -1 when the group has committed nothing
	Lag       int64
}

// GroupLag reads, for group over topics, each partition's high watermark
// and committed offset, as `webhookd status` shows them.
func GroupLag(ctx context.Context, cfg config.Kafka, group string, topics []string) ([]PartitionLag, error) {
	client, closeClient, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	defer closeClient()

	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	parts := map[string][]int{}
	offsets := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, t := range md.Topics {
		if t.Error != nil {
			continue // a topic not created yet has no lag
		}
		for _, p := range t.Partitions {
			parts[t.Name] = append(parts[t.Name], p.ID)
			offsets.Topics[t.Name] = append(offsets.Topics[t.Name], kafka.LastOffsetOf(p.ID))
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	ends, err := client.ListOffsets(ctx, offsets)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: parts})
	if err != nil {
		return nil, fmt.Errorf("fetch committed offsets of %s: %w", group, err)
	}
	done := map[string]map[int]int64{}
	for topic, ps := range committed.Topics {
		done[topic] = map[int]int64{}
		for _, p := range ps {
			done[topic][p.Partition] = p.CommittedOffset
		}
	}
	var out []PartitionLag
	for topic, ps := range ends.Topics {
		for _, p := range ps {
			c, ok := done[topic][p.Partition]
			if !ok {
				c = -1
			}
			lag := p.LastOffset - max(c, 0)
			out = append(out, PartitionLag{Topic: topic, Partition: p.Partition, End: p.LastOffset, Committed: c, Lag: lag})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
