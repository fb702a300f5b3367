package order

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// store is what the contract tests drive: Chains and Memory alike.
type store interface {
	Join(ctx context.Context, p Partition, field string, offsets []int64) ([]int64, error)
	Settle(ctx context.Context, p Partition, field string, o int64) error
	Get(ctx context.Context, p Partition, field string) (Chain, bool, error)
	Scan(ctx context.Context, p Partition) (map[string]Chain, error)
	Booked(ctx context.Context, p Partition, field string, due time.Time) error
}

var (
	_ store = (*Chains)(nil)
	_ store = (*Memory)(nil)
)

// backend opens an empty store, or skips the test when its service is not
// configured. redis is set for the Redis ones.
type backend struct {
	name  string
	redis bool
	open  func(t *testing.T) store
}

var backends = []backend{
	{"memory", false, func(*testing.T) store { return NewMemory() }},
	{"miniredis", true, func(t *testing.T) store {
		mr := miniredis.RunT(t)
		return openChains(t, redis.NewClient(&redis.Options{Addr: mr.Addr()}), "webhookd:")
	}},
	{"redis", true, func(t *testing.T) store {
		addr := os.Getenv("WEBHOOKD_TEST_REDIS_ADDR")
		if addr == "" {
			t.Skip("real Redis not configured: set WEBHOOKD_TEST_REDIS_ADDR (source /work/testenv.sh)")
		}
		return openChains(t, redis.NewClient(&redis.Options{Addr: addr}), fmt.Sprintf("wt-chain-%x:", rand.Uint64()))
	}},
	{"cluster", true, func(t *testing.T) store {
		addrs := os.Getenv("WEBHOOKD_TEST_REDIS_CLUSTER_ADDRS")
		if addrs == "" {
			t.Skip("Redis Cluster not configured: set WEBHOOKD_TEST_REDIS_CLUSTER_ADDRS (source /work/testenv.sh)")
		}
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: strings.Split(addrs, ",")})
		return openChains(t, rdb, fmt.Sprintf("{wt-chain-%x}:", rand.Uint64()))
	}},
}

// openChains returns a store on rdb and, at the end of the test, deletes
// every key under prefix and closes rdb.
func openChains(t *testing.T, rdb redis.UniversalClient, prefix string) *Chains {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		del := func(ctx context.Context, c *redis.Client) error {
			it := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
			for it.Next(ctx) {
				if err := c.Del(ctx, it.Val()).Err(); err != nil {
					return err
				}
			}
			return it.Err()
		}
		var err error
		if cc, ok := rdb.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, del)
		} else {
			err = del(ctx, rdb.(*redis.Client))
		}
		if err != nil {
			t.Errorf("deleting test keys under %q: %v", prefix, err)
		}
		_ = rdb.Close()
	})
	return NewChains(rdb, prefix)
}

// forEachBackend runs test on a fresh store of every backend.
func forEachBackend(t *testing.T, test func(t *testing.T, s store)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open(t)) })
	}
}

var (
	src   = Partition{Topic: "events", Partition: 3}
	other = Partition{Topic: "events", Partition: 4}
	fa    = Field("sub_a", []byte("player-1"))
	fb    = Field("sub_b", []byte("player-1"))
)

type checker struct {
	t   *testing.T
	ctx context.Context
	s   store
}

func (c checker) join(p Partition, field string, offsets ...int64) []int64 {
	c.t.Helper()
	prevs, err := c.s.Join(c.ctx, p, field, offsets)
	if err != nil {
		c.t.Fatalf("Join(%v, %q, %v): %v", p, field, offsets, err)
	}
	return prevs
}

func (c checker) settle(p Partition, field string, o int64) {
	c.t.Helper()
	if err := c.s.Settle(c.ctx, p, field, o); err != nil {
		c.t.Fatalf("Settle(%v, %q, %d): %v", p, field, o, err)
	}
}

func (c checker) get(p Partition, field string) (Chain, bool) {
	c.t.Helper()
	ch, ok, err := c.s.Get(c.ctx, p, field)
	if err != nil {
		c.t.Fatalf("Get(%v, %q): %v", p, field, err)
	}
	return ch, ok
}

func (c checker) wantChain(p Partition, field string, want Chain) {
	c.t.Helper()
	if got, ok := c.get(p, field); !ok || got != want {
		c.t.Errorf("chain %v %q = %+v (present %v), want %+v", p, field, got, ok, want)
	}
}

