package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckAddrBlocksInternalRanges(t *testing.T) {
	var p Policy
	for _, a := range []string{
		"127.0.0.1", "127.255.255.254", "10.0.0.5", "172.16.0.1", "172.31.255.255", "192.168.1.1",
		"169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255",
		"::1", "::", "fd00::1", "fc00::1", "fe80::1", "ff02::1",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::7f00:1",
		"fec0::1", "64:ff9b:1::a9fe:a9fe", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.10", "198.51.100.1", "203.0.113.9",
	} {
		err := p.CheckAddr(netip.MustParseAddr(a))
		var be *BlockedError
		if !errors.As(err, &be) {
			t.Errorf("%s: got %v, want a *BlockedError", a, err)
			continue
		}
		if be.Rule == "" || !strings.Contains(err.Error(), "delivery.allowed_cidrs") {
			t.Errorf("%s: error %q does not name the rule and the way out", a, err)
		}
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "192.169.0.1", "100.128.0.1", "2606:4700::1111", "64:ff9b::808:808"} {
		if err := p.CheckAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: public address refused: %v", a, err)
		}
	}
}

func TestMetadataRuleIsNamed(t *testing.T) {
	err := Policy{}.CheckAddr(netip.MustParseAddr("169.254.169.254"))
	if err == nil || !strings.Contains(err.Error(), "metadata") {
		t.Fatalf("got %v, want the link-local rule naming cloud metadata", err)
	}
}

func TestAllowedCIDRsOpenExactlyTheirRanges(t *testing.T) {
	p, err := New([]string{"127.0.0.0/8", " 10.1.0.0/16 "}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"127.0.0.1", "::ffff:127.0.0.1", "10.1.200.3"} {
		if err := p.CheckAddr(netip.MustParseAddr(a)); err != nil {
			t.Errorf("%s: refused although allowed: %v", a, err)
		}
	}
	for _, a := range []string{"10.2.0.1", "::1", "169.254.169.254"} {
		if err := p.CheckAddr(netip.MustParseAddr(a)); err == nil {
			t.Errorf("%s: allowed although outside the opened ranges", a)
		}
	}
	if _, err := New([]string{"10.0.0.0/33"}, false); err == nil {
		t.Error("a bad CIDR was accepted")
	}
	if _, err := New([]string{"localhost"}, false); err == nil {
		t.Error("a host name was accepted as a CIDR")
	}
}

func TestCheckURL(t *testing.T) {
	var p Policy
	https, _ := New(nil, true)
	cases := []struct {
		pol     Policy
		url     string
		wantErr string
	}{
		{p, "https://partner.example.com/webhooks", ""},
		{p, "http://partner.example.com:8080/hook?token=x", ""},
		{p, "https://93.184.216.34/hook", ""},
		{p, "ftp://partner.example.com/", "http or https"},
		{p, "file:///etc/passwd", "http or https"},
		{p, "gopher://127.0.0.1:6379/_FLUSHALL", "http or https"},
		{p, "http://127.0.0.1:6379/", "loopback"},
		{p, "http://[::1]/", "IPv6 loopback"},
		{p, "http://169.254.169.254/latest/meta-data/", "metadata"},
		{p, "http://10.0.0.5/", "RFC 1918"},
		{p, "http://[::ffff:10.0.0.5]/", "RFC 1918"},
		{p, "http://[fe80::1%25eth0]/", "link-local"},
		{p, "http://2130706433/", "numeric"},
		{p, "http://0x7f.1/", "numeric"},
		{p, "http://017700000001/", "numeric"},
		{p, "http://localhost:8080/", "localhost"},
		{p, "http://api.localhost/", "localhost"},
		{https, "http://partner.example.com/", "https"},
		{https, "https://partner.example.com/", ""},
	}
	for _, c := range cases {
		err := c.pol.CheckURL(c.url)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: refused: %v", c.url, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: got %v, want an error mentioning %q", c.url, err, c.wantErr)
		}
	}
}

// localhost is checked as 127.0.0.1, the address it resolves to everywhere:
// opening that opens it, and the refusal says which ranges do, with no
// advice that would not work (::1/128 alone would not: not every system
// resolves localhost to ::1).
func TestCheckURLLocalhostFollowsTheLoopbackRanges(t *testing.T) {
	for _, allowed := range [][]string{{"127.0.0.0/8"}, {"127.0.0.1/32"}, {"::1/128", "127.0.0.0/8"}} {
		p, _ := New(allowed, false)
		for _, u := range []string{"http://localhost:8080/hook", "http://LOCALHOST./", "http://api.localhost/"} {
			if err := p.CheckURL(u); err != nil {
				t.Errorf("allowed %v: %s refused: %v", allowed, u, err)
			}
		}
	}
	other, _ := New([]string{"10.0.0.0/8"}, false)
	v6, _ := New([]string{"::1/128"}, false)
	for _, p := range []Policy{{}, other, v6} {
		err := p.CheckURL("http://localhost:8080/")
		if err == nil || !strings.Contains(err.Error(), "delivery.allowed_cidrs (WEBHOOKD_DELIVERY_ALLOWED_CIDRS) opens it with 127.0.0.0/8 or 127.0.0.1/32 (for IPv6 loopback, write [::1] in the URL and open ::1/128)") {
			t.Errorf("%v", err)
		}
	}
	var p Policy
	if err := p.CheckURL("http://10.0.0.5/"); err == nil || !strings.Contains(err.Error(), "such as 10.0.0.5/32") {
		t.Errorf("literal address: %v", err)
	}
	if err := p.CheckAddr(netip.Addr{}); err == nil || strings.Contains(err.Error(), "allowed_cidrs") {
		t.Errorf("an invalid address cannot be opened, yet: %v", err)
	}
}

// The guard runs on the address actually dialled: a host name that resolves
// to loopback is refused at connect time, and nothing reaches the server.
func TestControlRefusesResolvedLoopbackAtConnectTime(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	var p Policy
	client := &http.Client{Transport: &http.Transport{
		DialContext: (&net.Dialer{Timeout: time.Second, Control: p.Control}).DialContext,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// "localhost" is resolved by the dialer, never checked as a URL here.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost:"+port+"/", nil)
	_, err := client.Do(req)
	var be *BlockedError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a *BlockedError from the dialer", err)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the server was reached %d times", n)
	}

	open, _ := New([]string{"127.0.0.0/8", "::1/128"}, false)
	client.Transport = &http.Transport{DialContext: (&net.Dialer{Timeout: time.Second, Control: open.Control}).DialContext}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://localhost:"+port+"/", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("allowed loopback refused: %v", err)
	}
	_ = resp.Body.Close()
}

// URL schemes are case-insensitive: what CheckURL accepts as https, the
// delivery path must treat as https too.
func TestIsHTTPSMatchesCheckURL(t *testing.T) {
	strict, _ := New(nil, true)
	for _, u := range []string{"https://a.example/", "HTTPS://a.example/", "HttpS://a.example/", "http://a.example/", "HTTP://a.example/"} {
		if accepted := strict.CheckURL(u) == nil; accepted != IsHTTPS(u) {
			t.Errorf("%s: CheckURL accepts %v, IsHTTPS %v", u, accepted, IsHTTPS(u))
		}
	}
}
