// Package podstate is what each running webhookd worker publishes about
// its partner endpoints, for `webhookd status` to show across the pods.
//
// Every pod writes its report every few seconds as one field of a Redis
// hash, <prefix>pods, keyed by the pod's name, and deletes it when it stops.
// A report older than Stale is from a pod that died without deleting it:
// readers skip it, and the next writer prunes it. One hash, so it lives in
// one slot of a Redis Cluster.
package podstate

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/delivery"
)

// Stale is the age past which a report is ignored.
const Stale = 30 * time.Second

// Report is one pod's state.
type Report struct {
	Pod       string                    `json:"pod"`
	At        time.Time                 `json:"at"`
	Endpoints []delivery.EndpointStatus `json:"endpoints"`
}

// Board reads and writes the reports.
type Board struct {
	rdb redis.UniversalClient
	key string
	now func() time.Time
}

// NewBoard returns the board whose key starts with keyPrefix
// (redis.key_prefix).
func NewBoard(rdb redis.UniversalClient, keyPrefix string) *Board {
	return &Board{rdb: rdb, key: keyPrefix + "pods", now: time.Now}
}

// Publish writes pod's report, and prunes reports gone stale.
func (b *Board) Publish(ctx context.Context, pod string, endpoints []delivery.EndpointStatus) error {
	v, err := json.Marshal(Report{Pod: pod, At: b.now().UTC(), Endpoints: endpoints})
	if err != nil {
		return fmt.Errorf("encode pod report: %w", err)
	}
	if err := b.rdb.HSet(ctx, b.key, pod, v).Err(); err != nil {
		return fmt.Errorf("publish pod report to %s: %w", b.key, err)
	}
	reports, err := b.read(ctx)
	if err != nil {
		return err
	}
	for _, r := range reports {
		if b.now().Sub(r.At) > 10*Stale {
			_ = b.rdb.HDel(ctx, b.key, r.Pod).Err()
		}
	}
	return nil
}

// Remove deletes pod's report (the pod is stopping).
func (b *Board) Remove(ctx context.Context, pod string) error {
	if err := b.rdb.HDel(ctx, b.key, pod).Err(); err != nil {
		return fmt.Errorf("remove pod report from %s: %w", b.key, err)
	}
	return nil
}

// Read returns the reports of the pods running now (not stale), by pod.
func (b *Board) Read(ctx context.Context) ([]Report, error) {
	all, err := b.read(ctx)
	if err != nil {
		return nil, err
	}
	var live []Report
	for _, r := range all {
		if b.now().Sub(r.At) <= Stale {
			live = append(live, r)
		}
	}
	return live, nil
}

func (b *Board) read(ctx context.Context) ([]Report, error) {
	m, err := b.rdb.HGetAll(ctx, b.key).Result()
	if err != nil {
		return nil, fmt.Errorf("read pod reports from %s: %w", b.key, err)
	}
	reports := make([]Report, 0, len(m))
	for pod, v := range m {
		var r Report
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			r = Report{Pod: pod} // unreadable: zero time, so stale
		}
		r.Pod = pod
		reports = append(reports, r)
	}
	sort.Slice(reports, func(i, j int) bool { return reports[i].Pod < reports[j].Pod })
	return reports, nil
}

// Merge sums the pods' reports per endpoint: requests in flight, queued and
// deferred add up; the limit and rate are each pod's own and add up too
// (what the partner sees); a pause or silence in any pod shows.
func Merge(reports []Report) []delivery.EndpointStatus {
	by := map[string]*delivery.EndpointStatus{}
	for _, r := range reports {
		for _, e := range r.Endpoints {
			m, ok := by[e.Endpoint]
			if !ok {
				c := e
				by[e.Endpoint] = &c
				continue
			}
			m.Limit += e.Limit
			m.Ceiling += e.Ceiling
			m.InFlight += e.InFlight
			m.Queued += e.Queued
			m.Rate += e.Rate
			m.Deferred += e.Deferred
			m.Returned += e.Returned
			m.Silent = m.Silent || e.Silent
			if e.PausedUntil.After(m.PausedUntil) {
				m.PausedUntil = e.PausedUntil
			}
			if e.Circuit != "closed" {
				m.Circuit = e.Circuit
			}
			m.DeferredAge = max(m.DeferredAge, e.DeferredAge)
		}
	}
	out := make([]delivery.EndpointStatus, 0, len(by))
	for _, e := range by {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out
}