func (c checker) wantAbsent(p Partition, field string) {
	c.t.Helper()
	if got, ok := c.get(p, field); ok {
		c.t.Errorf("chain %v %q = %+v, want absent", p, field, got)
	}
}

func (c checker) ready(p Partition, field string, o, prev int64) Gate {
	c.t.Helper()
	ch, ok := c.get(p, field)
	return Ready(ch, ok, o, prev)
}

func wantPrevs(t *testing.T, got []int64, want ...int64) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("prevs = %v, want %v", got, want)
	}
}

func TestJoinNewChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		c := checker{t, context.Background(), s}
		wantPrevs(t, c.join(src, fa, 10, 12, 15), 9, 10, 12)
		c.wantChain(src, fa, Chain{Settled: 9, Last: 15, Start: 10, StartPrev: 9})
		if g := c.ready(src, fa, 10, 9); g != GateGo {
			t.Errorf("head of a new chain: %v, want go", g)
		}
		if g := c.ready(src, fa, 12, 10); g != GateWait {
			t.Errorf("second member before the head settles: %v, want wait", g)
		}
		c.wantAbsent(src, fb)
		c.wantAbsent(other, fa)

		wantPrevs(t, c.join(other, fa, 0), -1)
		c.wantChain(other, fa, Chain{Settled: -1, Last: 0, Start: 0, StartPrev: -1})
	})
}

func TestJoinOpenChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		c := checker{t, context.Background(), s}
		c.join(src, fa, 10, 12)
		wantPrevs(t, c.join(src, fa, 20, 21), 12, 20)
		c.wantChain(src, fa, Chain{Settled: 9, Last: 21, Start: 20, StartPrev: 12})
		if g := c.ready(src, fa, 20, 12); g != GateWait {
			t.Errorf("head of the second batch before the first settles: %v, want wait", g)
		}
	})
}

func TestSettleInOrderClosesChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		c := checker{t, context.Background(), s}
		c.join(src, fa, 10, 12, 15)
		c.join(src, fb, 11)
		c.settle(src, fa, 10)
		c.wantChain(src, fa, Chain{Settled: 10, Last: 15, Start: 10, StartPrev: 9})
		if g := c.ready(src, fa, 12, 10); g != GateGo {
			t.Errorf("member after a settled one: %v, want go", g)
		}
		c.settle(src, fa, 12)
		c.settle(src, fa, 15)
		c.wantAbsent(src, fa)
		chains, err := s.Scan(c.ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]Chain{fb: {Settled: 10, Last: 11, Start: 11, StartPrev: 10}}; !reflect.DeepEqual(chains, want) {
			t.Errorf("Scan after fa closed = %v, want only fb's chain", chains)
		}
		// A closed chain starts again from its next member.
		wantPrevs(t, c.join(src, fa, 20), 19)
	})
}

// A chain's head due is kept beside it while the chain is open, read with
// it, never listed by Scan as a chain, and gone with the chain; booking a
// closed chain opens nothing.
func TestBookedHeadDue(t *testing.T) {
	due := time.Date(2026, 12, 2, 12, 30, 0, 123_000_000, time.UTC)
	forEachBackend(t, func(t *testing.T, s store) {
		ctx := context.Background()
		c := checker{t, ctx, s}
		if err := s.Booked(ctx, src, fa, due); err != nil {
			t.Fatal(err)
		}
		c.wantAbsent(src, fa)
		c.join(src, fa, 10, 12)
		if err := s.Booked(ctx, src, fa, due); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Get(ctx, src, fa)
		if err != nil || !ok || !got.HeadDue.Equal(due) {
			t.Fatalf("Get after Booked = %+v, %v, %v; want HeadDue %s", got, ok, err, due)
		}
		chains, err := s.Scan(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if len(chains) != 1 {
			t.Errorf("Scan lists %d chains after Booked, want 1: %v", len(chains), chains)
		}
		later := due.Add(time.Minute)
		if err := s.Booked(ctx, src, fa, later); err != nil {
			t.Fatal(err)
		}
		c.settle(src, fa, 10)
		if got, _, _ := s.Get(ctx, src, fa); !got.HeadDue.Equal(later) {
			t.Errorf("HeadDue after a re-booking = %s, want %s", got.HeadDue, later)
		}
		c.settle(src, fa, 12)
		c.wantAbsent(src, fa)
		c.join(src, fa, 20)
		if got, _, _ := s.Get(ctx, src, fa); !got.HeadDue.IsZero() {
			t.Errorf("a chain opened again carries the closed one's HeadDue %s", got.HeadDue)
		}
	})
}

func TestSettleDuplicateAndOlder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		c := checker{t, context.Background(), s}
		c.join(src, fa, 10, 12, 15)
		c.settle(src, fa, 12)
		c.settle(src, fa, 12)
		c.settle(src, fa, 10)
		c.wantChain(src, fa, Chain{Settled: 12, Last: 15, Start: 10, StartPrev: 9})
		for _, m := range []struct{ o, prev int64 }{{10, 9}, {12, 10}} {
			if g := c.ready(src, fa, m.o, m.prev); g != GateDrop {
				t.Errorf("settled member %d: %v, want drop", m.o, g)
			}
		}
		if g := c.ready(src, fa, 15, 12); g != GateGo {
			t.Errorf("member after the settled ones: %v, want go", g)
		}
		c.settle(src, fa, 15)
		c.settle(src, fa, 15)
		c.wantAbsent(src, fa)
		if g := c.ready(src, fa, 15, 12); g != GateGo {
			t.Errorf("member of a closed chain: %v, want go", g)
		}
	})
}

