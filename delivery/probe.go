package delivery

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/unibo/webhookd/egress"
)

// ProbeResult is a partner's answer to one probe request.
type ProbeResult struct {
	Status   int
	Duration time.Duration
	// Excerpt is the start of the response body.
	Excerpt string
	Err     error
}

// ProbeWith is Probe under the egress policy guard, as a ProbeFunc.
func ProbeWith(guard egress.Policy) ProbeFunc {
	return func(ctx context.Context, ep Endpoint, body []byte, timeout time.Duration) ProbeResult {
		return Probe(ctx, guard, ep, body, timeout)
	}
}

// Probe sends one request exactly as a delivery would (same headers, no
// redirects followed) and returns the answer with an excerpt of its body:
// partner tooling, not the delivery path.
// The egress policy applies as it does to deliveries.
func Probe(ctx context.Context, guard egress.Policy, ep Endpoint, body []byte, timeout time.Duration) ProbeResult {
	if ep.signingErr != nil {
		return ProbeResult{Err: ep.signingErr}
	}
	if guard.RequiresHTTPS() && !egress.IsHTTPS(ep.URL) {
		return ProbeResult{Err: &BlockedError{Err: egress.ErrHTTPSRequired}}
	}
	client := &http.Client{
		Transport: &http.Transport{
			DialContext:            guardedDialer(guard, timeout).DialContext,
			DisableCompression:     true,
			Proxy:                  nil,
			MaxResponseHeaderBytes: maxResponseHeaderBytes,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	req, err := newRequest(ctx, ep, body)
	if err != nil {
		return ProbeResult{Err: err}
	}
	resp, err := client.Do(req)
	if err != nil {
		return ProbeResult{Duration: time.Since(start), Err: transportError(ctx, err)}
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	return ProbeResult{Status: resp.StatusCode, Duration: time.Since(start), Excerpt: string(b)}
}
