package subscriptions

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
)

// Source is where a Table loads the subscription table from.
type Source interface {
	// Load returns the whole table and its version, read consistently.
	Load(ctx context.Context) (Snapshot, error)
	// Version returns the current version, cheaply.
	Version(ctx context.Context) (int64, error)
	// WatchChanges calls notify when the table may have changed, until ctx
	// is done (nil) or the notifications break (an error).
	WatchChanges(ctx context.Context, notify func()) error
}

var _ Source = (*Store)(nil)

// Defaults used when the configuration leaves an interval unset.
const (
	defaultPollInterval    = time.Second
	defaultRefreshInterval = 30 * time.Second
	defaultMinBackoff      = 500 * time.Millisecond
	defaultMaxBackoff      = 5 * time.Second
)

// ErrTableLost is reported while Redis answers without the subscription
// table the pod has cached.
var ErrTableLost = errors.New("the subscription table is missing from Redis (restarted empty or flushed): " +
	"delivering from the cached table until it is restored, e.g. webhookd subscriptions apply -f backup.yaml")

// Status describes the in-memory table, for health endpoints.
type Status struct {
	Loaded   bool      // a load has succeeded; Match serves the table
	Size     int       // subscriptions in the table, disabled ones included
	Skipped  int       // unreadable entries left out of the table
	Version  int64     // version of the table being served
	LoadedAt time.Time // last successful load
	RedisOK  bool      // the last call to Redis succeeded
	// Unusable is set while RedisOK is false because Redis answered with a
	// table that cannot be used (lost, or secrets that do not decrypt),
	// rather than not answering.
	Unusable bool
	// LastError is the last Redis error while RedisOK is false.
	LastError string
}

// Table is the in-process copy of the subscription table. Match is safe for
// concurrent use and never blocks; Run keeps the copy fresh.
type Table struct {
	src        Source
	log        *zap.Logger
	poll       time.Duration
	refresh    time.Duration
	minBackoff time.Duration
	maxBackoff time.Duration

	cur atomic.Pointer[index] // nil until the first load

	mu        sync.Mutex // guards the fields below
	redisOK   bool
	unusable  bool
	warned    bool // the current outage has been logged
	lastErr   string
	loadedAt  time.Time
	lastSkips []string // ids of the unreadable entries last logged
}

// NewTable returns a table that loads from src once Run is called.
func NewTable(src Source, cfg config.Subscriptions, log *zap.Logger) *Table {
	t := &Table{
		src:        src,
		log:        log,
		poll:       cfg.PollInterval,
		refresh:    cfg.RefreshInterval,
		minBackoff: defaultMinBackoff,
		maxBackoff: defaultMaxBackoff,
	}
	if t.poll <= 0 {
		t.poll = defaultPollInterval
	}
	if t.refresh <= 0 {
		t.refresh = defaultRefreshInterval
	}
	return t
}

// index is an immutable, matchable copy of the table.
type index struct {
	version int64
	epoch   string
	size    int
	skipped int
	// byKey holds the enabled subscriptions per tenant and event type.
	byKey map[indexKey][]*Subscription
	// byID holds every subscription, enabled or not.
	byID map[string]*Subscription
}

type indexKey struct {
	tenant string
	typ    event.Type
}

func newIndex(snap Snapshot) *index {
	idx := &index{
		version: snap.Version,
		epoch:   snap.Epoch,
		size:    len(snap.Subscriptions),
		skipped: len(snap.Skipped),
		byKey:   make(map[indexKey][]*Subscription),
		byID:    make(map[string]*Subscription, len(snap.Subscriptions)),
	}
	for i := range snap.Subscriptions {
		s := &snap.Subscriptions[i]
		idx.byID[s.ID] = s
		if !s.Enabled {
			continue
		}
		for i, typ := range s.EventTypes {
			if slices.Contains(s.EventTypes[:i], typ) {
				continue // a hand-written duplicate must not deliver twice
			}
			k := indexKey{s.TenantID, typ}
			idx.byKey[k] = append(idx.byKey[k], s)
		}
	}
	return idx
}

