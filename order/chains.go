package order

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Chains is the chain store in Redis. It is safe for concurrent use, also
// across processes.
type Chains struct {
	rdb       redis.UniversalClient
	prefix    string
	scanCount int64 // HSCAN COUNT hint
}

// NewChains returns the store whose keys start with keyPrefix
// (redis.key_prefix).
func NewChains(rdb redis.UniversalClient, keyPrefix string) *Chains {
	return &Chains{rdb: rdb, prefix: keyPrefix, scanCount: 1000}
}

func (s *Chains) key(p Partition) string {
	return s.prefix + "chain:" + p.Topic + ":" + strconv.Itoa(p.Partition)
}

// joinScript applies a Join and returns the chain as it was before (nil when
// absent) and its recent joins (nil when none); the caller derives the
// prevs from them by the same rule (join). It writes when the chain is
// absent or the batch starts after its last, and then adds the batch to the
// recent joins as appendRecent does; a re-join writes nothing. Offsets
// travel as decimal text and are only compared in Lua, never formatted, so
// they are written back as given.
//
// KEYS[1] the partition's hash; ARGV: field, first, last, first-1, the field
// of its recent joins, maxRecent.
var joinScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
local first, last = ARGV[2], ARGV[3]
local function remember(prev0, recent)
  local e = first .. ':' .. last .. ':' .. prev0
  if recent then e = recent .. ' ' .. e end
  local limit = tonumber(ARGV[6])
  while #e > limit do
    local i = string.find(e, ' ', 1, true)
    if not i then break end
    e = string.sub(e, i + 1)
  end
  redis.call('HSET', KEYS[1], ARGV[5], e)
end
if not v then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4] .. ' ' .. last .. ' ' .. first .. ' ' .. ARGV[4])
  remember(ARGV[4], nil)
  return {false, false}
end
local settled, old = string.match(v, '^(%S+) (%S+) %S+ %S+$')
if not settled then
  return redis.error_reply('malformed chain ' .. v)
end
local recent = redis.call('HGET', KEYS[1], ARGV[5])
if tonumber(first) > tonumber(old) then
  redis.call('HSET', KEYS[1], ARGV[1], settled .. ' ' .. last .. ' ' .. first .. ' ' .. old)
  remember(old, recent)
end
return {v, recent}
`)

// settleScript raises settled to ARGV[2] and deletes the chain when that
// reaches its last. An absent chain is left absent.
//
// KEYS[1] the partition's hash; ARGV: field, offset, the fields of its
// HeadDue and of its recent joins.
var settleScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then
  return 0
end
local settled, last, rest = string.match(v, '^(%S+) (%S+) (%S+ %S+)$')
if not settled then
  return redis.error_reply('malformed chain ' .. v)
end
local o = ARGV[2]
if tonumber(o) >= tonumber(last) then
  redis.call('HDEL', KEYS[1], ARGV[1], ARGV[3], ARGV[4])
  return 1
end
if tonumber(o) > tonumber(settled) then
  redis.call('HSET', KEYS[1], ARGV[1], o .. ' ' .. last .. ' ' .. rest)
end
return 0
`)

// Join adds offsets (ascending, after the chain's last) to the chain of
// field and returns each one's prev. A chain that is absent is created with
// its head's prev settled, so the head may go at once. See the package doc
// for a re-join.
func (s *Chains) Join(ctx context.Context, p Partition, field string, offsets []int64) ([]int64, error) {
	if err := checkOffsets(offsets); err != nil {
		return nil, fmt.Errorf("join chain %s %q: %w", s.key(p), field, err)
	}
	first, last := offsets[0], offsets[len(offsets)-1]
	res, err := joinScript.Run(ctx, s.rdb, []string{s.key(p)}, field,
		strconv.FormatInt(first, 10), strconv.FormatInt(last, 10), strconv.FormatInt(first-1, 10),
		recentField(field), maxRecent).Slice()
	if err != nil {
		return nil, fmt.Errorf("join chain %s %q: %w", s.key(p), field, err)
	}
	old, ok := Chain{}, false
	if v, isString := res[0].(string); isString {
		if old, err = decode(v); err != nil {
			return nil, fmt.Errorf("join chain %s %q: %w", s.key(p), field, err)
		}
		ok = true
	}
	recent, _ := res[1].(string)
	_, _, prevs, err := join(old, ok, recent, offsets)
	if err != nil {
		return nil, fmt.Errorf("join chain %s %q: %w", s.key(p), field, err)
	}
	return prevs, nil
}

// Settle records that member o of field's chain is done (and so is every
// member before it), closing the chain when o is its last. Settling an
// absent chain, or an offset at or below its settled, changes nothing.
func (s *Chains) Settle(ctx context.Context, p Partition, field string, o int64) error {
	if err := checkOffset(o); err != nil {
		return fmt.Errorf("settle chain %s %q: %w", s.key(p), field, err)
	}
	if err := settleScript.Run(ctx, s.rdb, []string{s.key(p)}, field, strconv.FormatInt(o, 10), dueField(field), recentField(field)).Err(); err != nil {
		return fmt.Errorf("settle chain %s %q at %d: %w", s.key(p), field, o, err)
	}
	return nil
}

// bookedScript records the HeadDue of an open chain; an absent (closed)
// chain is left absent.
//
// KEYS[1] the partition's hash; ARGV: field, the field of its HeadDue, Unix ms.
var bookedScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
return 0
`)

// Booked records that field's chain head is due at due (HeadDue).
func (s *Chains) Booked(ctx context.Context, p Partition, field string, due time.Time) error {
	if err := bookedScript.Run(ctx, s.rdb, []string{s.key(p)}, field, dueField(field), strconv.FormatInt(due.UnixMilli(), 10)).Err(); err != nil {
		return fmt.Errorf("book chain head %s %q: %w", s.key(p), field, err)
	}
	return nil
}

// Get returns field's chain; ok is false when it is absent (closed).
func (s *Chains) Get(ctx context.Context, p Partition, field string) (Chain, bool, error) {
	vs, err := s.rdb.HMGet(ctx, s.key(p), field, dueField(field)).Result()
	if err != nil {
		return Chain{}, false, fmt.Errorf("get chain %s %q: %w", s.key(p), field, err)
	}
	v, ok := vs[0].(string)
	if !ok {
		return Chain{}, false, nil
	}
	c, err := decode(v)
	if err != nil {
		return Chain{}, false, fmt.Errorf("get chain %s %q: %w", s.key(p), field, err)
	}
	if due, ok := vs[1].(string); ok {
		if ms, err := strconv.ParseInt(due, 10, 64); err == nil {
			c.HeadDue = time.UnixMilli(ms)
		}
	}
	return c, true, nil
}

// Scan returns every open chain of partition p by field, reading the hash
// a page at a time.
func (s *Chains) Scan(ctx context.Context, p Partition) (map[string]Chain, error) {
	chains := map[string]Chain{}
	var cursor uint64
	for {
		kv, next, err := s.rdb.HScan(ctx, s.key(p), cursor, "", s.scanCount).Result()
		if err != nil {
			return nil, fmt.Errorf("scan chains %s: %w", s.key(p), err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if strings.HasPrefix(kv[i], dueMark) || strings.HasPrefix(kv[i], recentMark) {
				continue // a HeadDue or recent joins, beside a chain
			}
			c, err := decode(kv[i+1])
			if err != nil {
				return nil, fmt.Errorf("scan chains %s: field %q: %w", s.key(p), kv[i], err)
			}
			chains[kv[i]] = c
		}
		if cursor = next; cursor == 0 {
			return chains, nil
		}
	}
}
