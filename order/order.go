// Package order keeps the deliveries of one (subscription, key) in order
// while some of them wait in the deferral topics.
//
// A delivery the endpoint cannot take now leaves its source partition
// through a deferral topic, and may hop between the tiers' topics before it
// goes out, so topic order says nothing about the order of two deliveries.
// Order is kept by a chain instead: the members of a (subscription, key)'s
// chain are the source offsets of its waiting deliveries (a key lives in
// one source partition, so its offsets order its events), and each member
// carries, in its deferral record, its prev: the member before it. A member
// may go out once its prev is settled (delivered, dead-lettered, or given
// up); see Ready.
//
// # Who calls what
//
//   - The source consumer, deferring deliveries of a (subscription, key),
//     calls Join with their offsets and writes each one's prev into its
//     deferral record. While a chain is open every later delivery of that
//     (subscription, key) joins it too, whether its endpoint could take it
//     or not.
//   - Whoever settles a member (the deferral consumer, or the source
//     consumer for a head it sent at once) calls Settle with its offset.
//   - Whoever defers a chain's head (the member free to go: it was tried and
//     its endpoint could not take it, or it failed and will be retried)
//     calls Booked with when it is due, so the members behind it wait until
//     then rather than ask every second.
//   - The deferral consumer, holding a member, calls Get and Ready.
//   - A new owner of a source partition calls Scan to learn its open chains.
//
// # Redis layout
//
// One HASH per source partition, <prefix>chain:<topic>:<partition>; its
// field is Field(subscription id, Kafka key) and its value is the chain as
// "settled last start startPrev" in decimal; beside it, in the field "\x01"
// + field, its HeadDue in Unix milliseconds. A chain is deleted, both
// fields, when its last member is settled, so the hash holds only open
// chains. Join and
// Settle are one Lua script each, on one key, so they are atomic and work in
// Redis Cluster (the project's prefix carries a {hash tag}; these scripts
// would not need one).
//
// Offsets are handled as Lua numbers (doubles) in the scripts, exact below
// 2^53; Join and Settle refuse larger ones (Kafka offsets stay far below).
//
// # Re-join
//
// A Join whose first offset is not after the chain's last is a re-join (a
// source consumer that crashed after joining and read the batch again). It
// changes nothing, and is accepted when its first and last offsets are
// those of one of the chain's recent batches (the latest, Start and Last,
// or one of the few dozen before it, kept beside the chain): it then
// returns the prevs that batch was given, its first's prev then each
// offset's predecessor in the batch. A re-join of offsets the chain has
// settled already fails with ErrSettled (nothing is left to do for them);
// anything else fails with ErrRejoin. The store keeps only the ends of a
// batch, so a re-join that drops or adds a member between them is not
// noticed; re-reading one partition's records yields the same batch.
//
// A source consumer joins one offset at a time, so after a crash it
// re-joins, one by one, every member it had joined and not committed; when
// only the latest batch was known, the earlier ones failed, went to the
// tiers without their place and overtook the members before them (found by
// the SIGKILL fault test with throttled and paused partners).
package order

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Partition names a source partition.
type Partition struct {
	Topic     string
	Partition int
}

// Chain is an open chain of one (subscription, key).
type Chain struct {
	Settled   int64 // every member ≤ Settled is done
	Last      int64 // the highest member
	Start     int64 // the first member of the latest Join
	StartPrev int64 // its prev
	// HeadDue is when the chain's head (the member free to go) was last
	// booked to come back, as Booked recorded it; zero when none was. A
	// member that finds its prev unsettled need not ask again before it.
	HeadDue time.Time
}

// Field returns the chain's hash field for a subscription and a Kafka key.
// Subscription ids hold no NUL, so the pair can be told apart.
func Field(subscriptionID string, key []byte) string {
	return subscriptionID + "\x00" + string(key)
}

// dueMark starts the hash field of a chain's HeadDue: dueMark + the
// chain's field. No subscription id holds it, so no chain's field starts
// with it.
const dueMark = "\x01"

func dueField(field string) string { return dueMark + field }

// Gate is what the deferral consumer does with a member it holds.
type Gate int

const (
	// GateWait: its prev is not settled yet.
	GateWait Gate = iota
	// GateGo: deliver it.
	GateGo
	// GateDrop: it is settled already; this is a duplicate.
	GateDrop
)

func (g Gate) String() string {
	switch g {
	case GateWait:
		return "wait"
	case GateGo:
		return "go"
	case GateDrop:
		return "drop"
	}
	return "Gate(" + strconv.Itoa(int(g)) + ")"
}

// Ready says what to do with member o, whose prev is prev, given its chain
// as Get returned it (ok false: absent). An absent chain was closed or
// forgotten by Redis: the member goes, which risks a duplicate, never a
// loss.
func Ready(c Chain, ok bool, o, prev int64) Gate {
	switch {
	case !ok:
		return GateGo
	case o <= c.Settled:
		return GateDrop
	case prev <= c.Settled:
		return GateGo
	}
	return GateWait
}

