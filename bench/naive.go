package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/event"
)

// naiveResult is what the one-message-at-a-time consumer achieved.
type naiveResult struct {
	Events int64
	Posts  int64 // 2xx answers it got
}

// runNaive is the consumer webhookd is compared against: a kafka-go Reader
// in its own group, FetchMessage → one http.Post per subscription URL, in
// turn → CommitMessages, one message at a time, for at most limit events or
// d after its first message.
func runNaive(ctx context.Context, brokers []string, topic, group string, urls []string, limit int64, d time.Duration) (naiveResult, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     brokers,
		GroupID:     group,
		Topic:       topic,
		MinBytes:    1,
		MaxBytes:    10 << 20,
		MaxWait:     500 * time.Millisecond,
		StartOffset: kafka.FirstOffset,
		// CommitInterval 0: CommitMessages commits synchronously.
	})
	var res naiveResult
	defer func() { _ = r.Close() }()
	var deadline time.Time
	for res.Events < limit {
		fetchCtx := ctx
		var cancel context.CancelFunc = func() {}
		if !deadline.IsZero() {
			fetchCtx, cancel = context.WithDeadline(ctx, deadline)
		}
		m, err := r.FetchMessage(fetchCtx)
		cancel()
		if err != nil {
			if !deadline.IsZero() && errors.Is(err, context.DeadlineExceeded) {
				return res, nil
			}
			return res, fmt.Errorf("naive fetch: %w", err)
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(d)
		}
		ev, err := event.Decode(m.Value)
		if err != nil {
			return res, fmt.Errorf("naive decode offset %d: %w", m.Offset, err)
		}
		for _, u := range urls {
			resp, err := http.Post(u, "application/json", bytes.NewReader(ev.Body))
			if err != nil {
				return res, fmt.Errorf("naive post: %w", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				res.Posts++
			}
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			return res, fmt.Errorf("naive commit: %w", err)
		}
		res.Events++
		if time.Now().After(deadline) {
			break
		}
	}
	return res, nil
}