// Match returns the subscriptions ev must be delivered to. The result and
// the subscriptions are shared with the table: read-only. When no campaign
// filter excludes anything, matching allocates nothing. Before the first
// load nothing matches.
func (t *Table) Match(ev event.Event) []*Subscription {
	idx := t.cur.Load()
	if idx == nil {
		return nil
	}
	all := idx.byKey[indexKey{ev.TenantID, ev.Type}]
	for i, s := range all {
		if len(s.CampaignIDs) == 0 || slices.Contains(s.CampaignIDs, ev.CampaignID) {
			continue
		}
		// A campaign filter excludes s: copy the rest.
		out := append(make([]*Subscription, 0, len(all)-1), all[:i]...)
		for _, s := range all[i+1:] {
			if len(s.CampaignIDs) == 0 || slices.Contains(s.CampaignIDs, ev.CampaignID) {
				out = append(out, s)
			}
		}
		return out
	}
	return all
}

// Get returns the subscription with id as the table has it now (read-only),
// enabled or not.
func (t *Table) Get(id string) (*Subscription, bool) {
	idx := t.cur.Load()
	if idx == nil {
		return nil, false
	}
	s, ok := idx.byID[id]
	return s, ok
}

// Ready reports whether the first load has succeeded.
func (t *Table) Ready() bool { return t.cur.Load() != nil }

// Status returns the table's current state.
func (t *Table) Status() Status {
	t.mu.Lock()
	st := Status{RedisOK: t.redisOK, Unusable: t.unusable, LastError: t.lastErr, LoadedAt: t.loadedAt}
	t.mu.Unlock()
	if idx := t.cur.Load(); idx != nil {
		st.Loaded, st.Size, st.Skipped, st.Version = true, idx.size, idx.skipped, idx.version
	}
	return st
}

// Run loads the table, retrying until it succeeds, then reloads it on every
// change notification, whenever a poll sees a new version and every refresh
// interval. Redis errors never stop it: the last good table keeps being
// served. It returns nil once ctx is done and its goroutines have stopped.
func (t *Table) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	kick := make(chan struct{}, 1)
	wg.Go(func() { t.watch(ctx, kick) })

	backoff := t.minBackoff
	for !t.reload(ctx) {
		if !t.sleep(ctx, backoff, kick) {
			return nil
		}
		backoff = min(2*backoff, t.maxBackoff)
	}

	poll := time.NewTicker(t.poll)
	defer poll.Stop()
	refresh := time.NewTicker(t.refresh)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
			t.reload(ctx)
		case <-refresh.C:
			t.reload(ctx)
		case <-poll.C:
			v, err := t.src.Version(ctx)
			if err != nil {
				t.failed(ctx, err)
				continue
			}
			if v != t.cur.Load().version {
				t.reload(ctx)
			} else {
				t.succeeded()
			}
		}
	}
}

// sleep waits d, or less when kicked; it returns false when ctx is done.
func (t *Table) sleep(ctx context.Context, d time.Duration, kick <-chan struct{}) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-kick:
	case <-timer.C:
	}
	return true
}

// watch keeps a change subscription open, resubscribing with a backoff. Its
// failures are logged at debug level only: polling covers for it, and the
// poller reports Redis outages.
func (t *Table) watch(ctx context.Context, kick chan<- struct{}) {
	notify := func() {
		select {
		case kick <- struct{}{}:
		default: // a reload is already pending
		}
	}
	backoff := t.minBackoff
	for {
		start := time.Now()
		err := t.src.WatchChanges(ctx, notify)
		if ctx.Err() != nil {
			return
		}
		t.log.Debug("subscription change notifications interrupted; polling continues", zap.Error(err))
		if time.Since(start) > t.maxBackoff {
			backoff = t.minBackoff
		}
		if !t.sleep(ctx, backoff, nil) {
			return
		}
		backoff = min(2*backoff, t.maxBackoff)
	}
}

