package delivery

import (
	"sort"
	"time"
)

// EndpointStatus is one endpoint's scheduling state at a moment: what
// /metrics and `webhookd status` show of it.
type EndpointStatus struct {
	Endpoint string `json:"endpoint"` // scheme://host:port
	// Limit is its adaptive concurrency limit now; Ceiling the most it goes
	// to (delivery.endpoint_concurrency).
	Limit    int `json:"limit"`
	Ceiling  int `json:"ceiling"`
	InFlight int `json:"in_flight"`
	Queued   int `json:"queued"`
	// Rate is the requests/s it is paced to since a 429; 0 when not paced.
	Rate float64 `json:"rate"`
	// PausedUntil is when a pause it asked for ends; zero when none.
	PausedUntil time.Time `json:"paused_until,omitzero"`
	Silent      bool      `json:"silent"`
	Circuit     string    `json:"circuit"`
	// Deferred counts its deliveries this process deferred through the
	// retry tiers; Returned those it read back. Their difference, summed
	// over the pods, is its deferred backlog.
	Deferred int64 `json:"deferred"`
	Returned int64 `json:"returned"`
	// DeferredAge is how long the last deferred delivery read back had
	// waited since its first deferral.
	DeferredAge time.Duration `json:"deferred_age_ns"`
}

// Endpoints reports every endpoint the Sender has sent to, by origin.
func (s *Sender) Endpoints() []EndpointStatus {
	s.endpoints.mu.RLock()
	es := make([]*endpoint, 0, len(s.endpoints.byOrigin))
	names := make([]string, 0, len(s.endpoints.byOrigin))
	for name, e := range s.endpoints.byOrigin {
		es = append(es, e)
		names = append(names, name)
	}
	s.endpoints.mu.RUnlock()
	out := make([]EndpointStatus, len(es))
	for i, e := range es {
		out[i] = e.status(names[i])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Endpoint < out[j].Endpoint })
	return out
}

// Deferred counts one of rawURL's deliveries deferred through the retry
// tiers (its endpoint's pause, its full queue, or a 429).
func (s *Sender) Deferred(rawURL string) {
	e := s.endpoints.get(rawURL)
	e.mu.Lock()
	e.deferred++
	e.mu.Unlock()
}

// Returned counts a deferred delivery to rawURL read back from the retry
// tiers, waited since its first deferral.
func (s *Sender) Returned(rawURL string, waited time.Duration) {
	e := s.endpoints.get(rawURL)
	e.mu.Lock()
	e.returned++
	e.deferredAge = waited
	e.mu.Unlock()
}

// WindowFull is told that a source window is full (consumer.WindowWatcher,
// through the Fanout): each endpoint defers what waits for it beyond what
// it may hold now, as a new delivery to it would have made it do.
func (s *Sender) WindowFull() { s.endpoints.windowFull() }

func (e *endpoint) status(name string) EndpointStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := EndpointStatus{
		Endpoint: name, Limit: e.lim.limit(), Ceiling: e.cfg.ceiling,
		InFlight: e.inflight.n, Queued: e.waiting.n, Rate: e.rate.rate(),
		Silent: e.silent, Circuit: e.state.String(),
		Deferred: e.deferred, Returned: e.returned, DeferredAge: e.deferredAge,
	}
	if now := e.now(); now.Before(e.pausedUntil) {
		st.PausedUntil = e.pausedUntil
	}
	return st
}
