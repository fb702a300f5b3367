// Package delivery sends the Webhook Integration Guide's HTTP request to a
// partner endpoint and fans one event out to every matching subscription.
package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/egress"
	"github.com/unibo/webhookd/subscriptions"
)

// UserAgent is the User-Agent the guide tells partners to expect.
const UserAgent = "Unibo-Webhooks/1.0"

// Header values shared by every request; the transport only reads them.
var (
	contentTypeJSON = []string{"application/json"}
	userAgent       = []string{UserAgent}
)

// Endpoint is where one subscription's deliveries go.
type Endpoint struct {
	SubscriptionID string
	URL            string
	APIKey         string
	// MaxRate caps the subscription's deliveries per second in this pod;
	// 0: no cap.
	MaxRate float64
	// WebhookID is sent as the webhook-id header: the same for every
	// attempt of one event to one subscription.
	WebhookID string
	// SigningKeys, when any, sign the request with the Standard Webhooks
	// headers webhook-timestamp and webhook-signature (one signature per key).
	SigningKeys [][]byte
	// signingErr is why the subscription's secret cannot sign: the delivery
	// fails rather than go out unsigned.
	signingErr error
}

// EndpointOf is where sub's deliveries go, signed with the keys valid at now.
func EndpointOf(sub *subscriptions.Subscription, webhookID string, now time.Time) Endpoint {
	ep := Endpoint{SubscriptionID: sub.ID, URL: sub.URL, APIKey: sub.APIKey, MaxRate: sub.MaxRate, WebhookID: webhookID}
	keys, err := sub.SigningKeys(now)
	if err != nil {
		ep.signingErr = &SigningError{Err: err}
	}
	ep.SigningKeys = keys
	return ep
}

// Result is the outcome of one delivery attempt.
type Result struct {
	// Status is the HTTP status, 0 when no response arrived.
	Status   int
	Duration time.Duration
	// Err is nil exactly when the partner answered 2xx.
	Err error
	// RetryAfter is the partner's Retry-After on a 429 or 503.
	RetryAfter time.Duration
}

// OK reports whether the partner acknowledged the delivery with a 2xx.
func (r Result) OK() bool { return r.Err == nil }

// StatusError is a non-2xx answer from the partner.
type StatusError struct{ Status int }

func (e *StatusError) Error() string {
	if e.Status >= 300 && e.Status < 400 {
		return fmt.Sprintf("partner answered %d (redirects are not followed)", e.Status)
	}
	return fmt.Sprintf("partner answered %d", e.Status)
}

// BlockedError is a delivery refused by the egress policy: its address is
// in a blocked range, or it is plain http where https is required. Nothing
// was sent.
type BlockedError struct{ Err error }

func (e *BlockedError) Error() string { return "delivery refused: " + e.Err.Error() }
func (e *BlockedError) Unwrap() error { return e.Err }

// SigningError is a delivery that was not sent because the subscription's
// signing secret is unusable: sending it unsigned would downgrade what the
// partner was promised. It is not retried (it would fail the same way);
// fix the secret, then replay the dead letters.
type SigningError struct{ Err error }

func (e *SigningError) Error() string { return "not sent: " + e.Err.Error() }
func (e *SigningError) Unwrap() error { return e.Err }

// ErrTimeout marks a delivery that got no complete answer within the
// configured delivery timeout.
var ErrTimeout = errors.New("delivery timed out")

// Sender POSTs payloads over one shared keep-alive transport, each
// endpoint's requests scheduled by its endpoint (endpoint.go): an adaptive
// concurrency limit of at most delivery.endpoint_concurrency, a rate once
// it answered 429, its pauses and its circuit breaker.
type Sender struct {
	// transport sends each request as is, without an http.Client: the
	// guide's contract is one POST to the subscribed URL, a 3xx being the
	// partner's answer and never followed, which is exactly what RoundTrip
	// does. The client would only add its redirect bookkeeping (a copy of
	// the headers and the URL, a request list: 6 allocations a delivery).
	transport    http.RoundTripper
	requireHTTPS bool
	timeout      time.Duration
	maxResp      int64
	// retryAfterMax caps the pause a partner's Retry-After asks for.
	retryAfterMax time.Duration
	endpoints     *endpoints
	rates         *subscriptionRates
}

