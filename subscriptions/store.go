// Package subscriptions owns the subscription table: the model and its
// validation, the table in Redis (Store), the in-process copy the worker
// matches events against (Table), and the YAML file `subscriptions apply`
// reads.
//
// # Redis key layout
//
// Every key and channel starts with redis.key_prefix (default "webhookd:"):
//
//   - <prefix>subscriptions: a HASH, subscription id → the subscription as
//     JSON (id, tenant_id, url, event_types, api_key, campaign_ids, enabled,
//     created_at, updated_at). API keys are stored in clear: protect Redis
//     with ACLs and TLS.
//   - <prefix>subscriptions:version: an integer, INCRed by every write.
//   - <prefix>subscriptions:changed: a pub/sub channel; every write PUBLISHes
//     the new version on it.
//   - <prefix>subscriptions:epoch: a random id, set by the first write to an
//     empty Redis. If it disappears (Redis restarted without its data, or
//     was flushed), running pods keep delivering from their cached table
//     instead of taking the empty one for the truth, until a write (say, an
//     apply of the backup) starts a new epoch.
//
// In Redis Cluster mode the prefix must hold a hash tag (such as
// "{webhookd}:"; config.Validate refuses one without), so that the keys of
// one transaction share a hash slot.
//
// Every write is one optimistic transaction: WATCH the hash and the version,
// read, then MULTI HSET/HDEL + INCR version + PUBLISH, EXEC; a concurrent
// writer makes EXEC fail and the write is retried on fresh data. A write that
// changes nothing (an apply of the same file, enabling an enabled
// subscription) writes nothing and does not bump the version. Each pod
// reloads its copy on every message, when a poll of the version key
// (subscriptions.poll_interval) sees a new value, and every
// subscriptions.refresh_interval regardless.
package subscriptions

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/egress"
)

// Errors callers can test with errors.Is.
var (
	ErrNotFound = errors.New("subscription not found")
	ErrExists   = errors.New("subscription already exists")
)

// maxAttempts bounds the optimistic retries of one write.
const maxAttempts = 100

// NewRedisClient returns a client for the Redis that holds the table: one
// server, Sentinel or Cluster as cfg.Mode() says, with ACL credentials and
// TLS when configured. It fails only on unreadable TLS files; it does not
// connect.
func NewRedisClient(cfg config.Redis) (redis.UniversalClient, error) {
	tlsCfg, err := cfg.TLS.Config("redis.tls")
	if err != nil {
		return nil, fmt.Errorf("redis connection: %w", err)
	}
	opts := &redis.UniversalOptions{
		Addrs:       cfg.Addresses(),
		MasterName:  cfg.MasterName,
		Username:    cfg.Username,
		Password:    cfg.Password,
		DB:          cfg.DB,
		DialTimeout: cfg.DialTimeout,
		TLSConfig:   tlsCfg,
	}
	// Credentials are the data nodes'; the Sentinels are dialled without
	// any (and with the same TLS settings).
	opts.IsClusterMode = cfg.Mode() == config.RedisCluster
	return redis.NewUniversalClient(opts), nil
}

// Store reads and writes the subscription table in Redis. It is safe for
// concurrent use, also across processes.
type Store struct {
	egress       *egress.Policy
	sealer       *Sealer
	maxPerTenant int

	rdb        redis.UniversalClient
	hashKey    string
	versionKey string
	epochKey   string
	channel    string
	now        func() time.Time
}

// StoreOption sets one of the store's write rules.
type StoreOption func(*Store)

// WithEgress makes every write refuse subscription URLs the egress policy
// refuses (not http(s), https required, a literal address in a blocked
// range).
func WithEgress(p egress.Policy) StoreOption { return func(s *Store) { s.egress = &p } }

// WithSealer encrypts API keys and signing secrets at rest.
func WithSealer(sl *Sealer) StoreOption { return func(s *Store) { s.sealer = sl } }

// WithMaxPerTenant bounds the subscriptions one tenant may have (0: no bound).
func WithMaxPerTenant(n int) StoreOption { return func(s *Store) { s.maxPerTenant = n } }

