package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/event"
)

const (
	benchTenant     = "bench"
	requestIDPrefix = "bench-"
	players         = 10_000 // distinct Kafka keys, so same-key ordering never throttles
)

// domainEvent appends a valid cash PRIZE_PAYOUT_SUCCEEDED of tenant "bench",
// as a payout service publishes it (~250 bytes). Its request_id is
// "bench-<seq, 9 digits>-<send time, unix nanos, 19 digits>" so receivers
// can detect duplicates and measure latency; sentNanos is 0 for preloaded
// events.
func domainEvent(dst []byte, seq int64, sentNanos int64) []byte {
	dst = append(dst, `{"tenant_id":"bench","event_type":"PRIZE_PAYOUT_SUCCEEDED","campaign_id":"bench-summer-campaign-2025","request_id":"`...)
	dst = appendRequestID(dst, seq, sentNanos)
	dst = append(dst, `","player_id":"`...)
	dst = appendPlayer(dst, seq)
	dst = append(dst, `","player_currency":"EUR","status":"SUCCESS","prize_type":"cash","amount":`...)
	dst = strconv.AppendInt(dst, 10+seq%990, 10)
	dst = append(dst, `.50,"bonus_id":`...)
	dst = strconv.AppendInt(dst, 1000+seq%9000, 10)
	return append(dst, `,"payout_ref":"internal-ref-0001"}`...)
}

func appendRequestID(dst []byte, seq, sentNanos int64) []byte {
	dst = append(dst, requestIDPrefix...)
	dst = appendPadded(dst, seq, 9)
	dst = append(dst, '-')
	return appendPadded(dst, sentNanos, 19)
}

func appendPlayer(dst []byte, seq int64) []byte {
	return appendPadded(append(dst, "player-"...), seq%players, 5)
}

func appendPadded(dst []byte, n int64, width int) []byte {
	s := strconv.AppendInt(nil, n, 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

func message(seq, sentNanos int64) kafka.Message {
	return kafka.Message{
		Key:   appendPlayer(make([]byte, 0, 12), seq),
		Value: domainEvent(make([]byte, 0, 280), seq, sentNanos),
	}
}

// renderedPayloads returns what webhookd POSTs for events 0..n-1, rendered
// by webhookd's own event package, for the clients that bypass webhookd.
func renderedPayloads(n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range out {
		ev, err := event.Decode(domainEvent(nil, int64(i), 0))
		if err != nil {
			return nil, fmt.Errorf("bench event does not decode: %w", err)
		}
		out[i] = ev.Body
	}
	return out, nil
}

func newWriter(brokers []string, topic string, batchTimeout time.Duration) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1000,
		BatchBytes:   4 << 20,
		BatchTimeout: batchTimeout,
		WriteTimeout: 30 * time.Second,
		// A transport of its own: the shared default one caches metadata
		// from before the topic existed.
		Transport: &kafka.Transport{},
	}
}

// preloadResult is what a preload achieved.
type preloadResult struct {
	Events   int64
	Bytes    int64
	Duration time.Duration
}

func (p preloadResult) rate() float64 { return float64(p.Events) / p.Duration.Seconds() }

// preload writes events 0..n-1 to topic with several WriteMessages calls in
// flight, each of about 1,000 messages per partition, so the writer's
// per-partition batches fill up.
func preload(ctx context.Context, brokers []string, topic string, n int64, partitions int) (preloadResult, error) {
	w := newWriter(brokers, topic, 5*time.Millisecond)
	defer func() { _ = w.Close() }()
	chunk := int64(1000 * partitions)
	const writers = 4
	var next, bytes atomic.Int64
	errs := make([]error, writers)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			msgs := make([]kafka.Message, 0, chunk)
			for {
				from := next.Add(chunk) - chunk
				if from >= n || ctx.Err() != nil {
					return
				}
				msgs = msgs[:0]
				for seq := from; seq < min(from+chunk, n); seq++ {
					m := message(seq, 0)
					bytes.Add(int64(len(m.Value) + len(m.Key)))
					msgs = append(msgs, m)
				}
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					errs[g] = fmt.Errorf("preload %s: %w", topic, err)
					return
				}
			}
		})
	}
	wg.Wait()
	res := preloadResult{Events: n, Bytes: bytes.Load(), Duration: time.Since(start)}
	return res, errors.Join(errs...)
}

// steadyResult is what a steady-rate production achieved.
type steadyResult struct {
	Events   int64
	Duration time.Duration
	Late     int64 // ticks whose write took longer than the tick
}

// produceSteady writes perTick events every tick for d, each carrying its
// send time, starting at seq 0. A write slower than a tick makes the ticker
// drop ticks; the achieved count says so.
func produceSteady(ctx context.Context, brokers []string, topic string, perTick int, tick, d time.Duration) (steadyResult, error) {
	w := newWriter(brokers, topic, time.Millisecond)
	defer func() { _ = w.Close() }()
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	deadline := start.Add(d)
	var res steadyResult
	msgs := make([]kafka.Message, perTick)
	for now := range t.C {
		if now.After(deadline) || ctx.Err() != nil {
			break
		}
		sent := time.Now().UnixNano()
		for i := range msgs {
			msgs[i] = message(res.Events+int64(i), sent)
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			res.Duration = time.Since(start)
			return res, fmt.Errorf("steady produce %s: %w", topic, err)
		}
		res.Events += int64(perTick)
		if time.Since(now) > tick {
			res.Late++
		}
	}
	res.Duration = time.Since(start)
	return res, ctx.Err()
}
