package podstate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/unibo/webhookd/delivery"
)

// client is the real Redis when configured, miniredis otherwise.
func client(t *testing.T) (redis.UniversalClient, string) {
	prefix := fmt.Sprintf("wt-pods-%x:", rand.Uint64())
	addr := os.Getenv("WEBHOOKD_TEST_REDIS_ADDR")
	if addr == "" {
		addr = miniredis.RunT(t).Addr()
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() {
		_ = rdb.Del(context.Background(), prefix+"pods").Err()
		_ = rdb.Close()
	})
	return rdb, prefix
}

// Two pods' reports are read back and summed per endpoint; a pod that
// stopped (Remove) and one that died (its report gone stale) are left out.
func TestReportsOfRunningPodsAreMergedPerEndpoint(t *testing.T) {
	rdb, prefix := client(t)
	ctx := context.Background()
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	b := NewBoard(rdb, prefix)
	b.now = func() time.Time { return now }
	paused := now.Add(time.Hour)
	a := []delivery.EndpointStatus{
		{Endpoint: "https://a.example:443", Limit: 300, Ceiling: 384, InFlight: 5, Queued: 2, Circuit: "closed", Deferred: 10, Returned: 4},
		{Endpoint: "https://b.example:443", Limit: 4, Ceiling: 384, Rate: 50, Circuit: "closed", PausedUntil: paused},
	}
	c := []delivery.EndpointStatus{
		{Endpoint: "https://a.example:443", Limit: 384, Ceiling: 384, InFlight: 1, Circuit: "open", Deferred: 1, Silent: true},
	}
	for pod, eps := range map[string][]delivery.EndpointStatus{"pod-a": a, "pod-c": c, "pod-gone": c} {
		if err := b.Publish(ctx, pod, eps); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Remove(ctx, "pod-gone"); err != nil {
		t.Fatal(err)
	}
	dead := NewBoard(rdb, prefix)
	dead.now = func() time.Time { return now.Add(-time.Minute) }
	if err := dead.Publish(ctx, "pod-dead", c); err != nil {
		t.Fatal(err)
	}
	reports, err := b.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 2 || reports[0].Pod != "pod-a" || reports[1].Pod != "pod-c" {
		t.Fatalf("reports %+v, want pod-a and pod-c", reports)
	}
	got := Merge(reports)
	want := []delivery.EndpointStatus{
		{Endpoint: "https://a.example:443", Limit: 684, Ceiling: 768, InFlight: 6, Queued: 2, Circuit: "open", Deferred: 11, Returned: 4, Silent: true},
		{Endpoint: "https://b.example:443", Limit: 4, Ceiling: 384, Rate: 50, Circuit: "closed", PausedUntil: paused},
	}
	if len(got) != len(want) {
		t.Fatalf("merged %+v", got)
	}
	for i := range want {
		if !got[i].PausedUntil.Equal(want[i].PausedUntil) {
			t.Errorf("%s paused until %v, want %v", want[i].Endpoint, got[i].PausedUntil, want[i].PausedUntil)
		}
		got[i].PausedUntil, want[i].PausedUntil = time.Time{}, time.Time{}
		if got[i] != want[i] {
			t.Errorf("merged\n %+v\nwant\n %+v", got[i], want[i])
		}
	}
}
