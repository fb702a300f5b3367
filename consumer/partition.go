package consumer

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"
)

// partitionConsumer owns one assigned partition for one generation. It reads
// ahead up to consumer.max_in_flight messages, delivers messages of different
// keys concurrently on consumer.key_concurrency lanes (a key always maps to
// the same lane, so same-key messages are delivered in order), and reports
// finished offsets to the tracker the committer reads.
type partitionConsumer struct {
	c         *Consumer
	topic     string
	partition int
	offset    int64
	commits   *committer
	log       *zap.Logger
}

// run is started by the generation; its ctx ends with the generation.
func (p *partitionConsumer) run(ctx context.Context) {
	cfg := p.c.kafka
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:         cfg.Brokers,
		Topic:           p.topic,
		Partition:       p.partition,
		Dialer:          p.c.dialer,
		MinBytes:        cfg.FetchMinBytes,
		MaxBytes:        cfg.FetchMaxBytes,
		MaxWait:         cfg.FetchMaxWait,
		ReadLagInterval: -1,
		ReadBackoffMin:  100 * time.Millisecond,
		ReadBackoffMax:  time.Second,
		ErrorLogger:     kafka.LoggerFunc(func(msg string, args ...any) { p.log.Sugar().Warnf(msg, args...) }),
	})
	defer func() {
		if err := r.Close(); err != nil {
			p.log.Debug("close partition reader", zap.Error(err))
		}
	}()
	if err := r.SetOffset(p.offset); err != nil {
		p.log.Error("cannot seek partition; giving it up for this generation", zap.Int64("offset", p.offset), zap.Error(err))
		return
	}

	tracker := newOffsetTracker()
	p.commits.track(p.topic, p.partition, tracker)

	// The lag gauge has a series from assignment on, not only once a message
	// arrives: an idle or stuck partition must show up in alerts too.
	seed := p.seedLag(ctx, r)
	defer seed.wait()

	// Deliveries run on a context that outlives the generation by at most
	// the shutdown timeout, so in-flight work can finish after a revoke.
	work, cancelWork := context.WithCancel(context.Background())
	defer cancelWork()
	work = context.WithValue(work, stoppingKey{}, ctx.Done())

	opts := p.c.opts
	slots := make(chan struct{}, opts.MaxInFlight)
	// Lanes carry pointers: a lane's buffer is sized for the whole window
	// so dispatch never blocks on one busy key, and that must stay small.
	// A lane's goroutine starts with its first message: a pod owns many
	// partitions (the retry tiers alone are seven topics), most of them
	// idle, and each would otherwise hold key_concurrency goroutines.
	lanes := make([]chan *kafka.Message, opts.KeyConcurrency)
	var wg sync.WaitGroup
	async, _ := p.c.handler.(AsyncHandler)
	var pending sync.WaitGroup // messages handed to an async handler, not done yet
	release := func() {
		<-slots
		<-p.c.total
	}
	runLane := func(lane <-chan *kafka.Message) {
		defer wg.Done()
		// A context per lane keeps each request's cancel registration
		// off the partition-wide context's lock.
		laneCtx, cancelLane := context.WithCancel(work)
		defer cancelLane()
		for m := range lane {
			if async != nil {
				// The work outlives the lane: it runs on work, and holds
				// its window slot until done.
				pending.Add(1)
				async.HandleAsync(work, m, func(err error) {
					if p.c.handled(work, m, err, p.log) {
						tracker.finish(m.Offset)
					}
					release()
					pending.Done()
				})
				continue
			}
			// Only a message whose handling really ended is finished; one
			// abandoned at the shutdown deadline, or given up at a revoke,
			// stays uncommitted and is handled again by the next owner.
			if p.c.handle(laneCtx, m, p.log) {
				tracker.finish(m.Offset)
			}
			release()
		}
	}
	lane := func(i int) chan<- *kafka.Message {
		if lanes[i] == nil {
			lanes[i] = make(chan *kafka.Message, opts.MaxInFlight)
			wg.Add(1)
			go runLane(lanes[i])
		}
		return lanes[i]
	}
	gated, _ := p.c.handler.(Gated)

	p.log.Debug("partition assigned", zap.Int64("offset", p.offset))
	var rr uint32
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			p.log.Warn("fetch failed; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		if gated != nil && !awaitGate(ctx, gated.Due(&m)) {
			break // not started: the next owner reads it again
		}
		// Backpressure: wait for room in this partition's window and in the
		// pod's; fetching stops meanwhile, so memory stays bounded.
		if !acquire(ctx, slots, p.c.windowFull) {
			break // not started: the next owner reads it again
		}
		if !acquire(ctx, p.c.total, p.c.windowFull) {
			<-slots
			break
		}
		tracker.start(m.Offset)
		seed.fetched()
		p.c.rec.Lag(p.topic, p.partition, max(m.HighWaterMark-m.Offset-1, 0))
		lane(laneOf(p.c.laneSeed, m.Key, &rr, len(lanes))) <- &m
	}

	// The generation is over: stop fetching, let in-flight deliveries finish
	// within the shutdown timeout, then commit what is finished.
	for _, l := range lanes {
		if l != nil {
			close(l)
		}
	}
	drained := make(chan struct{})
	go func() { wg.Wait(); pending.Wait(); close(drained) }()
	timer := time.NewTimer(p.c.shutdownTimeout)
	defer timer.Stop()
	select {
	case <-drained:
	case <-timer.C:
		p.log.Warn("in-flight deliveries did not finish within the shutdown timeout; they stay uncommitted and will be delivered again",
			zap.Int("in_flight", tracker.inFlight()))
		cancelWork()
		<-drained
	}
	p.commits.flush(p.topic, p.partition)
	if w, ok := p.c.handler.(PartitionWatcher); ok {
		w.Released(p.topic, p.partition)
	}
	seed.wait()
	p.c.rec.Released(p.topic, p.partition)
	p.log.Debug("partition released")
}