func TestSettleAbsentChainIsNoop(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		c := checker{t, context.Background(), s}
		c.settle(src, fa, 7)
		c.wantAbsent(src, fa)
		wantPrevs(t, c.join(src, fa, 3), 2)
	})
}

func TestRejoin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		c := checker{t, context.Background(), s}
		c.join(src, fa, 5)
		c.join(src, fa, 10, 12, 15)
		c.settle(src, fa, 5)
		want := Chain{Settled: 5, Last: 15, Start: 10, StartPrev: 5}

		wantPrevs(t, c.join(src, fa, 10, 12, 15), 5, 10, 12)
		c.wantChain(src, fa, want)

		for _, bad := range [][]int64{{10, 12}, {12, 15}, {15, 16}, {4, 10, 12, 15}} {
			_, err := s.Join(c.ctx, src, fa, bad)
			if !errors.Is(err, ErrRejoin) || !strings.Contains(err.Error(), "join chain") {
				t.Errorf("Join(%v) over %+v = %v, want ErrRejoin saying what failed", bad, want, err)
			}
		}
		// 5 is settled: read again after a crash, there is nothing to do.
		if _, err := s.Join(c.ctx, src, fa, []int64{5}); !errors.Is(err, ErrSettled) {
			t.Errorf("Join(5) over %+v = %v, want ErrSettled", want, err)
		}
		c.wantChain(src, fa, want)
	})
}

// A source consumer joins one offset at a time; after a crash it reads
// again, and re-joins, every one it had not committed. Each re-join gets
// the prev it was first given, not only the latest one's: the copy waits
// behind the same member as the original, and whichever goes first makes
// the other a duplicate to drop. Before, the earlier ones failed, went to
// the tiers without their place, and overtook the members before them.
func TestRejoinOfEarlierSingleJoinsAfterACrash(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		c := checker{t, context.Background(), s}
		offsets := []int64{240, 256, 272, 368, 384, 400}
		var prevs []int64
		for _, o := range offsets {
			prevs = append(prevs, c.join(src, fa, o)[0])
		}
		wantPrevs(t, prevs, 239, 240, 256, 272, 368, 384)
		c.settle(src, fa, 240)
		// The new owner resumes at the first uncommitted offset, 256.
		for i, o := range offsets[1:] {
			got, err := s.Join(c.ctx, src, fa, []int64{o})
			if err != nil || len(got) != 1 || got[0] != prevs[i+1] {
				t.Errorf("re-join of %d = %v, %v; want its first prev %d", o, got, err, prevs[i+1])
			}
		}
		if _, err := s.Join(c.ctx, src, fa, []int64{240}); !errors.Is(err, ErrSettled) {
			t.Errorf("re-join of the settled 240 = %v, want ErrSettled", err)
		}
		c.wantChain(src, fa, Chain{Settled: 240, Last: 400, Start: 400, StartPrev: 384})
		// New members still join after the last.
		wantPrevs(t, c.join(src, fa, 416), 400)

		// The recent joins are bounded: a long chain remembers its last
		// few dozen, and an older re-join fails as it did before.
		for o := int64(1000); o < 1200; o++ {
			c.join(src, fb, o)
		}
		if _, err := s.Join(c.ctx, src, fb, []int64{1001}); !errors.Is(err, ErrRejoin) {
			t.Errorf("re-join of a member 200 joins back = %v, want ErrRejoin", err)
		}
		if got, err := s.Join(c.ctx, src, fb, []int64{1190}); err != nil || got[0] != 1189 {
			t.Errorf("re-join of a member 10 joins back = %v, %v; want prev 1189", got, err)
		}
		// Closing the chain forgets them: a chain opened again starts afresh.
		c.settle(src, fb, 1199)
		c.wantAbsent(src, fb)
		wantPrevs(t, c.join(src, fb, 2000), 1999)
		if _, err := s.Join(c.ctx, src, fb, []int64{1190}); !errors.Is(err, ErrSettled) {
			t.Errorf("re-join of a member of the closed chain, below the new one's start = %v, want ErrSettled", err)
		}
	})
}

