package embedded

import (
	"bytes"
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

// Receiver is a local webhook endpoint that prints every request it gets,
// headers and pretty-printed body, and answers 200 as the guide recommends.
type Receiver struct {
	srv *http.Server
	ln  net.Listener
	out io.Writer
	mu  sync.Mutex
	n   int
}

// StartReceiver listens on a random loopback port.
func StartReceiver(out io.Writer) (*Receiver, error) {
	return ListenReceiver("127.0.0.1:0", out)
}

// URL is the webhook URL to subscribe.
func (r *Receiver) URL() string { return "http://" + r.ln.Addr().String() + "/webhooks/prizes" }

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }

// ServeHTTP prints the delivery.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	var pretty bytes.Buffer
	if json.Indent(&pretty, body, "  ", "  ") != nil {
		pretty.Reset()
		pretty.Write(body)
	}
	names := make([]string, 0, len(req.Header))
	for k := range req.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	r.mu.Lock()
	r.n++
	fmt.Fprintf(&b, "\n── webhook #%d: %s %s\n", r.n, req.Method, req.URL.Path)
	r.mu.Unlock()
	for _, k := range names {
		fmt.Fprintf(&b, "  %s: %s\n", k, strings.Join(req.Header[k], ", "))
	}
	fmt.Fprintf(&b, "  %s\n", pretty.String())
	_, _ = io.WriteString(r.out, b.String())
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"received":true}`))
}

// ListenReceiver is StartReceiver on a given address, for the `receiver`
// command partners and docker-compose use.
func ListenReceiver(addr string, out io.Writer) (*Receiver, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start receiver: %w", err)
	}
	r := &Receiver{ln: ln, out: out}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}
