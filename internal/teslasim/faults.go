package teslasim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault is one way the simulator misbehaves on demand.
type Fault string

// Faults. ID token faults apply to the id_token of code and refresh grants;
// 5xx, 429 and latency apply to the token endpoint unless FaultOptions.Endpoint
// names another endpoint.
const (
	FaultIDTokenBadSignature    Fault = "id_token_bad_signature"
	FaultIDTokenUnknownKID      Fault = "id_token_unknown_kid" // signed with a key whose kid is not in the JWKS
	FaultIDTokenAlgNone         Fault = "id_token_alg_none"
	FaultIDTokenWrongIssuer     Fault = "id_token_wrong_iss"
	FaultIDTokenWrongAudience   Fault = "id_token_wrong_aud"
	FaultIDTokenMissingAudience Fault = "id_token_missing_aud"
	FaultIDTokenWrongNonce      Fault = "id_token_wrong_nonce"
	FaultIDTokenMissingNonce    Fault = "id_token_missing_nonce"
	FaultIDTokenMissingSub      Fault = "id_token_missing_sub"
	FaultIDTokenMissingIAT      Fault = "id_token_missing_iat"
	FaultIDTokenExpired         Fault = "id_token_expired"
	FaultUserinfoSubMismatch    Fault = "userinfo_sub_mismatch"
	FaultRefreshLoginRequired   Fault = "refresh_login_required"
	FaultUnauthorizedClient     Fault = "unauthorized_client" // token endpoint answers unauthorized_client
	FaultHTTP500                Fault = "http_500"
	FaultHTTP502                Fault = "http_502"
	FaultHTTP503                Fault = "http_503"
	FaultHTTP429                Fault = "http_429" // with Retry-After (FaultOptions.RetryAfter, default 1s)
	FaultLatency                Fault = "latency"  // FaultOptions.Latency added before answering
	// FaultDropAfterRefresh applies the refresh (new tokens issued, old ones
	// rotated) but closes the connection without an answer.
	FaultDropAfterRefresh Fault = "drop_after_refresh"
)

// AllFaults lists every fault, for admin UIs and tests.
var AllFaults = []Fault{
	FaultIDTokenBadSignature, FaultIDTokenUnknownKID, FaultIDTokenAlgNone, FaultIDTokenWrongIssuer,
	FaultIDTokenWrongAudience, FaultIDTokenMissingAudience, FaultIDTokenWrongNonce, FaultIDTokenMissingNonce,
	FaultIDTokenMissingSub, FaultIDTokenMissingIAT, FaultIDTokenExpired, FaultUserinfoSubMismatch,
	FaultRefreshLoginRequired, FaultUnauthorizedClient, FaultHTTP500, FaultHTTP502, FaultHTTP503,
	FaultHTTP429, FaultLatency, FaultDropAfterRefresh,
}

var idTokenFaults = []Fault{
	FaultIDTokenBadSignature, FaultIDTokenUnknownKID, FaultIDTokenAlgNone, FaultIDTokenWrongIssuer,
	FaultIDTokenWrongAudience, FaultIDTokenMissingAudience, FaultIDTokenWrongNonce, FaultIDTokenMissingNonce,
	FaultIDTokenMissingSub, FaultIDTokenMissingIAT, FaultIDTokenExpired,
}

// FaultOptions tunes an injected fault.
type FaultOptions struct {
	// Count is the number of matching responses affected; <= 0 means until cleared.
	Count int
	// Endpoint restricts 5xx, 429 and latency faults to one endpoint name (see
	// Calls); "" means the fault's natural endpoint(s) (the token endpoint for
	// 5xx/429/latency). Also accepted: "token" (every grant), "fleet" (every
	// Fleet API endpoint) and "*" (everything).
	Endpoint   string
	RetryAfter time.Duration // for FaultHTTP429; default 1s
	Latency    time.Duration // for FaultLatency
}

type activeFault struct {
	opt       FaultOptions
	remaining int // < 0: until cleared
}

// IsKnownFault reports whether f is one of the faults above.
func IsKnownFault(f Fault) bool {
	for _, k := range AllFaults {
		if k == f {
			return true
		}
	}
	return false
}