// reload loads the table and swaps it in; it reports whether it succeeded.
func (t *Table) reload(ctx context.Context) bool {
	snap, err := t.src.Load(ctx)
	if err != nil {
		t.failed(ctx, err)
		return false
	}
	if cur := t.cur.Load(); cur != nil && cur.epoch != "" && snap.Epoch == "" {
		// Redis answers but has lost the table (restarted empty, flushed):
		// an empty table taken for the truth would commit events
		// undelivered. Keep delivering from the cached one until a write
		// starts a new epoch (an apply of the backup).
		t.failed(ctx, ErrTableLost)
		return false
	}
	idx := newIndex(snap)
	prev := t.cur.Swap(idx)
	t.succeeded()

	t.mu.Lock()
	t.loadedAt = time.Now()
	skips := make([]string, len(snap.Skipped))
	for i, s := range snap.Skipped {
		skips[i] = s.ID
	}
	newSkips := !slices.Equal(skips, t.lastSkips)
	t.lastSkips = skips
	t.mu.Unlock()

	if newSkips {
		for _, s := range snap.Skipped {
			t.log.Warn("subscription entry in Redis is unreadable; leaving it out",
				zap.String("subscription_id", s.ID), zap.Error(s.Err))
		}
	}
	switch {
	case prev == nil:
		t.log.Info("subscription table loaded",
			zap.Int64("version", idx.version), zap.Int("subscriptions", idx.size), zap.Int("skipped", idx.skipped))
	case prev.version != idx.version:
		t.log.Info("subscription table reloaded",
			zap.Int64("version", idx.version), zap.Int64("previous_version", prev.version),
			zap.Int("subscriptions", idx.size), zap.Int("skipped", idx.skipped))
	}
	return true
}

// failed records a Redis error, logging only the first of an outage.
func (t *Table) failed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // shutting down, not an outage
	}
	t.mu.Lock()
	t.redisOK = false
	var refused *config.KeyError // Redis answered, refusing a setting (redis.db)
	t.unusable = errors.Is(err, ErrTableLost) || errors.As(err, new(*SecretError)) || errors.As(err, &refused)
	t.lastErr = err.Error()
	first := !t.warned
	t.warned = true
	t.mu.Unlock()
	if !first {
		return
	}
	idx := t.cur.Load()
	var se *SecretError
	if errors.As(err, &se) {
		// Redis answered: the table is there but sealed with a key this
		// process lacks. Neither an outage nor a table in clear.
		fields := []zap.Field{zap.Error(err)}
		if se.KeyID != "" {
			fields = append(fields, zap.String("missing_key_id", se.KeyID))
		}
		msg := "the subscription table in Redis cannot be opened with the configured encryption keys " +
			"(subscriptions.encryption_key, subscriptions.previous_encryption_keys)"
		if se.KeyID != "" {
			msg += ": key " + se.KeyID + " is missing"
		}
		if idx != nil {
			t.log.Warn(msg+"; serving the last good table until it can be opened",
				append(fields, zap.Int64("version", idx.version), zap.Int("subscriptions", idx.size))...)
		} else {
			t.log.Warn(msg+"; subscription table not loaded, retrying", fields...)
		}
		return
	}
	if refused != nil {
		msg := "Redis answers but refuses " + refused.Key
		if idx != nil {
			t.log.Warn(msg+"; serving the last good table until it is fixed", zap.Error(err))
		} else {
			t.log.Warn(msg+"; subscription table not loaded, retrying", zap.Error(err))
		}
		return
	}
	if idx != nil {
		t.log.Warn("cannot refresh the subscription table from Redis; serving the last good table until it recovers",
			zap.Error(err), zap.Int64("version", idx.version), zap.Int("subscriptions", idx.size))
	} else {
		t.log.Warn("Redis unavailable; subscription table not loaded yet, retrying", zap.Error(err))
	}
}

// succeeded records a successful Redis call, logging the end of an outage.
func (t *Table) succeeded() {
	t.mu.Lock()
	t.redisOK = true
	wasUnusable := t.unusable
	t.unusable = false
	t.lastErr = ""
	recovered := t.warned
	t.warned = false
	t.mu.Unlock()
	switch {
	case recovered && wasUnusable:
		t.log.Info("the subscription table in Redis can be used again; it is being kept fresh")
	case recovered:
		t.log.Info("Redis reachable again; subscription table is being kept fresh")
	}
}
