package delivery

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/order"
)

// ChainStore keeps the chains of (subscription, key)s with deliveries
// waiting in the retry tiers (order.Chains in Redis).
type ChainStore interface {
	Join(ctx context.Context, p order.Partition, field string, offsets []int64) ([]int64, error)
	Settle(ctx context.Context, p order.Partition, field string, o int64) error
	Get(ctx context.Context, p order.Partition, field string) (order.Chain, bool, error)
	Scan(ctx context.Context, p order.Partition) (map[string]order.Chain, error)
	Booked(ctx context.Context, p order.Partition, field string, due time.Time) error
}

var _ ChainStore = (*order.Chains)(nil)

// chains keeps a (subscription, key)'s deliveries in order once one of them
// has left the source partition through the retry tiers (a deferral or a
// retry): every later delivery of that (subscription, key) follows it there
// and goes out only after it (package order). Deliveries of keys with no
// delivery waiting pay one map lookup.
//
// It knows the open chains of the source partitions this process reads
// from a local map, loaded from the store with Scan the first time a
// partition is seen and dropped when the partition is released (another
// owner may change its chains meanwhile). A store that cannot be reached
// costs order, never a delivery: the delivery goes on as if its chain were
// closed, and a warning says so.
type chains struct {
	store ChainStore
	log   *zap.Logger

	mu    sync.Mutex
	parts map[order.Partition]*partChains
}

// partChains is one source partition's open chains: the last member joined
// to each, by field.
type partChains struct {
	ready chan struct{} // closed once loaded
	last  map[string]chainEnd
}

// chainEnd is the last member of a chain: its offset, and when it was due
// when it joined (zero when loaded from the store).
type chainEnd struct {
	offset int64
	due    time.Time
}

func newChains(store ChainStore, log *zap.Logger) *chains {
	return &chains{store: store, log: log, parts: map[order.Partition]*partChains{}}
}

func sourcePartition(d *Delivery) order.Partition {
	return order.Partition{Topic: d.Source.Topic, Partition: d.Source.Partition}
}

// ordered reports whether d's order is kept: it has a key, and a store.
func (c *chains) ordered(d *Delivery) bool {
	return c != nil && d.Source.Key != "" && d.Source.Topic != ""
}

// partition returns p's open chains, loading them on first use.
func (c *chains) partition(ctx context.Context, p order.Partition) *partChains {
	c.mu.Lock()
	pc, ok := c.parts[p]
	if !ok {
		pc = &partChains{ready: make(chan struct{}), last: map[string]chainEnd{}}
		c.parts[p] = pc
	}
	c.mu.Unlock()
	if ok {
		<-pc.ready
		return pc
	}
	open, err := c.store.Scan(ctx, p)
	if err != nil {
		c.log.Warn("cannot read the partition's open delivery chains; its deliveries go on, possibly out of order with ones waiting in the retry tiers",
			zap.String("topic", p.Topic), zap.Int("partition", p.Partition), zap.Error(err))
	}
	c.mu.Lock()
	for f, ch := range open {
		pc.last[f] = chainEnd{offset: ch.Last}
	}
	c.mu.Unlock()
	close(pc.ready)
	return pc
}

// waiting reports whether d, a delivery read from its source partition,
// must follow an earlier one of its (subscription, key) into the retry
// tiers, and when that one was due. Called one at a time per
// (subscription, key).
func (c *chains) waiting(ctx context.Context, d *Delivery) (bool, time.Time) {
	if !c.ordered(d) {
		return false, time.Time{}
	}
	p, f := sourcePartition(d), order.Field(d.SubscriptionID, []byte(d.Source.Key))
	pc := c.partition(ctx, p)
	c.mu.Lock()
	end, open := pc.last[f]
	c.mu.Unlock()
	if !open {
		return false, time.Time{}
	}
	ch, ok, err := c.store.Get(ctx, p, f)
	if err != nil {
		c.log.Warn("cannot read a delivery chain; the delivery goes on, possibly out of order", zap.String("subscription_id", d.SubscriptionID), zap.Error(err))
		return false, time.Time{}
	}
	if ok && ch.Settled < ch.Last {
		return true, end.due
	}
	c.mu.Lock()
	delete(pc.last, f)
	c.mu.Unlock()
	return false, time.Time{}
}