// Inject switches a fault on for opt.Count matching responses (or until
// cleared). Injecting a fault that is already on replaces its options.
func (s *Sim) Inject(f Fault, opt FaultOptions) {
	rem := opt.Count
	if rem <= 0 {
		rem = -1
	}
	if f == FaultHTTP429 && opt.RetryAfter <= 0 {
		opt.RetryAfter = time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[f] = &activeFault{opt: opt, remaining: rem}
}

// ClearFaults switches every fault off.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// ActiveFaults returns the faults currently on, with their remaining count
// (-1: until cleared).
func (s *Sim) ActiveFaults() map[Fault]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Fault]int, len(s.faults))
	for f, a := range s.faults {
		out[f] = a.remaining
	}
	return out
}

var fleetEndpoints = map[string]bool{"users.me": true, "users.region": true, "vehicles": true, "partner_accounts": true}

func faultMatches(f Fault, opt FaultOptions, endpoint string) bool {
	switch opt.Endpoint {
	case "*", "all":
		return true
	case "token":
		return strings.HasPrefix(endpoint, "token.")
	case "fleet":
		return fleetEndpoints[endpoint]
	case "":
	default:
		return opt.Endpoint == endpoint
	}
	switch f {
	case FaultUserinfoSubMismatch:
		return endpoint == "userinfo"
	case FaultRefreshLoginRequired, FaultDropAfterRefresh:
		return endpoint == "token.refresh_token"
	case FaultHTTP500, FaultHTTP502, FaultHTTP503, FaultHTTP429, FaultLatency, FaultUnauthorizedClient:
		return strings.HasPrefix(endpoint, "token.")
	}
	// ID token faults.
	return endpoint == "token.authorization_code" || endpoint == "token.refresh_token"
}

// takeFault reports whether f is on for endpoint and, if so, uses up one count.
func (s *Sim) takeFault(f Fault, endpoint string) (FaultOptions, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.faults[f]
	if a == nil || !faultMatches(f, a.opt, endpoint) {
		return FaultOptions{}, false
	}
	if a.remaining > 0 {
		a.remaining--
		if a.remaining == 0 {
			delete(s.faults, f)
		}
	}
	return a.opt, true
}

// begin counts a request to endpoint and applies latency and HTTP status
// faults. It returns false when it has already answered.
func (s *Sim) begin(endpoint string, w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	s.calls[endpoint]++
	s.mu.Unlock()
	s.log.Debug("teslasim: request", "endpoint", endpoint, "method", r.Method, "path", r.URL.Path)
	if opt, ok := s.takeFault(FaultLatency, endpoint); ok && opt.Latency > 0 {
		t := time.NewTimer(opt.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false
		}
	}
	for _, f := range []Fault{FaultHTTP500, FaultHTTP502, FaultHTTP503, FaultHTTP429} {
		opt, ok := s.takeFault(f, endpoint)
		if !ok {
			continue
		}
		switch f {
		case FaultHTTP500:
			teslaError(w, http.StatusInternalServerError, "internal_server_error", "simulated internal error")
		case FaultHTTP502:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>\n")
		case FaultHTTP503:
			w.Header().Set("Retry-After", "1")
			teslaError(w, http.StatusServiceUnavailable, "service_unavailable", "simulated outage")
		case FaultHTTP429:
			secs := int(math.Ceil(opt.RetryAfter.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 0)))
			teslaError(w, http.StatusTooManyRequests, "too_many_requests", "simulated rate limit")
		}
		return false
	}
	return true
}

// Calls returns how many requests an endpoint received (faulted or not).
// Names: "discovery", "authorize", "token.authorization_code",
// "token.refresh_token", "token.client_credentials", "jwks", "userinfo",
// "users.me", "users.region", "vehicles", "partner_accounts",
// "revoke_consent"; "token" sums every grant type.
func (s *Sim) Calls(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if endpoint == "token" {
		n := 0
		for k, v := range s.calls {
			if strings.HasPrefix(k, "token.") {
				n += v
			}
		}
		return n
	}
	return s.calls[endpoint]
}

// AllCalls returns a copy of every counter.
func (s *Sim) AllCalls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// ResetCalls sets every counter to zero.
func (s *Sim) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}