// ErrRejoin is returned by Join for offsets not after the chain's last that
// are not a repeat of one of its recent batches.
var ErrRejoin = errors.New("offsets not after the chain's last and not one of its recent batches")

// ErrSettled is returned by Join for offsets the chain has settled already:
// a delivery read again after a crash that was delivered or dead-lettered
// meanwhile. There is nothing more to do for it.
var ErrSettled = errors.New("offsets settled already")

// maxOffset is the highest offset the Lua scripts handle exactly.
const maxOffset = 1<<53 - 1

func checkOffset(o int64) error {
	if o < 0 || o > maxOffset {
		return fmt.Errorf("offset %d out of range [0, 2^53)", o)
	}
	return nil
}

func checkOffsets(offsets []int64) error {
	if len(offsets) == 0 {
		return errors.New("no offsets")
	}
	for i, o := range offsets {
		if err := checkOffset(o); err != nil {
			return err
		}
		if i > 0 && o <= offsets[i-1] {
			return fmt.Errorf("offsets not ascending: %d after %d", o, offsets[i-1])
		}
	}
	return nil
}

// join is the rule of Join on a chain c (ok: present) whose recent joins
// are recent: the chain after it, whether it must be written, and the
// prevs. offsets are checked.
func join(c Chain, ok bool, recent string, offsets []int64) (next Chain, write bool, prevs []int64, err error) {
	first, last := offsets[0], offsets[len(offsets)-1]
	prev0 := first - 1
	switch {
	case !ok:
		c = Chain{Settled: first - 1}
	case first > c.Last:
		prev0 = c.Last
	case first == c.Start && last == c.Last:
		return c, false, prevsOf(c.StartPrev, offsets), nil
	case last <= c.Settled:
		return c, false, nil, fmt.Errorf("%w: joining %d..%d, chain %s", ErrSettled, first, last, encode(c))
	default:
		if p, found := recentPrev(recent, first, last); found {
			return c, false, prevsOf(p, offsets), nil
		}
		return c, false, nil, fmt.Errorf("%w: joining %d..%d, chain %s", ErrRejoin, first, last, encode(c))
	}
	c.Last, c.Start, c.StartPrev = last, first, prev0
	return c, true, prevsOf(prev0, offsets), nil
}

// The recent joins of a chain, kept beside it in the field recentMark +
// its field, so that a re-join of any of them, not only the latest, gets
// the prevs it was given: a source consumer that crashed re-reads every
// offset it had not committed, and joined them one at a time. They are
// "first:last:prev0" per Join, oldest first, separated by spaces, at most
// maxRecent bytes (the oldest dropped first): some 60 joins, more than a
// key has uncommitted at once in practice. A re-join older than that fails
// with ErrRejoin, as before.
const (
	recentMark = "\x02"
	maxRecent  = 1024
)

func recentField(field string) string { return recentMark + field }

func recentEntry(first, last, prev0 int64) string {
	return strconv.FormatInt(first, 10) + ":" + strconv.FormatInt(last, 10) + ":" + strconv.FormatInt(prev0, 10)
}

// appendRecent adds entry to recent and drops the oldest entries beyond
// maxRecent bytes, exactly as joinScript does.
func appendRecent(recent, entry string) string {
	if recent == "" {
		recent = entry
	} else {
		recent += " " + entry
	}
	for len(recent) > maxRecent {
		i := strings.IndexByte(recent, ' ')
		if i < 0 {
			break
		}
		recent = recent[i+1:]
	}
	return recent
}

// recentPrev finds the prev0 of the join of first..last in recent.
func recentPrev(recent string, first, last int64) (int64, bool) {
	want := strconv.FormatInt(first, 10) + ":" + strconv.FormatInt(last, 10) + ":"
	for e := range strings.FieldsSeq(recent) {
		if p, ok := strings.CutPrefix(e, want); ok {
			if prev, err := strconv.ParseInt(p, 10, 64); err == nil {
				return prev, true
			}
		}
	}
	return 0, false
}

func prevsOf(prev0 int64, offsets []int64) []int64 {
	prevs := make([]int64, len(offsets))
	prevs[0] = prev0
	copy(prevs[1:], offsets)
	return prevs
}

// settle is the rule of Settle: the chain after settling o, and whether it
// is closed (to be deleted).
func settle(c Chain, o int64) (next Chain, closed bool) {
	c.Settled = max(c.Settled, o)
	return c, c.Settled >= c.Last
}

func encode(c Chain) string {
	return fmt.Sprintf("%d %d %d %d", c.Settled, c.Last, c.Start, c.StartPrev)
}

func decode(v string) (Chain, error) {
	f := strings.Fields(v)
	if len(f) != 4 {
		return Chain{}, fmt.Errorf("malformed chain %q", v)
	}
	var n [4]int64
	for i, s := range f {
		x, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Chain{}, fmt.Errorf("malformed chain %q", v)
		}
		n[i] = x
	}
	return Chain{Settled: n[0], Last: n[1], Start: n[2], StartPrev: n[3]}, nil
}
