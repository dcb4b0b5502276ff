package handlers

import (
	"errors"
	"net"
	"time"

	"github.com/labstack/echo/v4"

	"teslalink/internal/apperr"
)

// limitByAddress applies the per-address limit of /connect and the callback:
// each callback that gets past the state check costs a token request to
// Tesla signed with our client secret.
func (s *Server) limitByAddress(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if ok, wait := s.connectLimit.Allow(addressKey(c.RealIP())); !ok {
			return &apperr.Error{Code: apperr.RateLimited, RetryAfter: wholeSeconds(wait), Err: errors.New("connect rate limit reached")}
		}
		return next(c)
	}
}

func errAPIRateLimited(wait time.Duration) error {
	return &apperr.Error{Code: apperr.RateLimited, RetryAfter: wholeSeconds(wait), Err: errors.New("api rate limit reached")}
}

// addressKey is the rate-limit key of a client address: the address itself
// for IPv4, its /64 network for IPv6 (one subscriber usually holds a /64).
func addressKey(ip string) string {
	parsed := net.ParseIP(ip)
	if parsed == nil {
		return ip
	}
	if v4 := parsed.To4(); v4 != nil {
		return v4.String()
	}
	return parsed.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// wholeSeconds rounds d up to whole seconds, at least one (Retry-After).
func wholeSeconds(d time.Duration) time.Duration {
	return max(time.Second, (d + time.Second - 1).Truncate(time.Second))
}
