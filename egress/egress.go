// Package egress decides which network addresses webhookd may send
// webhooks to. Subscription URLs are chosen by partners, and webhookd runs
// inside the platform's cluster: without a guard, a URL such as
// http://169.254.169.254/ or one whose name resolves to 10.0.0.5 would make
// webhookd a proxy into the internal network (SSRF).
//
// The check runs twice: on the URL when a subscription is written (a literal
// address in a blocked range is refused with the rule's name), and on every
// resolved address at connect time (Policy.Control, for net.Dialer), which
// also catches names that resolve, or later re-resolve, to a blocked address.
package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// Rule is one blocked range and why it is blocked.
type Rule struct {
	Prefix netip.Prefix
	Name   string
}

// blocked lists the ranges no delivery may connect to unless
// delivery.allowed_cidrs opens them.
var blocked = []Rule{
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified / this network (0.0.0.0/8)"},
	{netip.MustParsePrefix("10.0.0.0/8"), "private network (RFC 1918, 10.0.0.0/8)"},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (RFC 6598, 100.64.0.0/10)"},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback (127.0.0.0/8)"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local (169.254.0.0/16, includes cloud metadata 169.254.169.254)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "private network (RFC 1918, 172.16.0.0/12)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments (192.0.0.0/24)"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation (TEST-NET-1, 192.0.2.0/24)"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation (TEST-NET-2, 198.51.100.0/24)"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation (TEST-NET-3, 203.0.113.0/24)"},
	{netip.MustParsePrefix("192.168.0.0/16"), "private network (RFC 1918, 192.168.0.0/16)"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking network (198.18.0.0/15)"},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast (224.0.0.0/4)"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved and broadcast (240.0.0.0/4)"},
	{netip.MustParsePrefix("::/128"), "IPv6 unspecified (::)"},
	{netip.MustParsePrefix("::1/128"), "IPv6 loopback (::1)"},
	{netip.MustParsePrefix("fc00::/7"), "IPv6 unique local (fc00::/7)"},
	{netip.MustParsePrefix("fe80::/10"), "IPv6 link-local (fe80::/10)"},
	{netip.MustParsePrefix("fec0::/10"), "IPv6 site-local (fec0::/10, deprecated but still routed by some networks)"},
	{netip.MustParsePrefix("2001::/32"), "Teredo tunnelling (2001::/32)"},
	{netip.MustParsePrefix("ff00::/8"), "IPv6 multicast (ff00::/8)"},
}

// Ranges with an IPv4 address inside: the embedded address is what is
// reached, so it is checked too.
var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	nat64L  = netip.MustParsePrefix("64:ff9b:1::/48") // local-use NAT64 (RFC 8215)
	sixTo4  = netip.MustParsePrefix("2002::/16")
	compat4 = netip.MustParsePrefix("::/96") // deprecated IPv4-compatible addresses
)

// BlockedError says that an address was refused, and by which rule. It
// names the address, never the URL (whose query may carry a token).
type BlockedError struct {
	Addr netip.Addr
	// Host is set instead of Addr for a name refused as such (localhost).
	Host string
	Rule string
}

func (e *BlockedError) Error() string {
	what := "address " + e.Addr.String()
	if e.Host != "" {
		what = "host " + e.Host
	}
	msg := fmt.Sprintf("%s is blocked by the egress policy: %s", what, e.Rule)
	switch {
	case e.Host != "":
		// The name stands for 127.0.0.1 (see CheckURL).
		return msg + "; " + allowedCIDRs + " opens it with 127.0.0.0/8 or 127.0.0.1/32 (for IPv6 loopback, write [::1] in the URL and open ::1/128)"
	case e.Addr.IsValid():
		return msg + "; " + allowedCIDRs + " opens it with a range that holds it, such as " + netip.PrefixFrom(e.Addr, e.Addr.BitLen()).String()
	}
	return msg
}

// allowedCIDRs names the option that opens a blocked range, as the file and
// the environment spell it (config.EnvName: config imports this package).
const allowedCIDRs = "delivery.allowed_cidrs (WEBHOOKD_DELIVERY_ALLOWED_CIDRS)"

// localhostAddr is what a localhost name is checked as: every system
// resolves localhost to 127.0.0.1, not every one also to ::1. When the
// resolver gives ::1 as well and only 127.0.0.1 is open, the dialer falls
// back from the refused address to the open one.
var localhostAddr = netip.MustParseAddr("127.0.0.1")

// ErrHTTPSRequired is returned for a plain-http URL when
// delivery.require_https is set.
var ErrHTTPSRequired = errors.New("must use https: delivery.require_https (WEBHOOKD_DELIVERY_REQUIRE_HTTPS) is set")

