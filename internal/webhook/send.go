package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"syscall"
	"time"
)

// Timeout is how long one delivery attempt may take in all.
const Timeout = 10 * time.Second

// ErrPrivateTarget means the endpoint resolved to an address that is not
// public (loopback, private, link-local, ...), which is refused unless
// WEBHOOK_ALLOW_PRIVATE is set.
var ErrPrivateTarget = errors.New("target address is not public (set WEBHOOK_ALLOW_PRIVATE=true to allow)")

// Sender posts signed webhook requests.
type Sender struct {
	client *http.Client
	now    func() time.Time
}

// SenderOptions tune a Sender.
type SenderOptions struct {
	AllowPrivate bool          // allow loopback and private targets (web dev, tests)
	Timeout      time.Duration // per attempt; default Timeout
	Now          func() time.Time
}

// NewSender builds a Sender. The address check runs when the connection is
// dialled, on the address actually resolved, so a public name that resolves
// to a private address is refused too.
func NewSender(opts SenderOptions) *Sender {
	if opts.Timeout <= 0 {
		opts.Timeout = Timeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		if opts.AllowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !Public(ap.Addr()) {
			return ErrPrivateTarget
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil, // never through a proxy: the check above must see the real target
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: opts.Timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Sender{now: opts.Now, client: &http.Client{Transport: tr, Timeout: opts.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 can reach anything
	netip.MustParsePrefix("2001:db8::/32"),
}

// Public reports whether addr is a public unicast address.
func Public(addr netip.Addr) bool {
	addr = addr.Unmap()
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// CheckURL refuses endpoint URLs that are not absolute http(s) URLs with a
// host (and without user:password, which would end up in logs).
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("the URL must start with http:// or https://")
	}
	if u.Hostname() == "" {
		return errors.New("the URL has no host")
	}
	if u.User != nil {
		return errors.New("the URL must not contain a user name or password")
	}
	return nil
}

// Result is the outcome of one attempt.
type Result struct {
	At         time.Time
	StatusCode int // 0: no response
	Latency    time.Duration
	Err        error // nil only for a 2xx answer
}

// Send posts body to url, signed with secret, as message msgID. Only a 2xx
// answer counts as delivered; a redirect is a failure and is not followed.
func (s *Sender) Send(ctx context.Context, rawURL, secret, msgID string, body []byte) Result {
	start := s.now()
	res := Result{At: start}
	if err := CheckURL(rawURL); err != nil {
		res.Err = err
		return res
	}
	sig, err := Sign(secret, msgID, start, body)
	if err != nil {
		res.Err = err
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		res.Err = errors.New("cannot build the request")
		return res
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "teslalink-webhooks")
	req.Header.Set("webhook-id", msgID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(start.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	t0 := time.Now()
	resp, err := s.client.Do(req)
	res.Latency = time.Since(t0)
	if err != nil {
		res.Err = cleanErr(err)
		return res
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // drained for connection reuse
	resp.Body.Close()
	res.StatusCode = resp.StatusCode
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.Err = fmt.Errorf("answered %d (a redirect, not followed)", resp.StatusCode)
	default:
		res.Err = fmt.Errorf("answered %d", resp.StatusCode)
	}
	return res
}

// cleanErr drops the URL from a client error (its query may hold the
// receiver's own secret) and names timeouts and refusals plainly.
func cleanErr(err error) error {
	if errors.Is(err, ErrPrivateTarget) {
		return ErrPrivateTarget
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return errors.New("timed out")
		}
		return ue.Err
	}
	return err
}