// lagSeed reports a partition's lag from its assigned offset until the
// first fetched message reports it: 0 at once, then the distance from the
// assigned offset to the high watermark, read from the partition leader in
// the background so fetching never waits for it.
type lagSeed struct {
	mu   sync.Mutex
	done bool // a fetched message reported the lag, or the seed is over
	wg   sync.WaitGroup
}

func (p *partitionConsumer) seedLag(ctx context.Context, r *kafka.Reader) *lagSeed {
	s := &lagSeed{}
	p.c.rec.Lag(p.topic, p.partition, 0)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		readCtx, cancel := context.WithTimeout(ctx, p.c.kafka.DialTimeout)
		defer cancel()
		lag, err := r.ReadLag(readCtx)
		if err != nil {
			p.log.Debug("cannot read the partition's lag at assignment; it is reported from the first message on", zap.Error(err))
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.done {
			p.c.rec.Lag(p.topic, p.partition, max(lag, 0))
		}
	}()
	return s
}

// fetched tells the seed a fetched message now reports the lag. Only the
// first call takes the lock.
func (s *lagSeed) fetched() {
	if s.done {
		return
	}
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

// wait ends the seed; after it, the seed reports nothing more.
func (s *lagSeed) wait() {
	s.wg.Wait()
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

// laneOf maps a key to a lane; keyless messages are spread round-robin.
// The hash is seeded maphash, not the producer's partitioner hash: kafka-go's
// Hash balancer is FNV-1a modulo the partition count, so within one
// partition FNV-1a modulo the lane count would hit only a few lanes (with 12
// partitions and 32 lanes, 8 of them).
func laneOf(seed maphash.Seed, key []byte, rr *uint32, n int) int {
	if len(key) == 0 {
		*rr++
		return int(*rr % uint32(n))
	}
	return int(maphash.Bytes(seed, key) % uint64(n))
}

// awaitGate waits until due (at once when it is zero or past); false when
// ctx ended first.
func awaitGate(ctx context.Context, due time.Time) bool {
	wait := time.Until(due)
	if due.IsZero() || wait <= 0 {
		return true
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// acquire takes a slot of sem, or gives up when ctx ends. While sem has
// none free (the window is full and reading waits), full is called at
// once and then every windowFullEvery.
func acquire(ctx context.Context, sem chan struct{}, full func()) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
	}
	for {
		full()
		t := time.NewTimer(windowFullEvery)
		select {
		case sem <- struct{}{}:
			t.Stop()
			return true
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// windowFullEvery is how often a reader waiting for window room says so.
const windowFullEvery = 100 * time.Millisecond