// Policy is the deployment's egress policy. The zero value blocks every
// listed range and allows plain http.
type Policy struct {
	allowed      []netip.Prefix
	requireHTTPS bool
}

// New builds a policy. allowedCIDRs are ranges opened despite the rules
// (development, tests, a partner on a private link); each must be a CIDR
// such as 10.1.0.0/16 or ::1/128.
func New(allowedCIDRs []string, requireHTTPS bool) (Policy, error) {
	p := Policy{requireHTTPS: requireHTTPS}
	for _, c := range allowedCIDRs {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return Policy{}, fmt.Errorf("%q is not a CIDR range such as 10.1.0.0/16: %w", c, err)
		}
		p.allowed = append(p.allowed, pfx.Masked())
	}
	return p, nil
}

// CheckAddr returns a *BlockedError when addr may not be connected to.
func (p Policy) CheckAddr(addr netip.Addr) error {
	if !addr.IsValid() {
		return &BlockedError{Addr: addr, Rule: "not a valid IP address"}
	}
	addr = addr.WithZone("")
	for _, a := range p.allowed {
		if a.Contains(addr) || (addr.Is4In6() && a.Contains(addr.Unmap())) {
			return nil
		}
	}
	if rule := blockedRule(addr); rule != "" {
		return &BlockedError{Addr: addr, Rule: rule}
	}
	return nil
}

func blockedRule(addr netip.Addr) string {
	if addr.Is4In6() {
		return blockedRule(addr.Unmap())
	}
	for _, r := range blocked {
		if r.Prefix.Contains(addr) {
			return r.Name
		}
	}
	if addr.Is6() {
		b := addr.As16()
		switch {
		case nat64.Contains(addr), nat64L.Contains(addr), compat4.Contains(addr):
			if rule := blockedRule(netip.AddrFrom4([4]byte(b[12:16]))); rule != "" {
				return "IPv4 embedded in IPv6: " + rule
			}
		case sixTo4.Contains(addr):
			if rule := blockedRule(netip.AddrFrom4([4]byte(b[2:6]))); rule != "" {
				return "IPv4 embedded in 6to4: " + rule
			}
		}
	}
	return ""
}

// CheckURL vets a subscription URL before it is stored: an absolute http or
// https URL (https only when required), whose host, when it is a literal IP
// address, is not blocked. localhost (and *.localhost) is checked as
// 127.0.0.1, the address it resolves to everywhere: it passes when the
// policy opens that. Any other host name is checked when it is resolved, at
// every connection (as localhost is too).
func (p Policy) CheckURL(raw string) error {
	// The parse error would quote the URL: report the rule only.
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" || u.Hostname() == "" {
		return errors.New("must be an absolute http or https URL")
	}
	if p.requireHTTPS && u.Scheme != "https" {
		return ErrHTTPSRequired
	}
	host := u.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		return p.CheckAddr(addr)
	}
	// Forms that resolvers read as numbers: 2130706433, 0x7f.1, 017700000001.
	if looksNumeric(host) {
		return errors.New("host must be a DNS name or a dotted-quad/IPv6 address, not a numeric or octal/hex form")
	}
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		if p.CheckAddr(localhostAddr) == nil {
			return nil // Control still checks the address actually dialled
		}
		return &BlockedError{Host: host, Rule: "loopback (localhost, 127.0.0.1)"}
	}
	return nil
}

// looksNumeric reports whether host is made only of digits, dots and hex
// notation: not a DNS name, and read as an address by some resolvers.
func looksNumeric(host string) bool {
	if host == "" {
		return false
	}
	lower := strings.ToLower(host)
	for _, label := range strings.Split(strings.TrimSuffix(lower, "."), ".") {
		if label == "" {
			return false
		}
		l := strings.TrimPrefix(label, "0x")
		for _, r := range l {
			isDigit := r >= '0' && r <= '9'
			isHex := strings.HasPrefix(label, "0x") && r >= 'a' && r <= 'f'
			if !isDigit && !isHex {
				return false
			}
		}
	}
	return true
}

// Control is a net.Dialer Control function: it runs after name resolution,
// just before each connect, with the address actually dialled, so a name
// that resolves (or re-resolves) to a blocked address is refused too.
func (p Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("egress: cannot read dialled address %q: %w", address, err)
	}
	return p.CheckAddr(ap.Addr())
}

// IsHTTPS reports whether rawURL's scheme is https, in any case (URL
// schemes are case-insensitive: HTTPS://host/ is https).
func IsHTTPS(rawURL string) bool {
	return len(rawURL) >= 6 && strings.EqualFold(rawURL[:6], "https:")
}

// RequiresHTTPS reports whether plain-http URLs are refused.
func (p Policy) RequiresHTTPS() bool { return p.requireHTTPS }
