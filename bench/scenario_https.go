package main

import "context"

// scenarioHTTPS: the fast drain (200,000 events × 2 subscriptions) against
// HTTPS receivers whose certificate a CA made for the run signs, offering
// HTTP/1.1 only or HTTP/2 too. webhookd trusts the CA through SSL_CERT_FILE:
// it has no delivery CA option, and Go reads that variable for the
// system's roots.
func (b *bench) scenarioHTTPS(h2 bool) func(context.Context, *scenarioResult) error {
	return func(ctx context.Context, res *scenarioResult) error {
		tc, err := newReceiverTLS(b.tmp, h2)
		if err != nil {
			return err
		}
		recvs, closeAll, err := b.receivers(res, recvSpec{name: "tls-a", tls: tc}, recvSpec{name: "tls-b", tls: tc})
		if err != nil {
			return err
		}
		defer closeAll()
		events := b.n(200_000)
		dr, err := b.drain(ctx, res, drainSpec{events: events, receivers: recvs,
			env: map[string]string{"SSL_CERT_FILE": tc.caFile}})
		if dr.unique == 0 {
			return err
		}
		cpu10k := dr.stats.CPUSeconds / float64(dr.unique) * 10_000
		if b.fastRate > 0 {
			res.add("deliveries/s ÷ plain fast", dr.rate/b.fastRate, "ratio", "%.3f")
			res.add("CPU-s per 10k ÷ plain fast", cpu10k/b.fastCPU10k, "ratio", "%.2f")
		} else {
			res.note("run with the fast scenario for the ratios to plain HTTP")
		}
		var conns, hs, resumed, reqs, h2reqs int64
		for _, r := range recvs {
			conns += r.tls.conns.Load()
			hs += r.tls.handshakes.Load()
			resumed += r.tls.resumed.Load()
			t := r.current()
			reqs += t.requests.Load()
			h2reqs += t.h2.Load()
		}
		res.add("TLS handshakes (server side)", float64(hs), "handshakes", "%.0f")
		res.add("connections opened", float64(conns), "connections", "%.0f")
		res.add("requests", float64(reqs), "requests", "%.0f")
		res.add("requests per connection", float64(reqs)/float64(max(conns, 1)), "requests", "%.0f")
		proto := "HTTP/1.1 only (ALPN http/1.1)"
		if h2 {
			proto = "HTTP/2 offered (ALPN h2, http/1.1)"
		}
		res.note("%s; 2 receivers on 127.0.0.1, ECDSA P-256 leaf signed by a CA made for the run, handed to webhookd as SSL_CERT_FILE; %d of %d requests over HTTP/2; %d handshakes resumed a session",
			proto, h2reqs, reqs, resumed)
		res.note("handshakes counted by GetConfigForClient (one per ClientHello), connections by ConnState(StateNew), requests by the handler")
		if h2 && h2reqs == 0 {
			res.note("webhookd did not negotiate HTTP/2 although the receivers offered it")
		}
		return err
	}
}