// ConfigOptions are the deployment's store rules: its egress policy, its
// encryption keys and its per-tenant limit.
func ConfigOptions(cfg config.Config) ([]StoreOption, error) {
	opts := []StoreOption{WithEgress(cfg.Delivery.Egress()), WithMaxPerTenant(cfg.Subscriptions.MaxPerTenant)}
	if cfg.Subscriptions.EncryptionKey != "" {
		sl, err := NewSealer(cfg.Subscriptions.EncryptionKey, cfg.Subscriptions.PreviousEncryptionKeys)
		if err != nil {
			return nil, fmt.Errorf("subscriptions.encryption_key: %w", err)
		}
		opts = append(opts, WithSealer(sl))
	}
	return opts, nil
}

// OpenStore connects to cfg's Redis and returns the store with the
// deployment's rules (ConfigOptions), and a function that closes its client.
func OpenStore(cfg config.Config) (*Store, func() error, error) {
	opts, err := ConfigOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := NewRedisClient(cfg.Redis)
	if err != nil {
		return nil, nil, err
	}
	return NewStore(rdb, cfg.Redis.KeyPrefix, opts...), rdb.Close, nil
}

// Redis is the store's client, for the other keys webhookd keeps beside
// the table (the delivery chains of package order).
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// NewStore returns a store whose keys start with keyPrefix. Without options
// it applies only the subscription's own validation and stores secrets in
// clear; production callers pass ConfigOptions.
func NewStore(rdb redis.UniversalClient, keyPrefix string, opts ...StoreOption) *Store {
	s := &Store{
		rdb:        rdb,
		hashKey:    keyPrefix + "subscriptions",
		versionKey: keyPrefix + "subscriptions:version",
		epochKey:   keyPrefix + "subscriptions:epoch",
		channel:    keyPrefix + "subscriptions:changed",
		now:        func() time.Time { return time.Now().UTC().Truncate(time.Millisecond) },
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// validate checks sub and the deployment's rules for it.
func (s *Store) validate(sub Subscription) error {
	if err := sub.Validate(); err != nil {
		return err
	}
	if s.egress != nil {
		if err := s.egress.CheckURL(sub.URL); err != nil {
			return &FieldError{Field: "url", Reason: err.Error()}
		}
	}
	return nil
}

// encode renders sub as stored: JSON, secrets sealed when a key is set.
func (s *Store) encode(sub Subscription) ([]byte, error) {
	if s.sealer != nil {
		for _, f := range secretFields(&sub) {
			*f.v = s.sealer.seal(sub.ID, f.name, sub.URL, *f.v)
		}
	}
	raw, err := json.Marshal(sub)
	if err != nil {
		return nil, fmt.Errorf("encode subscription %q: %w", sub.ID, err)
	}
	return raw, nil
}

// decode reads a stored entry. An entry that is not a subscription is a
// *CorruptError; a secret that cannot be decrypted a *SecretError.
func (s *Store) decode(id, raw string) (Subscription, error) {
	sub, err := decode(id, raw)
	if err != nil {
		return Subscription{}, err
	}
	for _, f := range secretFields(&sub) {
		if *f.v, err = s.sealer.open(id, f.name, sub.URL, *f.v); err != nil {
			return Subscription{}, err
		}
	}
	return sub, nil
}

// CorruptError is a hash entry that does not decode into a subscription with
// its own id. Load skips such entries and reports them.
type CorruptError struct {
	ID  string
	Err error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("subscription %q: stored entry is unreadable (delete it or apply a file that defines it): %v", e.ID, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

func decode(id, raw string) (Subscription, error) {
	var s Subscription
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Subscription{}, &CorruptError{ID: id, Err: err}
	}
	if s.ID != id {
		return Subscription{}, &CorruptError{ID: id, Err: fmt.Errorf("its JSON has id %q", s.ID)}
	}
	return s, nil
}

// Snapshot is the whole table as read at one version.
type Snapshot struct {
	// Subscriptions are sorted by tenant, then creation time, then id.
	Subscriptions []Subscription
	Version       int64
	// Epoch identifies the table's lifetime in Redis; empty when the epoch
	// key is missing (an empty or wiped Redis).
	Epoch string
	// Skipped are the entries that could not be decoded.
	Skipped []*CorruptError
}

// Load reads the whole table and its version in one MULTI/EXEC. Unreadable
// entries are left out and listed in Skipped: one bad entry must not stop
// every pod from loading the others.
func (s *Store) Load(ctx context.Context) (Snapshot, error) {
	var all *redis.MapStringStringCmd
	var ver, epoch *redis.StringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, s.hashKey)
		ver = p.Get(ctx, s.versionKey)
		epoch = p.Get(ctx, s.epochKey)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Snapshot{}, fmt.Errorf("load subscriptions: %w", s.explain(err, all, ver, epoch))
	}
	entries, err := all.Result()
	if err != nil {
		return Snapshot{}, fmt.Errorf("load subscriptions: %w", err)
	}
	version, err := parseVersion(ver)
	if err != nil {
		return Snapshot{}, fmt.Errorf("load subscriptions: %w", err)
	}
	snap := Snapshot{Version: version, Epoch: epoch.Val(), Subscriptions: make([]Subscription, 0, len(entries))}
	for id, raw := range entries {
		sub, err := s.decode(id, raw)
		var ce *CorruptError
		if errors.As(err, &ce) {
			snap.Skipped = append(snap.Skipped, ce)
			continue
		}
		if err != nil {
			// A secret that does not decrypt is a configuration error (a key
			// missing): delivering without it would be wrong, so nothing loads.
			return Snapshot{}, fmt.Errorf("load subscriptions: %w", err)
		}
		snap.Subscriptions = append(snap.Subscriptions, sub)
	}
	sortSubscriptions(snap.Subscriptions)
	slices.SortFunc(snap.Skipped, func(a, b *CorruptError) int { return cmp.Compare(a.ID, b.ID) })
	return snap, nil
}

func sortSubscriptions(subs []Subscription) {
	slices.SortFunc(subs, func(a, b Subscription) int {
		return cmp.Or(cmp.Compare(a.TenantID, b.TenantID), a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
}

// Version returns the table's version: 0 before the first write.
func (s *Store) Version(ctx context.Context) (int64, error) {
	v, err := parseVersion(s.rdb.Get(ctx, s.versionKey))
	if err != nil {
		return 0, fmt.Errorf("read subscriptions version: %w", s.explain(err))
	}
	return v, nil
}

func parseVersion(cmd *redis.StringCmd) (int64, error) {
	v, err := cmd.Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("version key: %w", err)
	}
	return v, nil
}

// List returns the readable subscriptions of tenant ("" for all), sorted by
// tenant, then creation time, then id. Use Load to see unreadable entries.
func (s *Store) List(ctx context.Context, tenant string) ([]Subscription, error) {
	snap, err := s.Load(ctx)
	if err != nil {
		return nil, err
	}
	if tenant == "" {
		return snap.Subscriptions, nil
	}
	return slices.DeleteFunc(snap.Subscriptions, func(sub Subscription) bool { return sub.TenantID != tenant }), nil
}

// Get returns one subscription; the error wraps ErrNotFound when there is none.
func (s *Store) Get(ctx context.Context, id string) (Subscription, error) {
	raw, err := s.rdb.HGet(ctx, s.hashKey, id).Result()
	if errors.Is(err, redis.Nil) {
		return Subscription{}, fmt.Errorf("get subscription %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Subscription{}, fmt.Errorf("get subscription %q: %w", id, s.explain(err))
	}
	return s.decode(id, raw)
}

// Add stores a new subscription, with a fresh id when sub.ID is empty, and
// returns it as stored. Nothing is written when sub is invalid or its id is
// taken (the error wraps ErrExists).
func (s *Store) Add(ctx context.Context, sub Subscription) (Subscription, error) {
	if err := s.validate(sub); err != nil {
		return Subscription{}, fmt.Errorf("invalid subscription: %w", err)
	}
	sub = sub.clone()
	if sub.ID == "" {
		sub.ID = NewID()
	}
	sub.CreatedAt = s.now()
	sub.UpdatedAt = sub.CreatedAt
	err := s.commit(ctx, func(tx *redis.Tx) (mutation, error) {
		exists, err := tx.HExists(ctx, s.hashKey, sub.ID).Result()
		if err != nil {
			return mutation{}, err
		}
		if exists {
			return mutation{}, ErrExists
		}
		if err := s.checkTenantLimit(ctx, tx, sub.TenantID, sub.ID); err != nil {
			return mutation{}, err
		}
		return mutation{set: []Subscription{sub}}, nil
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("add subscription %q: %w", sub.ID, err)
	}
	return sub, nil
}

// Update applies change to the stored subscription and stores the result when
// it is valid and differs. The id and creation time cannot change; UpdatedAt
// is bumped. change may run more than once when writers race, so it must only
// modify its argument.
func (s *Store) Update(ctx context.Context, id string, change func(*Subscription) error) (Subscription, error) {
	var out Subscription
	err := s.commit(ctx, func(tx *redis.Tx) (mutation, error) {
		raw, err := tx.HGet(ctx, s.hashKey, id).Result()
		if errors.Is(err, redis.Nil) {
			return mutation{}, ErrNotFound
		}
		if err != nil {
			return mutation{}, err
		}
		old, err := s.decode(id, raw)
		if err != nil {
			return mutation{}, err
		}
		next := old.clone()
		if err := change(&next); err != nil {
			return mutation{}, err
		}
		next.ID, next.CreatedAt, next.UpdatedAt = old.ID, old.CreatedAt, old.UpdatedAt
		if err := s.validate(next); err != nil {
			return mutation{}, fmt.Errorf("invalid subscription: %w", err)
		}
		if sameContent(old, next) {
			out = old
			return mutation{}, nil
		}
		if next.TenantID != old.TenantID {
			if err := s.checkTenantLimit(ctx, tx, next.TenantID, next.ID); err != nil {
				return mutation{}, err
			}
		}
		next.UpdatedAt = s.now()
		out = next
		return mutation{set: []Subscription{next}}, nil
	})
	if err != nil {
		return Subscription{}, fmt.Errorf("update subscription %q: %w", id, err)
	}
	return out, nil
}

// Disable turns a subscription off; reason is for the caller's log (the
// delivery path disables a subscription whose endpoint answered 410 Gone).
// Disabling a disabled subscription writes nothing.
func (s *Store) Disable(ctx context.Context, id, reason string) error {
	_, err := s.Update(ctx, id, func(sub *Subscription) error {
		sub.Enabled = false
		return nil
	})
	if err != nil {
		return fmt.Errorf("disable %s (%s): %w", id, reason, err)
	}
	return nil
}

// Delete removes a subscription; the error wraps ErrNotFound when there is none.
func (s *Store) Delete(ctx context.Context, id string) error {
	err := s.commit(ctx, func(tx *redis.Tx) (mutation, error) {
		exists, err := tx.HExists(ctx, s.hashKey, id).Result()
		if err != nil {
			return mutation{}, err
		}
		if !exists {
			return mutation{}, ErrNotFound
		}
		return mutation{del: []string{id}}, nil
	})
	if err != nil {
		return fmt.Errorf("delete subscription %q: %w", id, err)
	}
	return nil
}

// ErrTenantLimit is returned when a write would give a tenant more than
// subscriptions.max_per_tenant subscriptions.
var ErrTenantLimit = errors.New("tenant has reached subscriptions.max_per_tenant")

// checkTenantLimit fails when tenant already has the maximum number of
// subscriptions other than id.
func (s *Store) checkTenantLimit(ctx context.Context, tx *redis.Tx, tenant, id string) error {
	if s.maxPerTenant <= 0 {
		return nil
	}
	all, err := tx.HGetAll(ctx, s.hashKey).Result()
	if err != nil {
		return err
	}
	n := 0
	for other, raw := range all {
		var t struct {
			TenantID string `json:"tenant_id"`
		}
		if other != id && json.Unmarshal([]byte(raw), &t) == nil && t.TenantID == tenant {
			n++
		}
	}
	if n >= s.maxPerTenant {
		return fmt.Errorf("%w (%d): tenant %q has %d", ErrTenantLimit, s.maxPerTenant, tenant, n)
	}
	return nil
}

// Reencrypt rewrites every entry whose secrets are not sealed with the
// current key (clear ones, or sealed with a previous key) and returns how
// many it rewrote. Run it after adding or rotating subscriptions.encryption_key;
// once it returns, previous keys can be removed.
func (s *Store) Reencrypt(ctx context.Context) (int, error) {
	if s.sealer == nil {
		return 0, errors.New("reencrypt: subscriptions.encryption_key is not set")
	}
	n := 0
	err := s.commit(ctx, func(tx *redis.Tx) (mutation, error) {
		n = 0
		all, err := tx.HGetAll(ctx, s.hashKey).Result()
		if err != nil {
			return mutation{}, err
		}
		var m mutation
		for id, raw := range all {
			plain, err := decode(id, raw)
			if err != nil {
				continue // corrupt entries are reported by Load; nothing to seal
			}
			stale := false
			for _, f := range secretFields(&plain) {
				if *f.v != "" && sealedWith(*f.v) != s.sealer.KeyID() {
					stale = true
				}
			}
			if !stale {
				continue
			}
			sub, err := s.decode(id, raw)
			if err != nil {
				return mutation{}, err
			}
			m.set = append(m.set, sub)
		}
		n = len(m.set)
		return m, nil
	})
	if err != nil {
		return 0, fmt.Errorf("reencrypt subscriptions: %w", err)
	}
	return n, nil
}

// mutation is what one write changes in the hash.
type mutation struct {
	set []Subscription
	del []string
}

// commit runs plan inside WATCH of the hash and version keys and writes its
// mutation, the version bump and the change message in one MULTI/EXEC. When
// another writer got in first, it runs plan again on fresh data.
func (s *Store) commit(ctx context.Context, plan func(tx *redis.Tx) (mutation, error)) error {
	pause := time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			m, err := plan(tx)
			if err != nil || (len(m.set) == 0 && len(m.del) == 0) {
				return err
			}
			version, err := parseVersion(tx.Get(ctx, s.versionKey))
			if err != nil {
				return err
			}
			fields := make([]any, 0, 2*len(m.set))
			for _, sub := range m.set {
				raw, err := s.encode(sub)
				if err != nil {
					return err
				}
				fields = append(fields, sub.ID, raw)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				if len(fields) > 0 {
					p.HSet(ctx, s.hashKey, fields...)
				}
				if len(m.del) > 0 {
					p.HDel(ctx, s.hashKey, m.del...)
				}
				p.Incr(ctx, s.versionKey)
				p.SetNX(ctx, s.epochKey, NewID(), 0)
				// The version is watched, so the INCR above yields version+1.
				p.Publish(ctx, s.channel, version+1)
				return nil
			})
			return err
		}, s.hashKey, s.versionKey)
		if !errors.Is(err, redis.TxFailedErr) {
			return s.explain(err)
		}
		if attempt == maxAttempts {
			return fmt.Errorf("other writers kept changing the table, gave up after %d attempts: %w", attempt, err)
		}
		t := time.NewTimer(rand.N(pause) + pause/2)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// clusterHint is what to configure when a Redis Cluster node is dialled as
// one server.
const clusterHint = "the server is a Redis Cluster node: set redis.cluster: true " +
	"(or list the cluster's nodes in redis.addrs) with a {hash tag} in redis.key_prefix"

// explain adds clusterHint to err when a Redis Cluster node answered a
// client that takes it for one server (redis.addr without redis.cluster,
// easily done with a cluster's configuration endpoint): the node redirects
// (MOVED, ASK) every key it does not serve, and a transaction holding such a
// key aborts saying only EXECABORT, the redirection being in its commands'
// errors (cmds). A cluster client follows redirections itself: its errors
// are left as they are.
//
// It also names redis.db when the server has no such database: go-redis
// selects it on every new connection, and the server's answer alone ("ERR
// DB index is out of range") does not say which setting to fix.
func (s *Store) explain(err error, cmds ...redis.Cmder) error {
	if err == nil {
		return nil
	}
	if strings.Contains(err.Error(), "DB index is out of range") {
		db := "redis.db"
		if c, ok := s.rdb.(*redis.Client); ok { // one server or Sentinel; a cluster has only database 0
			db = fmt.Sprint(c.Options().DB)
		}
		return &config.KeyError{Key: "redis.db", Err: fmt.Errorf(
			"the Redis server has no database %s (it has as many as its databases setting says, 16 by default: 0 to 15): %w", db, err)}
	}
	if _, cluster := s.rdb.(*redis.ClusterClient); cluster {
		return err
	}
	errs := []error{err}
	for _, c := range cmds {
		errs = append(errs, c.Err())
	}
	for _, e := range errs {
		if e == nil {
			continue
		}
		_, moved := redis.IsMovedError(e)
		_, ask := redis.IsAskError(e)
		switch {
		case !moved && !ask:
		case e == err:
			return fmt.Errorf("%w: %s", err, clusterHint)
		default:
			return fmt.Errorf("%w (%w): %s", err, e, clusterHint)
		}
	}
	return err
}

// WatchChanges calls notify once the change channel is subscribed (a change
// may have been missed before) and on every change message. It returns nil
// when ctx is done and an error when the subscription breaks; the caller
// decides when to call it again.
func (s *Store) WatchChanges(ctx context.Context, notify func()) error {
	ps := s.rdb.Subscribe(ctx, s.channel)
	defer ps.Close()
	// Receive does not return on cancellation; closing the PubSub unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("subscribe to %s: %w", s.channel, err)
		}
		switch msg.(type) {
		case *redis.Subscription, *redis.Message:
			notify()
		}
	}
}
