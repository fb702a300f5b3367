package embedded

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// ReceiverOptions make the receiver answer as the Webhook Integration Guide
// asks partners to, so that webhookd's send-test scenarios pass against it.
type ReceiverOptions struct {
	// APIKey, when set, must come as Authorization: Bearer <key>; 401 otherwise.
	APIKey string
	// Verify, when set, checks a delivery's signature (Standard Webhooks);
	// 401 when it returns an error.
	Verify func(h http.Header, body []byte) error
}

// Receiver is a local webhook endpoint that prints every request it gets,
// its headers and its body exactly as received, and answers as the guide
// recommends: 401 for a wrong API key or signature, 400 for a body that is
// not a JSON object or has no event_type, 200 otherwise.
type Receiver struct {
	srv  *http.Server
	ln   net.Listener
	out  io.Writer
	opts ReceiverOptions
	mu   sync.Mutex
	n    int
}

// StartReceiver listens on a random loopback port and answers 200 to every
// JSON delivery with an event_type.
func StartReceiver(out io.Writer) (*Receiver, error) {
	return ListenReceiver("127.0.0.1:0", out, ReceiverOptions{})
}

// ListenReceiver is StartReceiver on a given address with opts, for the
// `receiver` command partners and docker-compose use.
func ListenReceiver(addr string, out io.Writer, opts ReceiverOptions) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start receiver: %w", err)
	}
	r := &Receiver{ln: ln, out: out, opts: opts}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is the webhook URL to subscribe.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() + "/webhooks/prizes" }

// Addr is the address the receiver listens on.
func (r *Receiver) Addr() string { return r.ln.Addr().String() }

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }

// maxBody is the most of a body the receiver reads; the guide's payloads
// are under 1 KiB.
const maxBody = 1 << 20

// ServeHTTP answers the delivery and prints it.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxBody))
	status, answer := http.StatusOK, `{"received":true}`
	if err != nil {
		status, answer = http.StatusBadRequest, fmt.Sprintf(`{"error":"reading the body: %s"}`, jsonText(err.Error()))
	} else {
		status, answer = r.judge(req.Header, body)
	}
	r.print(req, body, status, answer)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

// judge is the guide's endpoint logic: authentication first, then the
// payload.
func (r *Receiver) judge(h http.Header, body []byte) (int, string) {
	if r.opts.APIKey != "" {
		want := "Bearer " + r.opts.APIKey
		if subtle.ConstantTimeCompare([]byte(h.Get("Authorization")), []byte(want)) != 1 {
			return http.StatusUnauthorized, `{"error":"Unauthorized"}`
		}
	}
	if r.opts.Verify != nil {
		if err := r.opts.Verify(h, body); err != nil {
			return http.StatusUnauthorized, fmt.Sprintf(`{"error":"Invalid signature: %s"}`, jsonText(err.Error()))
		}
	}
	var payload map[string]json.RawMessage
	if json.Unmarshal(body, &payload) != nil {
		return http.StatusBadRequest, `{"error":"Invalid JSON"}`
	}
	var eventType string
	if json.Unmarshal(payload["event_type"], &eventType) != nil || eventType == "" {
		return http.StatusBadRequest, `{"error":"Invalid payload: no event_type"}`
	}
	return http.StatusOK, `{"received":true}`
}

// print writes one request: a title line with the answer (its body when
// not 200), the headers
// sorted, then the body exactly as received and a newline.
func (r *Receiver) print(req *http.Request, body []byte, status int, answer string) {
	names := make([]string, 0, len(req.Header))
	for k := range req.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	fmt.Fprintf(&b, "── webhook #%d: %s %s → %d", r.n, req.Method, req.URL.Path, status)
	if status != http.StatusOK {
		fmt.Fprintf(&b, " %s", answer)
	}
	b.WriteByte('\n')
	for _, k := range names {
		fmt.Fprintf(&b, "  %s: %s\n", k, strings.Join(req.Header[k], ", "))
	}
	b.Write(body)
	b.WriteByte('\n')
	_, _ = io.WriteString(r.out, b.String())
}

// jsonText escapes s for a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}
