// Package admin is webhookd's admin HTTP API: the subscription table
// (list, get, create, update, enable, disable, delete, with the CLI's
// validation), send-test, and the dead-letter topic (list, replay). Every
// request needs `Authorization: Bearer <admin.token>`. It is off unless
// admin.addr is set; the worker then serves it beside the ops port.
//
// The routes are one table (routes), which builds the mux and which a test
// holds equal to the OpenAPI document (openapi.yaml, served at
// GET /v1/openapi.yaml). The document states every rule the handlers check;
// a Schemathesis run in the tests holds the two together.
package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/unibo/webhookd/config"
	"github.com/unibo/webhookd/delivery"
	"github.com/unibo/webhookd/subscriptions"
)

// OpenAPI is the API's OpenAPI 3 document.
//
//go:embed openapi.yaml
var OpenAPI []byte

// SubscriptionStore is what the API needs of the subscription table.
type SubscriptionStore interface {
	List(ctx context.Context, tenant string) ([]subscriptions.Subscription, error)
	Get(ctx context.Context, id string) (subscriptions.Subscription, error)
	Add(ctx context.Context, sub subscriptions.Subscription) (subscriptions.Subscription, error)
	Update(ctx context.Context, id string, change func(*subscriptions.Subscription) error) (subscriptions.Subscription, error)
	Delete(ctx context.Context, id string) error
}

var _ SubscriptionStore = (*subscriptions.Store)(nil)

// DeadLetters reads and replays the dead-letter topic.
type DeadLetters interface {
	// Read calls fn for each dead letter the filter matches, in topic
	// order, and returns how many unreadable records it skipped.
	Read(ctx context.Context, filter delivery.DeadLetterFilter, fn func(delivery.Record) error) (skipped int, err error)
	// Replay redelivers the dead letters of filter.SubscriptionID once
	// each, calling progress after each.
	Replay(ctx context.Context, filter delivery.DeadLetterFilter, progress func(delivery.Record, delivery.Result)) (delivery.ReplaySummary, error)
}

// Deps are what NewHandler builds the API from.
type Deps struct {
	Store       SubscriptionStore
	DeadLetters DeadLetters
	// Probe sends one send-test request; delivery.Probe in production.
	Probe delivery.ProbeFunc
	// Token is the bearer token every request must carry (admin.token).
	Token string
	Log   *zap.Logger
}

// Handler serves the admin API.
type Handler struct {
	store     SubscriptionStore
	dead      DeadLetters
	probe     delivery.ProbeFunc
	tokenHash [sha256.Size]byte
	log       *zap.Logger
	now       func() time.Time
	mux       *http.ServeMux
}

var _ http.Handler = (*Handler)(nil)

// route is one operation of the API: the OpenAPI document lists exactly
// these methods and paths.
type route struct {
	method, path string
	handle       func(h *Handler, w http.ResponseWriter, r *http.Request) error
}

// routes is the API. Paths use the same {name} wildcards as OpenAPI.
var routes = []route{
	{http.MethodGet, "/v1/openapi.yaml", (*Handler).openAPI},
	{http.MethodGet, "/v1/subscriptions", (*Handler).listSubscriptions},
	{http.MethodPost, "/v1/subscriptions", (*Handler).createSubscription},
	{http.MethodGet, "/v1/subscriptions/{id}", (*Handler).getSubscription},
	{http.MethodPatch, "/v1/subscriptions/{id}", (*Handler).updateSubscription},
	{http.MethodDelete, "/v1/subscriptions/{id}", (*Handler).deleteSubscription},
	{http.MethodPost, "/v1/subscriptions/{id}/enable", (*Handler).enableSubscription},
	{http.MethodPost, "/v1/subscriptions/{id}/disable", (*Handler).disableSubscription},
	{http.MethodPost, "/v1/subscriptions/{id}/test", (*Handler).testSubscription},
	{http.MethodPost, "/v1/subscriptions/{id}/rotate-secret", (*Handler).rotateSecret},
	{http.MethodPost, "/v1/send-test", (*Handler).sendTest},
	{http.MethodGet, "/v1/dead-letters", (*Handler).listDeadLetters},
	{http.MethodPost, "/v1/dead-letters/replay", (*Handler).replay},
}