func TestJoinRefusesBadOffsets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		c := checker{t, context.Background(), s}
		for _, bad := range [][]int64{nil, {3, 3}, {4, 2}, {-1}, {1 << 53}} {
			if _, err := s.Join(c.ctx, src, fa, bad); err == nil {
				t.Errorf("Join(%v) = nil error", bad)
			}
		}
		c.wantAbsent(src, fa)
		if err := s.Settle(c.ctx, src, fa, -2); err == nil {
			t.Error("Settle(-2) = nil error")
		}
	})
}

func TestScanManyChains(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			hscans := 0
			if ch, ok := s.(*Chains); ok {
				ch.rdb.AddHook(countHook{"hscan", &hscans})
			}
			ctx := context.Background()
			const n = 1500
			want := map[string]Chain{}
			for i := range n {
				f := Field(fmt.Sprintf("sub_%d", i%7), fmt.Appendf(nil, "k%d", i))
				o := int64(2 * i)
				if _, err := s.Join(ctx, src, f, []int64{o, o + 1}); err != nil {
					t.Fatal(err)
				}
				want[f] = Chain{Settled: o - 1, Last: o + 1, Start: o, StartPrev: o - 1}
			}
			if _, err := s.Join(ctx, other, fa, []int64{1}); err != nil {
				t.Fatal(err)
			}
			got, err := s.Scan(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n || !reflect.DeepEqual(got, want) {
				t.Errorf("Scan returned %d chains, want the %d joined", len(got), n)
			}
			// miniredis answers HSCAN in one page whatever its COUNT.
			if b.name == "redis" || b.name == "cluster" {
				if hscans < 2 {
					t.Errorf("Scan of %d fields took %d HSCAN calls, want pages", n, hscans)
				}
			}
			if empty, err := s.Scan(ctx, Partition{Topic: "events", Partition: 9}); err != nil || len(empty) != 0 {
				t.Errorf("Scan of a partition without chains = %v, %v", empty, err)
			}
		})
	}
}

// countHook counts the commands named name.
type countHook struct {
	name string
	n    *int
}

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == h.name {
			*h.n++
		}
		return next(ctx, cmd)
	}
}

