//go:build faults

package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/internal/testenv"
)

// 1,000 malformed messages of every kind are mixed into 5,000 valid events,
// on the same keys and so the same partitions. Every valid event arrives,
// no garbage reaches a partner, each bad message is logged as skipped once,
// and the worker neither crashes nor stalls.
func TestPoisonMessagesSkippedWithoutStall(t *testing.T) {
	const (
		valid   = 5_000
		poison  = 1_000
		players = 300
	)
	w := newWorld(t, 1)
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 0))
	prefix := "req-" + testenv.ID()

	kinds := poisonKinds()
	perKind := map[string]int{}
	var msgs []kafka.Message
	var ids []string
	for i := range valid {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		player := fmt.Sprintf("player-%03d", i%players)
		msgs = append(msgs, kafka.Message{Key: []byte(player), Value: payout(id, player)})
		ids = append(ids, id)
	}
	for i := range poison {
		k := kinds[i%len(kinds)]
		v := k.make(r)
		if _, err := event.Decode(v); err == nil {
			t.Fatalf("poison generator %q made a valid event: %.200q", k.name, v)
		}
		perKind[k.name]++
		var key []byte
		switch i % 50 {
		case 0: // no key
		case 1: // an 8 KiB binary key
			key = make([]byte, 8<<10)
			for j := range key {
				key[j] = byte(r.IntN(256))
			}
		default:
			key = fmt.Appendf(nil, "player-%03d", r.IntN(players))
		}
		msgs = append(msgs, kafka.Message{Key: key, Value: v})
	}
	// Mix them, but keep the last message of every key valid, so a partition
	// whose valid events all arrive has got past all its poison.
	r.Shuffle(len(msgs), func(i, j int) { msgs[i], msgs[j] = msgs[j], msgs[i] })
	for i := range msgs {
		msgs[i].Topic = w.cfg.Kafka.Topics[i%len(w.cfg.Kafka.Topics)]
	}
	tail := make([]kafka.Message, 0, 2*players)
	for pl := range players {
		for _, topic := range w.cfg.Kafka.Topics {
			id := fmt.Sprintf("%s-tail-%s-%03d", prefix, topic, pl)
			player := fmt.Sprintf("player-%03d", pl)
			tail = append(tail, kafka.Message{Topic: topic, Key: []byte(player), Value: payout(id, player)})
			ids = append(ids, id)
		}
	}
	msgs = append(msgs, tail...)

	p := w.start()
	p.WaitReady(t, 60*time.Second)
	began := time.Now()
	for chunk := range slices.Chunk(msgs, 500) {
		testenv.Produce(t, w.cfg.Kafka.Brokers, chunk...)
	}
	produced := time.Since(began)
	f, drained := w.tally.drain(t, ids, time.Minute)
	var skips []map[string]any
	waitFor(t, 30*time.Second, fmt.Sprintf("%d skip lines", poison), func() bool {
		skips = logLines(p, skipLine)
		return len(skips) >= poison
	})
	time.Sleep(time.Second)
	skips = logLines(p, skipLine)
	rz := readyz(p)
	alive := !p.Exited()
	w.stop(p)

	longest := 0
	for _, line := range strings.Split(p.Output(), "\n") {
		longest = max(longest, len(line))
	}
	t.Logf("poison: %d valid events (%d with the tail) and %d malformed (seed %d; %v) produced in %.1fs: %s; skip lines %d (longest log line %d bytes); "+
		"every valid event delivered %.1fs after the last was produced; %.1fs from the first message produced to SIGTERM",
		valid, len(ids), poison, seed, perKind, produced.Seconds(), f, len(skips), longest, drained.Seconds(), time.Since(began).Seconds())
	if f.Lost != 0 || f.DupPairs != 0 || f.Unexpected != 0 || f.Torn != 0 {
		t.Errorf("lost %d, duplicated %d, unexpected %d, torn %d: want every valid event exactly once and nothing else", f.Lost, f.DupPairs, f.Unexpected, f.Torn)
	}
	if !alive || rz.Code != http.StatusOK {
		t.Errorf("after the poison: process alive %v, /readyz %d %v", alive, rz.Code, rz.Checks)
	}
	// One line per bad message, naming where it is and why it was skipped.
	where := map[string]bool{}
	for _, l := range skips {
		for _, field := range []string{"topic", "partition", "offset", "bytes", "reason"} {
			if _, ok := l[field]; !ok {
				t.Errorf("skip line without %q: %v", field, l)
			}
		}
		where[fmt.Sprint(l["topic"], "/", l["partition"], "/", l["offset"])] = true
	}
	if len(skips) != poison || len(where) != poison {
		t.Errorf("%d skip lines for %d distinct offsets, want %d of each", len(skips), len(where), poison)
	}
	// Nothing read is lost: every bad message is in the invalid topic, raw
	// bytes and all, its origin in headers.
	kept := map[string]bool{}
	for _, m := range readAll(t, w.cfg, w.cfg.Consumer.InvalidTopic) {
		origin := ""
		for _, h := range m.Headers {
			switch h.Key {
			case "webhookd-source-topic":
				origin = string(h.Value) + origin
			case "webhookd-source-partition":
				origin += "/" + string(h.Value)
			case "webhookd-source-offset":
				origin += "//" + string(h.Value)
			}
		}
		kept[origin] = true
	}
	t.Logf("invalid topic holds %d distinct bad messages", len(kept))
	if len(kept) != poison {
		t.Errorf("invalid topic holds %d distinct bad messages, want %d", len(kept), poison)
	}
	for _, line := range strings.Split(p.Output(), "\n") {
		if strings.Contains(line, "panic") || strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"fatal"`) {
			t.Errorf("log line: %s", testenv.Tail(line, 1))
		}
	}
}

// skipLine starts the warning logged for each message skipped as invalid
// ("skipping invalid domain event", now "skipping invalid message").
const skipLine = "skipping invalid…"

type poisonKind struct {
	name string
	make func(r *rand.Rand) []byte
}

// poisonKinds are the ways a message can fail to be a domain event.
func poisonKinds() []poisonKind {
	good := func() map[string]any {
		return map[string]any{
			"tenant_id": tenant, "event_type": "PRIZE_PAYOUT_SUCCEEDED", "campaign_id": "faults-2025",
			"request_id": "poison-" + testenv.ID(), "player_id": "player-001", "player_currency": "EUR",
			"status": "SUCCESS", "prize_type": "cash", "amount": 10.5, "bonus_id": 7,
		}
	}
	marshal := func(m map[string]any) []byte {
		b, _ := json.Marshal(m)
		return b
	}
	pick := func(r *rand.Rand, m map[string]any) string {
		keys := slices.Sorted(maps.Keys(m))
		return keys[r.IntN(len(keys))]
	}
	required := []string{"tenant_id", "event_type", "campaign_id", "request_id", "player_id", "player_currency", "status", "prize_type", "amount"}
	return []poisonKind{
		{"random bytes", func(r *rand.Rand) []byte {
			b := make([]byte, 1+r.IntN(512))
			for i := range b {
				b[i] = byte(r.IntN(256))
			}
			return b
		}},
		{"truncated JSON", func(r *rand.Rand) []byte {
			b := marshal(good())
			return b[:1+r.IntN(len(b)-1)]
		}},
		{"wrong types", func(r *rand.Rand) []byte {
			m := good()
			f := required[r.IntN(len(required))]
			notString := []any{42, 3.14, true, false, []int{1, 2}, map[string]any{"id": "x"}}
			notNumber := []any{"10.50", true, []int{1}, map[string]any{"v": 1}}
			if _, isString := m[f].(string); isString {
				m[f] = notString[r.IntN(len(notString))]
			} else {
				m[f] = notNumber[r.IntN(len(notNumber))]
			}
			return marshal(m)
		}},
		{"unknown event type", func(r *rand.Rand) []byte {
			m := good()
			m["event_type"] = []string{"PRIZE_PAYOUT_REFUNDED", "prize_payout_succeeded", "", " PLAYER_OPTED_IN", "PLAYER_OPTED_IN\x00", "'; DROP TABLE events; --"}[r.IntN(6)]
			return marshal(m)
		}},
		{"missing or empty field", func(r *rand.Rand) []byte {
			m := good()
			if r.IntN(3) == 0 {
				m = map[string]any{"tenant_id": tenant, "event_type": "PLAYER_OPTED_OUT", "player_id": "player-001", "campaign_id": "c"}
				f := pick(r, m)
				m[f] = []any{nil, "", "   "}[r.IntN(3)]
				return marshal(m)
			}
			f := required[r.IntN(len(required))]
			switch r.IntN(3) {
			case 0:
				delete(m, f)
			case 1:
				m[f] = nil
			default:
				if _, isString := m[f].(string); isString {
					m[f] = " "
				} else {
					delete(m, f)
				}
			}
			return marshal(m)
		}},
		{"huge string", func(r *rand.Rand) []byte {
			m := good()
			huge := strings.Repeat("A", 100_000+r.IntN(200_000))
			if r.IntN(2) == 0 {
				m["event_type"] = huge
			} else {
				m["player_id"] = huge
				delete(m, "request_id")
			}
			return marshal(m)
		}},
		{"deep nesting", func(r *rand.Rand) []byte {
			n := 5_000 + r.IntN(100_000)
			if r.IntN(2) == 0 {
				return []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
			}
			n = min(n, 9_000) // valid JSON (encoding/json allows 10,000 levels), tenant_id an object
			return []byte(`{"tenant_id":` + strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) + `,"event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`)
		}},
		{"invalid UTF-8", func(r *rand.Rand) []byte {
			b := marshal(good())
			bad := [][]byte{{0xff}, {0xc3, 0x28}, {0xed, 0xa0, 0x80}, {0xf8, 0x88, 0x80, 0x80, 0x80}}[r.IntN(4)]
			return bytes.Replace(b, []byte("player-001"), append([]byte("player-"), bad...), 1)
		}},
		{"not an object", func(r *rand.Rand) []byte {
			return [][]byte{nil, {}, []byte("null"), []byte("[]"), []byte(`"PRIZE_PAYOUT_SUCCEEDED"`), []byte("42"), []byte("true"),
				[]byte("   "), []byte(`[{"tenant_id":"acme"}]`), []byte(`{}`), []byte("{\"tenant_id\":\"acme\"} trailing")}[r.IntN(11)]
		}},
		{"duplicate key, last one wrong", func(r *rand.Rand) []byte {
			b := marshal(good())
			return append(b[:len(b)-1], []byte(`,"tenant_id":5}`)...)
		}},
	}
}

// readAll reads every message of topic, partition by partition.
func readAll(t *testing.T, cfg config.Config, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Kafka.Brokers...), Transport: &kafka.Transport{}}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := 0; p < cfg.Kafka.Partitions; p++ {
		req.Topics[topic] = append(req.Topics[topic], kafka.LastOffsetOf(p))
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	var out []kafka.Message
	for _, po := range res.Topics[topic] {
		if po.LastOffset == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Kafka.Brokers, Topic: topic, Partition: po.Partition, MaxWait: 200 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("read %s/%d: %v", topic, po.Partition, err)
			}
			out = append(out, m)
			if m.Offset >= po.LastOffset-1 {
				break
			}
		}
		_ = r.Close()
	}
	return out
}