// Route is one operation of the API.
type Route struct{ Method, Path string }

// Routes lists the API's operations, as served and as documented.
func Routes() []Route {
	out := make([]Route, len(routes))
	for i, rt := range routes {
		out[i] = Route{Method: rt.method, Path: rt.path}
	}
	return out
}

// NewHandler builds the API. It refuses a token shorter than
// config.MinAdminTokenLen: an empty token must never open the API.
func NewHandler(d Deps) (*Handler, error) {
	if len(d.Token) < config.MinAdminTokenLen {
		return nil, fmt.Errorf("admin API: the token must be at least %d characters", config.MinAdminTokenLen)
	}
	if d.Store == nil || d.DeadLetters == nil || d.Probe == nil || d.Log == nil {
		return nil, errors.New("admin API: store, dead letters, probe and logger are required")
	}
	h := &Handler{
		store:     d.Store,
		dead:      d.DeadLetters,
		probe:     d.Probe,
		tokenHash: sha256.Sum256([]byte(d.Token)),
		log:       d.Log,
		now:       time.Now,
		mux:       http.NewServeMux(),
	}
	for _, rt := range routes {
		handle := rt.handle
		h.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			if err := handle(h, w, r); err != nil {
				h.writeError(w, r, err)
			}
		})
	}
	return h, nil
}

// ServeHTTP authenticates the request, then routes it, and logs one line.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if !h.authorized(r) {
		rec.Header().Set("WWW-Authenticate", `Bearer realm="webhookd-admin"`)
		writeJSON(rec, http.StatusUnauthorized, errorBody{Error: "missing or invalid bearer token"})
	} else {
		h.route(rec, r)
	}
	fields := []zap.Field{
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", rec.status),
		zap.Duration("duration", time.Since(start)), zap.String("remote_addr", r.RemoteAddr),
	}
	if rec.status == http.StatusUnauthorized {
		h.log.Warn("admin request refused: missing or invalid bearer token", fields...)
		return
	}
	h.log.Info("admin request", fields...)
}

// route serves r with the route the mux matches. The mux's own answers
// to an unknown path (404) or method (405, with its Allow header) are
// plain text; they go out as the API's JSON errors instead.
func (h *Handler) route(w http.ResponseWriter, r *http.Request) {
	if _, pattern := h.mux.Handler(r); pattern != "" {
		h.mux.ServeHTTP(w, r) // sets the path values, which Handler does not
		return
	}
	own := &capturedAnswer{header: http.Header{}}
	h.mux.ServeHTTP(own, r)
	switch own.status {
	case http.StatusNotFound:
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no such route: %s %s (the routes are in GET /v1/openapi.yaml)", r.Method, r.URL.Path)})
	case http.StatusMethodNotAllowed:
		allow := own.header.Get("Allow")
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: fmt.Sprintf("method %s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow)})
	default: // a redirect to the cleaned path: as the mux wrote it
		for k, vs := range own.header {
			w.Header()[k] = vs
		}
		w.WriteHeader(own.status)
		_, _ = w.Write(own.body.Bytes())
	}
}

// capturedAnswer keeps what the mux answers by itself, which is short.
type capturedAnswer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *capturedAnswer) Header() http.Header { return c.header }

func (c *capturedAnswer) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *capturedAnswer) Write(b []byte) (int, error) {
	c.WriteHeader(http.StatusOK)
	return c.body.Write(b)
}

// authorized compares the bearer token in constant time (of hashes, so the
// token's length does not leak either).
func (h *Handler) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1
}

func (h *Handler) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/yaml")
	_, err := w.Write(OpenAPI)
	return err
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController and MaxBytesReader reach the
// underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
