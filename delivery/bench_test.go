package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/event"
	"github.com/unibo/webhookd/subscriptions"
)

// okTransport answers every request 200 with an empty body, without a
// network: the Send benchmarks measure webhookd's own work per delivery
// (slot, context, request, outcome), not the kernel's or net/http's.
type okTransport struct{}

func (okTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}}, nil
}

func benchSender(b *testing.B, concurrency int) *Sender {
	b.Helper()
	cfg := config.Defaults().Delivery
	cfg.EndpointConcurrency = concurrency
	s := NewSender(cfg, zap.NewNop(), nil)
	s.transport = okTransport{}
	return s
}

var benchEndpoint = Endpoint{SubscriptionID: "sub-1", URL: "http://partner.example:8080/hooks/unibo",
	APIKey: "k-123", WebhookID: "msg_0123456789abcdefghjkmnpqrs"}

// BenchmarkSend is one delivery through a free endpoint slot.
func BenchmarkSend(b *testing.B) {
	s := benchSender(b, 384)
	body := []byte(event.Examples[1].Payload)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := s.Send(ctx, benchEndpoint, body); !res.OK() {
			b.Fatal(res.Err)
		}
	}
}

// BenchmarkSendContended has more senders than endpoint slots, as in the
// bench's fast scenario (768 lanes, 384 slots per endpoint): deliveries
// wait for a slot.
func BenchmarkSendContended(b *testing.B) {
	s := benchSender(b, 2)
	body := []byte(event.Examples[1].Payload)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := s.Send(ctx, benchEndpoint, body); !res.OK() {
				b.Error(res.Err)
				return
			}
		}
	})
}

// BenchmarkSendLoopback is one delivery to a local server: net/http and
// the kernel included (and the server's allocations counted too).
func BenchmarkSendLoopback(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer srv.Close()
	cfg := config.Defaults().Delivery
	s := NewSender(cfg, zap.NewNop(), nil)
	defer s.Close()
	ep := benchEndpoint
	ep.URL = srv.URL + "/hooks/unibo"
	body := []byte(event.Examples[1].Payload)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := s.Send(ctx, ep, body); !res.OK() {
			b.Fatal(res.Err)
		}
	}
}

type nopRecorder struct{}

func (nopRecorder) Delivery(string, Outcome, int, time.Duration, time.Time) {}

type fixedMatch struct{ subs []*subscriptions.Subscription }

func (m fixedMatch) Match(event.Event) []*subscriptions.Subscription { return m.subs }

type okPoster struct{}

func (okPoster) Send(context.Context, Endpoint, []byte) Result { return Result{Status: 200} }

// BenchmarkFanoutDeliver is the fan-out of one decoded event to two
// subscriptions, the bench's shape, with the HTTP side stubbed out.
func BenchmarkFanoutDeliver(b *testing.B) {
	m := fixedMatch{subs: []*subscriptions.Subscription{
		{ID: "sub-a", TenantID: "t1", URL: "http://a.example/hook", Enabled: true},
		{ID: "sub-b", TenantID: "t1", URL: "http://b.example/hook", Enabled: true},
	}}
	f := NewFanout(m, okPoster{}, NewSettler(nil, nil, NewPolicy(config.Defaults().Delivery), nopRecorder{}, zap.NewNop()), zap.NewNop())
	defer f.Close()
	ev, err := event.Decode([]byte(event.Examples[1].Domain))
	if err != nil {
		b.Fatal(err)
	}
	ev.Source = event.Source{Topic: "prize-payouts", Partition: 3, Offset: 123456, Key: "player-42", Time: time.Now()}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8) // many lanes deliver at once, as in production
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.Deliver(ctx, ev)
		}
	})
	if got := f.Stats().Succeeded.Load(); got == 0 {
		b.Fatal("nothing delivered")
	}
}