// CircuitRecorder is told when an endpoint's circuit opens or closes.
type CircuitRecorder interface {
	Circuit(endpoint string, open bool)
}

// NewSender builds a Sender from the delivery configuration. Circuit state
// changes are logged on log and, when circuits is not nil, recorded there.
func NewSender(cfg config.Delivery, log *zap.Logger, circuits CircuitRecorder) *Sender {
	guard := cfg.Egress()
	transport := &http.Transport{
		DialContext:           guardedDialer(guard, cfg.Timeout).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no global cap; the per-host caps below bound it
		MaxIdleConnsPerHost:   cfg.MaxIdleConnsPerHost,
		MaxConnsPerHost:       cfg.EndpointConcurrency,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// A partner's headers are read into memory: bound them like bodies.
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// The guide lists the headers partners receive; Go would otherwise
		// add Accept-Encoding: gzip.
		DisableCompression: true,
	}
	return &Sender{
		transport:     transport,
		requireHTTPS:  guard.RequiresHTTPS(),
		timeout:       cfg.Timeout,
		maxResp:       cfg.MaxResponseBytes,
		retryAfterMax: cfg.Retry.RetryAfterMax,
		rates:         newSubscriptionRates(time.Now),
		endpoints: newEndpoints(endpointConfig{
			ceiling:  cfg.EndpointConcurrency,
			maxQueue: cfg.EndpointQueue,
			timeout:  cfg.Timeout,
			breaker:  cfg.Breaker,
		}, func(origin string, to circuitState, reason string) {
			log.Warn("endpoint circuit "+to.String(), zap.String("endpoint", origin), zap.String("reason", reason))
			if circuits != nil {
				circuits.Circuit(origin, to != closed)
			}
		}, func(origin, what, detail string) {
			log.Warn("endpoint "+what, zap.String("endpoint", origin), zap.String("reason", detail))
		}),
	}
}

// maxResponseHeaderBytes bounds the headers read from a partner.
const maxResponseHeaderBytes = 64 << 10

// guardedDialer dials only addresses the egress policy allows: the check
// runs on each resolved address just before connect. The transports that use
// it have no proxy, so the address checked is the partner's.
func guardedDialer(guard egress.Policy, timeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: guard.Control}
}

// Close releases idle connections.
func (s *Sender) Close() {
	if t, ok := s.transport.(interface{ CloseIdleConnections() }); ok {
		t.CloseIdleConnections()
	}
}

// Send POSTs body to the endpoint with exactly the guide's headers, once
// the subscription's max_rate and the endpoint's scheduling let it. A
// delivery to an endpoint whose circuit is open is not attempted and fails
// with ErrCircuitOpen; one the endpoint or the rate cannot take now fails
// with PausedError or BusyError, and is deferred.
func (s *Sender) Send(ctx context.Context, ep Endpoint, body []byte) Result {
	start := time.Now()
	if ep.signingErr != nil {
		return Result{Err: ep.signingErr}
	}
	if s.requireHTTPS && !egress.IsHTTPS(ep.URL) {
		// Stored before delivery.require_https was set.
		return Result{Err: &BlockedError{Err: egress.ErrHTTPSRequired}}
	}
	if err := s.rates.admit(ctx, ep.SubscriptionID, ep.MaxRate); err != nil {
		return Result{Duration: time.Since(start), Err: err}
	}
	p, err := s.endpoints.get(ep.URL).acquire(ctx)
	if err != nil {
		return Result{Duration: time.Since(start), Err: err}
	}
	// One context per request: the timeout starts once a slot is held.
	reqCtx, cancel := context.WithTimeout(ctx, s.timeout)
	res := s.post(reqCtx, ep, body)
	cancel()
	res.Duration = time.Since(start)
	p.done(s.answer(ctx, res))
	return res
}

