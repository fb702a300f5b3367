package delivery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/subscriptions"
)

// SubscriptionStore reads a subscription as stored now.
type SubscriptionStore interface {
	Get(ctx context.Context, id string) (subscriptions.Subscription, error)
}

// ReplaySummary counts a replay's outcomes.
type ReplaySummary struct{ Total, Delivered, Failed int }

// Replay redelivers the dead letters of filter.SubscriptionID (required)
// once each, with their original body and webhook id, to the
// subscription's current URL and API key, calling progress after each. It
// does not touch the dead-letter topic, so a replay is safe to repeat: a
// partner deduplicating on webhook-id sees each event once.
func Replay(ctx context.Context, cfg config.Config, store SubscriptionStore, filter DeadLetterFilter,
	progress func(Record, Result)) (ReplaySummary, error) {
	var sum ReplaySummary
	if filter.SubscriptionID == "" {
		return sum, errors.New("replay needs a subscription id")
	}
	sub, err := store.Get(ctx, filter.SubscriptionID)
	if err != nil {
		return sum, err
	}
	if !sub.Enabled {
		return sum, fmt.Errorf("subscription %s is disabled: enable it first (webhookd subscriptions enable %s)", sub.ID, sub.ID)
	}
	sender := NewSender(cfg.Delivery, zap.NewNop(), nil)
	defer sender.Close()
	_, err = ReadDeadLetters(ctx, cfg, filter, func(r Record) error {
		res := sender.Send(ctx, EndpointOf(&sub, r.WebhookID, time.Now()), r.Body)
		sum.Total++
		if res.OK() {
			sum.Delivered++
		} else {
			sum.Failed++
		}
		if progress != nil {
			progress(r, res)
		}
		return ctx.Err()
	})
	return sum, err
}
