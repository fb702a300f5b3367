package delivery

import (
	"context"
	"sync"
	"time"
)

// rateHorizon is the longest a delivery waits in memory for its
// subscription's max_rate token.
const rateHorizon = time.Second

// subscriptionRates hold each subscription that has a max_rate to it, in
// the pod: a delivery takes a token of its subscription's bucket before it
// asks its endpoint for a slot. One that would have to wait for its token
// longer than rateHorizon is not kept in memory: it is deferred, booked at
// the subscription's next free turn, like any delivery its endpoint cannot
// take now. The rest wait for their token in the delivery's own goroutine,
// at most rateHorizon, so at most max_rate × 1 s deliveries of one
// subscription wait in memory for it.
//
// The cap is per pod: each pod paces its own deliveries, so a partner gets
// at most max_rate × the pods reading its events.
type subscriptionRates struct {
	now func() time.Time

	mu sync.Mutex
	m  map[string]*subscriptionRate
}

type subscriptionRate struct {
	bucket tokenBucket
	// nextFree is the turn booked for the next delivery deferred for the
	// rate: successive ones are spaced at the rate.
	nextFree time.Time
}

// maxRateBurst: a subscription's bucket holds at most this share of a
// second's deliveries (at least one), as the 429 pacing does, so no 1 s
// window goes much beyond max_rate.
const maxRateBurst = 1.0 / 20

func newSubscriptionRates(now func() time.Time) *subscriptionRates {
	return &subscriptionRates{now: now, m: map[string]*subscriptionRate{}}
}

// admit takes a token for a delivery of subscription id, capped at rate
// deliveries/s: it returns at once when one is free, after waiting for it
// when it is due within rateHorizon, and otherwise a BusyError booked for
// the subscription's next free turn. It returns ctx's error if ctx ends
// while it waits (the token is lost: the rate only goes below the cap).
func (r *subscriptionRates) admit(ctx context.Context, id string, rate float64) error {
	wait, err := r.book(id, rate)
	if err != nil || wait <= 0 {
		return err
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// book takes or books id's next token: how long to wait for it, or a
// BusyError when that is more than rateHorizon.
func (r *subscriptionRates) book(id string, rate float64) (time.Duration, error) {
	if rate <= 0 {
		return 0, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	s, ok := r.m[id]
	if !ok {
		s = &subscriptionRate{}
		r.m[id] = s
	}
	if s.bucket.rate != rate { // new, or changed since: from now on
		s.bucket.set(now, rate, rate*maxRateBurst)
	}
	wait, ok := s.bucket.reserve(now, rateHorizon)
	if ok {
		return wait, nil
	}
	at := now.Add(max(wait, minDeferral))
	if s.nextFree.After(at) {
		at = s.nextFree
	}
	s.nextFree = at.Add(time.Duration(float64(time.Second) / rate))
	return 0, &BusyError{Until: at, Rate: true}
}
