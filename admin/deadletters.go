package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
)

// KafkaDeadLetters is DeadLetters on the configured dead-letter topic, as
// `webhookd dlq list` and `webhookd replay` read it.
type KafkaDeadLetters struct {
	Config config.Config
	Store  delivery.SubscriptionStore
}

var _ DeadLetters = KafkaDeadLetters{}

// Read reads the whole dead-letter topic as of the call.
func (k KafkaDeadLetters) Read(ctx context.Context, filter delivery.DeadLetterFilter, fn func(delivery.Record) error) (int, error) {
	return delivery.ReadDeadLetters(ctx, k.Config, filter, fn)
}

// Replay redelivers to the subscription's current URL and API key.
func (k KafkaDeadLetters) Replay(ctx context.Context, filter delivery.DeadLetterFilter, progress func(delivery.Record, delivery.Result)) (delivery.ReplaySummary, error) {
	return delivery.Replay(ctx, k.Config, k.Store, filter, progress)
}

// Listing bounds: a listing is read into memory before it is sent.
const (
	defaultDeadLetterLimit = 1000
	maxDeadLetterLimit     = 10000
	// maxReplayFailures bounds the failures a replay answer lists.
	maxReplayFailures = 100
)

var errLimitReached = errors.New("limit reached")

type deadLetterList struct {
	DeadLetters []delivery.Record `json:"dead_letters"`
	Count       int               `json:"count"`
	// Truncated says that more records matched than limit.
	Truncated bool `json:"truncated"`
	// Skipped counts unreadable records.
	Skipped int `json:"skipped"`
}

// filter builds a dead-letter filter from the API's fields, like the
// CLI's --subscription, --since and --until.
func (h *Handler) filter(subscription, since, until string) (delivery.DeadLetterFilter, error) {
	now := h.now()
	f := delivery.DeadLetterFilter{SubscriptionID: subscription}
	var err error
	if f.Since, err = delivery.ParseWhen(since, now); err != nil {
		return f, badRequest("since", "since: %v", err)
	}
	if f.Until, err = delivery.ParseWhen(until, now); err != nil {
		return f, badRequest("until", "until: %v", err)
	}
	// An until before since is no error, as in the CLI: it matches nothing.
	// (Whether it is before depends on now when either is a duration ago,
	// which no schema can state.)
	return f, nil
}

func (h *Handler) listDeadLetters(w http.ResponseWriter, r *http.Request) error {
	q, err := queryParams(r, "subscription", "since", "until", "limit")
	if err != nil {
		return err
	}
	filter, err := h.filter(q.Get("subscription"), q.Get("since"), q.Get("until"))
	if err != nil {
		return err
	}
	limit := defaultDeadLetterLimit
	if s := q.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > maxDeadLetterLimit {
			return badRequest("limit", "limit: want 1 to %d, got %q", maxDeadLetterLimit, s)
		}
	}
	out := deadLetterList{DeadLetters: []delivery.Record{}}
	out.Skipped, err = h.dead.Read(r.Context(), filter, func(rec delivery.Record) error {
		if len(out.DeadLetters) == limit {
			out.Truncated = true
			return errLimitReached
		}
		out.DeadLetters = append(out.DeadLetters, rec)
		return nil
	})
	if err != nil && !errors.Is(err, errLimitReached) {
		return unavailable("read the dead-letter topic", err)
	}
	out.Count = len(out.DeadLetters)
	writeJSON(w, http.StatusOK, out)
	return nil
}

type replayRequest struct {
	SubscriptionID string `json:"subscription_id"`
	Since          string `json:"since"`
	Until          string `json:"until"`
}

type replayAnswer struct {
	SubscriptionID string          `json:"subscription_id"`
	Total          int             `json:"total"`
	Delivered      int             `json:"delivered"`
	Failed         int             `json:"failed"`
	Failures       []replayFailure `json:"failures"`
	// FailuresTruncated says that more failed than Failures lists.
	FailuresTruncated bool `json:"failures_truncated"`
}

type replayFailure struct {
	WebhookID string `json:"webhook_id"`
	EventType string `json:"event_type"`
	RequestID string `json:"request_id,omitempty"`
	Status    int    `json:"status,omitempty"`
	Error     string `json:"error"`
}

// replay is `webhookd replay`: every matching dead letter of one
// subscription is redelivered once to its current URL and API key; the
// answer is the summary and the failures. The topic is left as it is, so
// a replay is safe to repeat.
func (h *Handler) replay(w http.ResponseWriter, r *http.Request) error {
	var req replayRequest
	fields, err := readJSON(w, r, &req, false)
	if err != nil {
		return err
	}
	if err := refuseEmpty(fields, "since", "until"); err != nil {
		return err
	}
	if req.SubscriptionID == "" {
		return badRequest("subscription_id", "field \"subscription_id\" is required")
	}
	filter, err := h.filter(req.SubscriptionID, req.Since, req.Until)
	if err != nil {
		return err
	}
	sub, err := h.store.Get(r.Context(), req.SubscriptionID)
	if err != nil {
		return err
	}
	if !sub.Enabled {
		return &apiError{status: http.StatusConflict, field: "subscription_id",
			msg: fmt.Sprintf("subscription %s is disabled: enable it first (POST /v1/subscriptions/%s/enable)", sub.ID, sub.ID)}
	}
	scrub := func(s string) string {
		if sub.APIKey == "" {
			return s
		}
		return strings.ReplaceAll(s, sub.APIKey, config.Mask(sub.APIKey))
	}
	ans := replayAnswer{SubscriptionID: sub.ID, Failures: []replayFailure{}}
	log := h.log.With(zap.String("subscription_id", sub.ID))
	log.Info("admin replay started")
	sum, err := h.dead.Replay(r.Context(), filter, func(rec delivery.Record, res delivery.Result) {
		ans.Total++
		if !res.OK() {
			ans.Failed++
			if len(ans.Failures) < maxReplayFailures {
				ans.Failures = append(ans.Failures, replayFailure{WebhookID: rec.WebhookID, EventType: string(rec.EventType),
					RequestID: rec.RequestID, Status: res.Status, Error: scrub(res.Err.Error())})
			} else {
				ans.FailuresTruncated = true
			}
		}
		if ans.Total%100 == 0 {
			log.Info("admin replay progress", zap.Int("replayed", ans.Total), zap.Int("failed", ans.Failed))
		}
	})
	ans.Total, ans.Delivered, ans.Failed = sum.Total, sum.Delivered, sum.Failed
	log.Info("admin replay finished", zap.Int("replayed", sum.Total), zap.Int("delivered", sum.Delivered), zap.Int("failed", sum.Failed), zap.Error(err))
	if err != nil {
		return unavailable(fmt.Sprintf("replay stopped after %d (%d delivered, %d failed)", sum.Total, sum.Delivered, sum.Failed), err)
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// unavailable is a failure of Kafka (or of the request's context), not of
// the request: 503, with what was done.
func unavailable(what string, err error) error {
	return &apiError{status: http.StatusServiceUnavailable, msg: fmt.Sprintf("%s: %v", what, err)}
}