// Many (subscription, key)s of one partition joined and settled at once,
// each by its own goroutines as the source and deferral consumers would:
// every member settled in order finds its prev settled, a chain never has
// settled ≥ last, and all chains close at the end.
func TestConcurrentJoinSettle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s store) {
		ctx := context.Background()
		const fields, batches = 8, 40
		var (
			mu      sync.Mutex
			nextOff int64
			errs    = make(chan error, 4*fields)
			wg      sync.WaitGroup
		)
		take := func(n int) []int64 {
			mu.Lock()
			defer mu.Unlock()
			offs := make([]int64, n)
			for i := range offs {
				offs[i] = nextOff
				nextOff += 1 + int64(i%2)
			}
			return offs
		}
		type member struct{ o, prev int64 }
		for f := range fields {
			field := Field(fmt.Sprintf("sub_%d", f), []byte("k"))
			members := make(chan member, 8)
			wg.Add(3)
			go func() { // source consumer
				defer wg.Done()
				defer close(members)
				for b := range batches {
					offs := take(1 + b%3)
					prevs, err := s.Join(ctx, src, field, offs)
					if err != nil {
						errs <- err
						return
					}
					for i, o := range offs {
						members <- member{o, prevs[i]}
					}
				}
			}()
			go func() { // deferral consumer, in chain order
				defer wg.Done()
				for m := range members {
					c, ok, err := s.Get(ctx, src, field)
					if err == nil {
						if g := Ready(c, ok, m.o, m.prev); g != GateGo {
							err = fmt.Errorf("%q member %d (prev %d) with all before it settled: %v on %+v", field, m.o, m.prev, g, c)
						}
					}
					if err == nil {
						err = s.Settle(ctx, src, field, m.o)
					}
					if err != nil {
						errs <- err
						for range members {
						}
						return
					}
				}
			}()
			go func() { // an observer
				defer wg.Done()
				for range 3 * batches {
					c, ok, err := s.Get(ctx, src, field)
					if err == nil && ok && !(c.Settled < c.Last && c.StartPrev < c.Start && c.Start <= c.Last) {
						err = fmt.Errorf("%q: broken chain %+v", field, c)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if open, err := s.Scan(ctx, src); err != nil || len(open) != 0 {
			t.Errorf("chains left open after every member settled: %v, %v", open, err)
		}
	})
}

// The fake and Redis agree on random sequences of joins, in-order settles,
// repeated and older settles and re-joins.
func TestMemoryAgreesWithRedis(t *testing.T) {
	for _, b := range backends {
		if !b.redis {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			ctx := context.Background()
			for seed := uint64(1); seed <= 10; seed++ {
				rng := rand.New(rand.NewPCG(seed, 11))
				fake, red := NewMemory(), b.open(t)
				parts := []Partition{src, other}
				fields := []string{fa, fb, Field("sub_c", nil)}
				type key struct {
					p Partition
					f string
				}
				members := map[key][]int64{} // joined, in order
				settled := map[key]int{}     // how many of them are settled
				last := map[key][]int64{}    // the latest batch
				next := map[Partition]int64{}
				for step := range 150 {
					p, f := parts[rng.IntN(len(parts))], fields[rng.IntN(len(fields))]
					k := key{p, f}
					var op string
					var fp, rp []int64
					var ferr, rerr error
					switch r := rng.IntN(10); {
					case r < 4:
						var offs []int64
						for range 1 + rng.IntN(3) {
							next[p] += 1 + int64(rng.IntN(3))
							offs = append(offs, next[p])
						}
						op = fmt.Sprintf("join %v", offs)
						fp, ferr = fake.Join(ctx, p, f, offs)
						rp, rerr = red.Join(ctx, p, f, offs)
						members[k] = append(members[k], offs...)
						last[k] = offs
					case r < 8 && settled[k] < len(members[k]):
						o := members[k][settled[k]]
						settled[k]++
						op = fmt.Sprintf("settle %d", o)
						ferr, rerr = fake.Settle(ctx, p, f, o), red.Settle(ctx, p, f, o)
					case r < 9 && settled[k] > 0:
						o := members[k][rng.IntN(settled[k])]
						op = fmt.Sprintf("settle again %d", o)
						ferr, rerr = fake.Settle(ctx, p, f, o), red.Settle(ctx, p, f, o)
					case len(last[k]) > 0:
						offs := last[k]
						if rng.IntN(2) == 0 {
							offs = offs[rng.IntN(len(offs)):]
						}
						op = fmt.Sprintf("rejoin %v", offs)
						fp, ferr = fake.Join(ctx, p, f, offs)
						rp, rerr = red.Join(ctx, p, f, offs)
					default:
						continue
					}
					where := fmt.Sprintf("seed %d step %d: %v %q %s", seed, step, p, f, op)
					if !reflect.DeepEqual(fp, rp) || (ferr == nil) != (rerr == nil) || errors.Is(ferr, ErrRejoin) != errors.Is(rerr, ErrRejoin) {
						t.Fatalf("%s: fake %v, %v; redis %v, %v", where, fp, ferr, rp, rerr)
					}
					if ferr != nil && !errors.Is(ferr, ErrRejoin) {
						t.Fatalf("%s: %v", where, ferr)
					}
					fc, fok, _ := fake.Get(ctx, p, f)
					rc, rok, err := red.Get(ctx, p, f)
					if err != nil || fc != rc || fok != rok {
						t.Fatalf("%s: fake chain %+v (%v), redis %+v (%v) %v", where, fc, fok, rc, rok, err)
					}
				}
				for _, p := range parts {
					fs, _ := fake.Scan(ctx, p)
					rs, err := red.Scan(ctx, p)
					if err != nil || !reflect.DeepEqual(fs, rs) {
						t.Fatalf("seed %d: Scan %v: fake %v, redis %v %v", seed, p, fs, rs, err)
					}
				}
			}
		})
	}
}
