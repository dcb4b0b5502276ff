package teslasim

import (
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"
)

// AdminHandler serves a small JSON admin API for `web tesla-sim`. Mount it
// on a loopback-only listener:
//
//	POST   /faults        {"fault":"http_503","count":2,"endpoint":"","latency_ms":0,"retry_after_s":0}
//	GET    /faults        active faults with remaining counts (-1: until cleared)
//	DELETE /faults        clear every fault
//	POST   /clock/advance {"seconds":86400}
//	POST   /keys/rotate   {"drop_old":false} (body optional)
//	GET    /calls         endpoint counters
//	DELETE /calls         reset counters
//	GET    /refresh-reuse {"accepted":0,"refused":0}: refresh tokens presented again after their first use
//
// Every POST and DELETE must send Content-Type: application/json, and
// requests from a browser page of another origin are refused, so a web page
// cannot inject faults with a cross-site form or a no-cors fetch (those can
// only send form or text/plain bodies, and browsers send their Origin).
func (s *Sim) AdminHandler() http.Handler {
	return adminGuard(s.persisting(s.adminMux()))
}

// adminGuard refuses cross-site and non-JSON writes, and Host names other
// than loopback ones (DNS rebinding).
func adminGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if ip := net.ParseIP(strings.Trim(host, "[]")); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			adminError(w, http.StatusForbidden, "the admin API answers only on a loopback host name")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			adminError(w, http.StatusForbidden, "requests from another origin are refused")
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			adminError(w, http.StatusForbidden, "cross-site requests are refused")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if err != nil || mt != "application/json" {
				adminError(w, http.StatusUnsupportedMediaType, "send Content-Type: application/json")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Sim) adminMux() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Fault       Fault   `json:"fault"`
			Count       int     `json:"count"`
			Endpoint    string  `json:"endpoint"`
			LatencyMS   int64   `json:"latency_ms"`
			RetryAfterS float64 `json:"retry_after_s"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&b); err != nil {
			adminError(w, http.StatusBadRequest, "invalid JSON body")
			return
		}
		if !IsKnownFault(b.Fault) {
			adminError(w, http.StatusBadRequest, fmt.Sprintf("unknown fault %q", b.Fault))
			return
		}
		s.Inject(b.Fault, FaultOptions{
			Count: b.Count, Endpoint: b.Endpoint,
			Latency:    time.Duration(b.LatencyMS) * time.Millisecond,
			RetryAfter: time.Duration(b.RetryAfterS * float64(time.Second)),
		})
		writeJSON(w, http.StatusOK, map[string]any{"active": s.ActiveFaults()})
	})
	m.HandleFunc("GET /faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"active": s.ActiveFaults(), "known": AllFaults})
	})
	m.HandleFunc("DELETE /faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		writeJSON(w, http.StatusOK, map[string]any{"active": s.ActiveFaults()})
	})
	m.HandleFunc("POST /clock/advance", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Seconds float64 `json:"seconds"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&b); err != nil || b.Seconds < 0 {
			adminError(w, http.StatusBadRequest, `body must be {"seconds": N} with N >= 0`)
			return
		}
		s.clock.Advance(time.Duration(b.Seconds * float64(time.Second)))
		writeJSON(w, http.StatusOK, map[string]any{"now": s.clock.Now().UTC().Format(time.RFC3339)})
	})
	m.HandleFunc("POST /keys/rotate", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			DropOld bool `json:"drop_old"`
		}
		if r.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&b); err != nil {
				adminError(w, http.StatusBadRequest, "invalid JSON body")
				return
			}
		}
		if err := s.keys.rotate(b.DropOld); err != nil {
			adminError(w, http.StatusInternalServerError, "key generation failed")
			return
		}
		writeJSON(w, http.StatusOK, s.keys.jwks())
	})
	m.HandleFunc("GET /calls", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.AllCalls())
	})
	m.HandleFunc("DELETE /calls", func(w http.ResponseWriter, r *http.Request) {
		s.ResetCalls()
		writeJSON(w, http.StatusOK, s.AllCalls())
	})
	m.HandleFunc("GET /refresh-reuse", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.RefreshReuses())
	})
	return m
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// DescribeDefaults returns a few lines to print when the standalone simulator
// starts: URLs, client id and secret (dev-only), redirect URIs and password.
func (s *Sim) DescribeDefaults() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Tesla simulator at %s\n", s.URL())
	fmt.Fprintf(&b, "  TESLA_DISCOVERY_URL=%s\n", s.DiscoveryURL())
	fmt.Fprintf(&b, "  TESLA_TOKEN_URL=%s\n", s.TokenURL())
	fmt.Fprintf(&b, "  TESLA_ISSUERS=%s\n", s.IDTokenIssuer())
	fmt.Fprintf(&b, "  TESLA_CALLBACK_ISSUER=%s\n", s.CallbackIssuer())
	fmt.Fprintf(&b, "  TESLA_AUDIENCE=%s\n", s.RegionBaseURL("na"))
	fmt.Fprintf(&b, "  TESLA_CLIENT_ID=%s\n", s.cfg.ClientID)
	if s.cfg.PublicClient {
		fmt.Fprintf(&b, "  TESLA_CLIENT_SECRET=   (empty: a public client, PKCE only)\n")
	} else {
		fmt.Fprintf(&b, "  TESLA_CLIENT_SECRET=%s   (simulator only)\n", s.cfg.ClientSecret)
	}
	fmt.Fprintf(&b, "  redirect URIs: %s\n", strings.Join(s.cfg.RedirectURIs, ", "))
	fmt.Fprintf(&b, "  Fleet API: na %s, eu %s, cn %s\n", s.RegionBaseURL("na"), s.RegionBaseURL("eu"), s.RegionBaseURL("cn"))
	fmt.Fprintf(&b, "  sign in with any email and password %q (email local part ending +eu/+cn picks that region)\n", s.cfg.Password)
	return b.String()
}
