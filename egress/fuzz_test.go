package egress

import (
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// FuzzCheckURL: whatever the URL, CheckURL does not panic, and a URL it
// accepts is http(s) with a host that is either a DNS name or an address
// CheckAddr accepts, so no literal blocked address slips through in any
// spelling the URL parser understands.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://partner.example/hook", "http://127.0.0.1/", "http://[::ffff:169.254.169.254]/",
		"http://0x7f.0.0.1/", "http://2130706433/", "http://[fe80::1%25eth0]:8080/", "HTTP://LOCALHOST/",
		"http://127.1/", "http://[::]/", "http://0/", "https://user:pw@10.0.0.1/", "//evil.example/",
	} {
		f.Add(s)
	}
	var p Policy
	f.Fuzz(func(t *testing.T, raw string) {
		if p.CheckURL(raw) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
			t.Fatalf("accepted %q, which is not an absolute http(s) URL", raw)
		}
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); err == nil && p.CheckAddr(a) != nil {
			t.Fatalf("accepted %q, a blocked literal address", raw)
		}
		if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
			t.Fatalf("accepted %q", raw)
		}
	})
}
