package delivery

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

type countingPoster struct {
	mu  sync.Mutex
	got map[string]int // webhook id → deliveries
}

func (p *countingPoster) Send(_ context.Context, ep Endpoint, _ []byte) Result {
	p.mu.Lock()
	p.got[ep.WebhookID]++
	p.mu.Unlock()
	return Result{Status: 200}
}

// Each event reaches each of its subscriptions exactly once, however many
// events are fanned out at once on the reused calls.
func TestFanoutDeliversEachSubscriptionOnce(t *testing.T) {
	var subs []*subscriptions.Subscription
	for i := range 5 {
		subs = append(subs, &subscriptions.Subscription{ID: fmt.Sprint("sub-", i), TenantID: "t1", URL: "http://a.example/hook", Enabled: true})
	}
	post := &countingPoster{got: map[string]int{}}
	f := NewFanout(fixedMatch{subs: subs}, post, NewSettler(nil, nil, NewPolicy(config.Defaults().Delivery), nopRecorder{}, zap.NewNop()), zap.NewNop())
	defer f.Close()
	base, err := event.Decode([]byte(`{"tenant_id":"t1","event_type":"PLAYER_OPTED_IN","player_id":"p","campaign_id":"c"}`))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for lane := range 8 {
		wg.Go(func() {
			for i := range 200 {
				ev := base
				ev.Source = event.Source{Topic: "t", Partition: lane, Offset: int64(i)}
				f.Deliver(context.Background(), ev)
			}
		})
	}
	wg.Wait()
	if len(post.got) != 8*200*5 {
		t.Fatalf("%d distinct deliveries, want %d", len(post.got), 8*200*5)
	}
	for id, n := range post.got {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
}