// answer is what res says about its endpoint.
func (s *Sender) answer(ctx context.Context, res Result) answer {
	a := answer{breaker: classify(ctx, res), pause: s.pause(res)}
	a.throttled = res.Status == http.StatusTooManyRequests
	a.accepted = res.Status != 0 && !a.throttled
	switch {
	case ctx.Err() != nil, errors.As(res.Err, new(*BlockedError)), errors.As(res.Err, new(*SigningError)):
		a.limit = limitIgnore
	case a.breaker == timedOut, res.Status == 0 && res.Err != nil:
		a.limit = limitLoss
	case res.Status == http.StatusBadGateway, res.Status == http.StatusGatewayTimeout,
		res.Status == http.StatusServiceUnavailable && res.RetryAfter == 0:
		a.limit = limitLoss
	case a.throttled, res.Backpressure():
		a.limit = limitIgnore // the rate and the pause answer those
	default:
		a.limit = limitOK
	}
	return a
}

// Backpressure reports whether res is the partner asking to be sent less
// for now rather than failing: a 429, or a 503 with a Retry-After (a 503
// without one is an endpoint down).
func (r Result) Backpressure() bool {
	return r.Status == http.StatusTooManyRequests || (r.Status == http.StatusServiceUnavailable && r.RetryAfter > 0)
}

// pause is how long the endpoint asked for no requests: its Retry-After,
// capped at delivery.retry.retry_after_max, or 1 s without one.
func (s *Sender) pause(res Result) time.Duration {
	if !res.Backpressure() {
		return 0
	}
	return Policy{retryAfterMax: s.retryAfterMax}.pause(res)
}

// classify says what a result means for the endpoint's breaker.
func classify(ctx context.Context, res Result) outcome {
	switch {
	case res.Err == nil:
		return succeeded
	case ctx.Err() != nil:
		return neutral // we are shutting down; the partner did nothing wrong
	case errors.As(res.Err, new(*BlockedError)), errors.As(res.Err, new(*SigningError)):
		return neutral // refused here; the partner was never reached
	case errors.Is(res.Err, ErrTimeout):
		return timedOut
	case res.Backpressure():
		return neutral // the partner is up and asks for a pause: not an outage
	case res.Status == 0, res.Status >= 500, res.Status == http.StatusRequestTimeout:
		return failed
	}
	return neutral // a 4xx is the partner's answer about this request, not about its health
}

// newRequest builds the guide's request: a POST of body with exactly its
// headers, plus webhook-id, and the signature headers when signing.
func newRequest(ctx context.Context, ep Endpoint, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header = http.Header{
		"Content-Type": contentTypeJSON,
		"User-Agent":   userAgent,
	}
	if ep.WebhookID != "" {
		req.Header["Webhook-Id"] = []string{ep.WebhookID}
	}
	if len(ep.SigningKeys) > 0 {
		// A fresh timestamp per attempt: partners reject old ones (replay
		// protection), and a retry may come hours later.
		ts := time.Now().Unix()
		req.Header["Webhook-Timestamp"] = []string{strconv.FormatInt(ts, 10)}
		req.Header["Webhook-Signature"] = []string{signature(ep.SigningKeys, ep.WebhookID, ts, body)}
	}
	if ep.APIKey != "" {
		req.Header["Authorization"] = []string{"Bearer " + ep.APIKey}
	}
	return req, nil
}

func (s *Sender) post(ctx context.Context, ep Endpoint, body []byte) Result {
	req, err := newRequest(ctx, ep, body)
	if err != nil {
		return Result{Err: err}
	}
	resp, err := s.transport.RoundTrip(req)
	if err != nil {
		return Result{Err: transportError(ctx, err)}
	}
	// Drain (up to a cap) so the connection goes back to the pool; most
	// answers have no body, and need no reader for it.
	if resp.ContentLength != 0 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, s.maxResp))
	}
	_ = resp.Body.Close()
	res := Result{Status: resp.StatusCode}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		res.Err = &StatusError{Status: resp.StatusCode}
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		res.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return res
}

// transportError turns client errors into messages free of the URL's
// query string and names timeouts plainly.
func transportError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	var blocked *egress.BlockedError
	if errors.As(err, &blocked) {
		return &BlockedError{Err: blocked}
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("transport: %w", err)
}
