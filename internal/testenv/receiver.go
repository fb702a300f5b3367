package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Request is one webhook a Receiver got.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	At     time.Time
}

// Receiver is a partner endpoint for tests: it records every request and
// answers with what Respond returns (200 by default).
type Receiver struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []Request
	// Respond decides the answer; it may sleep to play a slow partner.
	Respond func(r Request) int
	// header, when set, decides the answer's headers (Retry-After).
	header func(r Request) http.Header
}

// NewReceiver starts a receiver, closed at the end of the test.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	rc := &Receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, At: time.Now()}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, req)
		respond, header := rc.Respond, rc.header
		rc.mu.Unlock()
		status := http.StatusOK
		if respond != nil {
			status = respond(req)
		}
		if header != nil {
			for k, v := range header(req) {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Server.Close)
	return rc
}

// SetRespond replaces the answer function.
func (rc *Receiver) SetRespond(f func(Request) int) {
	rc.mu.Lock()
	rc.Respond = f
	rc.mu.Unlock()
}

// SetHeader makes the receiver answer with the headers f returns, such as a
// Retry-After.
func (rc *Receiver) SetHeader(f func(Request) http.Header) {
	rc.mu.Lock()
	rc.header = f
	rc.mu.Unlock()
}

// Requests returns a copy of what arrived so far, in arrival order.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.reqs...)
}

// Count is the number of requests so far.
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}