// join makes d, leaving its source partition for the retry tiers, the last
// member of its (subscription, key)'s chain, with the member before it as
// its prev. Only a delivery read from its source partition joins (the
// partition's owner is the only writer of its chains' ends); a record read
// back keeps its place, or has none (written while the store could not be
// reached, or by an older build).
//
// A delivery read again after a crash re-joins: it gets the prev it had
// the first time, and its copy waits behind the same member. It reports
// done when the chain has settled d already (delivered or dead-lettered
// since it was first read): there is nothing left to do for it.
func (c *chains) join(ctx context.Context, d *Delivery) (done bool) {
	if !c.ordered(d) || d.ChainPrev != nil || !d.fromSource {
		return false
	}
	p, f := sourcePartition(d), order.Field(d.SubscriptionID, []byte(d.Source.Key))
	prevs, err := c.store.Join(ctx, p, f, []int64{d.Source.Offset})
	switch {
	case errors.Is(err, order.ErrSettled):
		return true
	case errors.Is(err, order.ErrRejoin):
		c.log.Warn("a delivery read again is too far back in its chain to find its place; it is deferred without it, possibly out of order", zap.String("subscription_id", d.SubscriptionID), zap.Int64("offset", d.Source.Offset))
		return false
	case err != nil:
		c.log.Warn("cannot join a delivery chain; the delivery is deferred without its place in order", zap.String("subscription_id", d.SubscriptionID), zap.Error(err))
		return false
	}
	prev := prevs[0]
	d.ChainPrev = &prev
	pc := c.partition(ctx, p)
	c.mu.Lock()
	if end, ok := pc.last[f]; !ok || end.offset <= d.Source.Offset {
		pc.last[f] = chainEnd{offset: d.Source.Offset, due: d.NotBefore}
	}
	c.mu.Unlock()
	return false
}

// lead makes d, a delivery read from its source partition and waiting for
// its endpoint's answer, the head of its (subscription, key)'s chain, so
// that the deliveries behind it can leave the source partition and wait
// for it in the retry tiers. It reports whether d has its place; then its
// settling (delivered, dead-lettered) lets the next member go, and a crash
// before it has d read again and re-joined at the same place. Called on
// another goroutine than d's own, which does not touch d meanwhile
// (turn.offer).
func (c *chains) lead(ctx context.Context, d *Delivery) bool {
	// A d settled already (join reports done) ends soon: nothing waits
	// long behind it. One that could not join has no place to lead from.
	return !c.join(ctx, d) && d.ChainPrev != nil
}

// settle closes d's place in its chain: it was delivered, or
// dead-lettered, so the next member may go.
func (c *chains) settle(ctx context.Context, d *Delivery) {
	if c == nil || d.ChainPrev == nil {
		return
	}
	p, f := sourcePartition(d), order.Field(d.SubscriptionID, []byte(d.Source.Key))
	if err := c.store.Settle(ctx, p, f, d.Source.Offset); err != nil {
		c.log.Warn("cannot settle a delivery chain; the deliveries behind it wait until it is", zap.String("subscription_id", d.SubscriptionID), zap.Error(err))
	}
}

// booked records when d, its chain's head, deferred or to be retried, is
// due: the members behind it wait until then.
func (c *chains) booked(ctx context.Context, d *Delivery) {
	if c == nil || d.ChainPrev == nil {
		return
	}
	p, f := sourcePartition(d), order.Field(d.SubscriptionID, []byte(d.Source.Key))
	if err := c.store.Booked(ctx, p, f, d.NotBefore); err != nil {
		c.log.Warn("cannot book a delivery chain's head; the deliveries behind it ask again every second", zap.String("subscription_id", d.SubscriptionID), zap.Error(err))
	}
}

// gate says what to do with rec, read back from the retry tiers: go,
// wait for the member before it, or drop it (settled already); with a
// wait, when the chain's head is booked to come back (zero if unknown).
func (c *chains) gate(ctx context.Context, rec *Record) (order.Gate, time.Time) {
	if c == nil || rec.ChainPrev == nil {
		return order.GateGo, time.Time{}
	}
	p := order.Partition{Topic: rec.Source.Topic, Partition: rec.Source.Partition}
	ch, ok, err := c.store.Get(ctx, p, order.Field(rec.SubscriptionID, []byte(rec.Source.Key)))
	if err != nil {
		c.log.Warn("cannot read a delivery chain; the delivery goes, possibly out of order", zap.String("subscription_id", rec.SubscriptionID), zap.Error(err))
		return order.GateGo, time.Time{}
	}
	return order.Ready(ch, ok, rec.Source.Offset, *rec.ChainPrev), ch.HeadDue
}

// released forgets p's chains: another owner may change them now.
func (c *chains) released(p order.Partition) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.parts, p)
	c.mu.Unlock()
}

// chainWait is how long a member waits before it asks again whether the
// member before it is settled, when its head is due already or its due is
// unknown: a second (the shortest delay tier) for its first ten asks, then
// 5 s, so a chain moves on within about a second of its head and a
// long-stuck one costs one write per member every 5 s. A head booked
// further out (Booked) is waited for: its followers come back once, just
// after it, rather than every second until then.
func chainWait(waits int) time.Duration {
	if waits < 10 {
		return time.Second
	}
	return 5 * time.Second
}

// followGap is how long after the member before it a follower is due:
// enough that it is usually read after its prev has gone out.
const followGap = 50 * time.Millisecond
