package teslasim

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Paths served by the simulator (relative to URL()).
const (
	PathDiscovery     = "/oauth2/v3/thirdparty/.well-known/openid-configuration"
	PathAuthorize     = "/oauth2/v3/authorize"
	PathToken         = "/oauth2/v3/token"
	PathFleetToken    = "/fleet-auth/oauth2/v3/token" // the separate "fleet-auth" token host
	PathJWKS          = "/oauth2/v3/discovery/thirdparty/keys"
	PathUserinfo      = "/oauth2/v3/userinfo"
	PathEndSession    = "/oauth2/v3/logout"
	PathRevokeConsent = "/user/revoke/consent"
	pathFleetPrefix   = "/fleet/"
)

// Sim is a running (or runnable) Tesla simulator.
type Sim struct {
	cfg   Config
	clock *Clock
	log   *slog.Logger
	keys  *keySet
	mux   *http.ServeMux

	srvMu   sync.Mutex
	baseURL string
	srv     *http.Server

	mu       sync.Mutex
	seq      int64
	codes    map[string]*authCode
	refresh  map[string]*refreshRec
	access   map[string]*accessRec // by jti
	grants   map[grantKey]*grant
	emails   map[string]string   // sub -> email of owners who signed in
	domains  map[string][]string // region -> registered partner domains
	secrets  []string
	calls    map[string]int
	faults   map[Fault]*activeFault
	families int64
	spent    map[string]bool // refresh tokens presented and accepted at least once
	reuse    RefreshReuse

	stateMu sync.Mutex // serialises writes of the state file
}

type grantKey struct{ sub, client string }

// grant is an owner's consent for one client.
type grant struct {
	scopes          []string
	accessValidFrom int64 // access tokens with a lower seq are invalid
}

type authCode struct {
	client, redirectURI, sub, region, nonce string
	challenge                               string
	scopes                                  []string
	expires                                 time.Time
	used                                    bool
}

// family is the chain of refresh tokens that started with one code exchange.
type family struct {
	id                  int64
	sub, client, region string
	audience, nonce     string
	current, lastUsed   string
	lastUsedAt          time.Time
	dead                bool
}

type refreshRec struct {
	fam     *family
	expires time.Time
}

type accessRec struct {
	sub, client, region string
	seq                 int64
	partner             bool
	aud                 []string
	scopes              []string
	expires             time.Time
}

// New returns a simulator. It generates an RSA key unless cfg.SigningKey is set.
func New(cfg Config) (*Sim, error) {
	cfg = cfg.withDefaults()
	for _, o := range cfg.Owners {
		if r := strings.ToLower(o.Region); r != "" && !knownRegion(r) {
			return nil, fmt.Errorf("teslasim: owner %q: unknown region %q", o.Email, o.Region)
		}
	}
	ks, err := newKeySet(cfg.SigningKey)
	if err != nil {
		return nil, err
	}
	s := &Sim{
		cfg: cfg, clock: cfg.Clock, log: cfg.Logger, keys: ks,
		codes:   map[string]*authCode{},
		refresh: map[string]*refreshRec{},
		access:  map[string]*accessRec{},
		grants:  map[grantKey]*grant{},
		emails:  map[string]string{},
		domains: map[string][]string{},
		calls:   map[string]int{},
		faults:  map[Fault]*activeFault{},
		spent:   map[string]bool{},
	}
	s.mux = s.routes()
	if cfg.StateFile != "" {
		if err := s.loadState(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Sim) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET "+PathDiscovery, s.handleDiscovery)
	m.HandleFunc(PathAuthorize, s.handleAuthorize)
	m.HandleFunc(PathToken, s.handleToken)
	m.HandleFunc(PathFleetToken, s.handleToken)
	m.HandleFunc("GET "+PathJWKS, s.handleJWKS)
	m.HandleFunc(PathUserinfo, s.handleUserinfo)
	m.HandleFunc(PathEndSession, s.handleEndSession)
	m.HandleFunc(PathRevokeConsent, s.handleRevokeConsent)
	m.HandleFunc("GET /fleet/{region}/api/1/users/me", s.fleetUser("users.me", "user_data", s.handleUsersMe))
	m.HandleFunc("GET /fleet/{region}/api/1/users/region", s.fleetUser("users.region", "", s.handleUsersRegion))
	m.HandleFunc("GET /fleet/{region}/api/1/vehicles", s.fleetUser("vehicles", "vehicle_device_data", s.handleVehicles))
	m.HandleFunc("POST /fleet/{region}/api/1/partner_accounts", s.handlePartnerAccounts)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fleetJSONError(w, http.StatusNotFound, "not found")
	})
	return m
}

// Start listens on addr ("127.0.0.1:0" for a random port) and serves in the
// background until Close.
func (s *Sim) Start(addr string) error {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return errors.New("teslasim: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("teslasim: listen on %s: %w", addr, err)
	}
	s.baseURL = "http://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.withDate(s.persisting(s.mux)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv := s.srv
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("teslasim: serve", "err", err)
		}
	}()
	s.log.Info("teslasim: listening", "url", s.baseURL)
	return nil
}

// Close stops the server started by Start at once, dropping open connections
// (a test double needs no graceful shutdown). It is safe to call more than once.
func (s *Sim) Close() error {
	s.srvMu.Lock()
	srv := s.srv
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	s.saveState()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("teslasim: close: %w", err)
	}
	return nil
}

// Handler returns the whole simulator as one handler. When the Sim was not
// started with Start, URLs in its answers are derived from each request's Host.
func (s *Sim) Handler() http.Handler { return s.withDate(s.persisting(s.mux)) }

// withDate sends the simulator's clock as the Date header, as a real
// server sends its own: after the clock is advanced, a separately running
// service sees that the provider's time moved, and checks `iat` against it.
func (s *Sim) withDate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", s.clock.Now().UTC().Format(http.TimeFormat))
		h.ServeHTTP(w, r)
	})
}

// URL is the base URL after Start, e.g. "http://127.0.0.1:41234" (no trailing slash).
func (s *Sim) URL() string {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	return s.baseURL
}

// DiscoveryURL is the OpenID metadata URL.
func (s *Sim) DiscoveryURL() string { return s.URL() + PathDiscovery }

// AuthorizeURL is the authorization endpoint.
func (s *Sim) AuthorizeURL() string { return s.URL() + PathAuthorize }

// TokenURL is the "fleet-auth" token endpoint the service should be
// configured with; as at Tesla it differs from the discovered token_endpoint
// (both work).
func (s *Sim) TokenURL() string { return s.URL() + PathFleetToken }

// CallbackIssuer is the `issuer` parameter the sim adds to the callback.
func (s *Sim) CallbackIssuer() string { return s.URL() + "/oauth2/v3" }

// IDTokenIssuer is the ID token `iss` (cfg.Issuer).
func (s *Sim) IDTokenIssuer() string { return s.cfg.Issuer }

// RevokeConsentURL is the owner's consent-revocation page (without query).
func (s *Sim) RevokeConsentURL() string { return s.URL() + PathRevokeConsent }

// RegionBaseURL is the Fleet API base URL for "na", "eu" or "cn".
func (s *Sim) RegionBaseURL(region string) string {
	return s.URL() + pathFleetPrefix + strings.ToLower(region)
}

// Config returns the configuration with defaults filled in.
func (s *Sim) Config() Config {
	c := s.cfg
	c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	c.Owners = append([]Owner(nil), c.Owners...)
	return c
}

// Clock returns the simulator's clock.
func (s *Sim) Clock() *Clock { return s.clock }

// RotateKeys makes a new signing key current; the JWKS then publishes the new
// key and, unless dropOld, the old ones. Tokens signed earlier stay valid at
// the sim's own Fleet API. It panics only if key generation fails.
func (s *Sim) RotateKeys(dropOld bool) {
	if err := s.keys.rotate(dropOld); err != nil {
		panic(err)
	}
}

// base returns the base URL for answers to r.
func (s *Sim) base(r *http.Request) string {
	if u := s.URL(); u != "" {
		return u
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Sim) regionBase(r *http.Request, region string) string {
	return s.base(r) + pathFleetPrefix + region
}

func knownRegion(r string) bool {
	for _, k := range regions {
		if k == r {
			return true
		}
	}
	return false
}

// regionOfBase maps a Fleet API base URL of this sim to its region.
func (s *Sim) regionOfBase(r *http.Request, u string) (string, bool) {
	for _, reg := range regions {
		if u == s.regionBase(r, reg) {
			return reg, true
		}
	}
	return "", false
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// remember records a secret value for Secrets. Caller holds s.mu.
func (s *Sim) rememberLocked(v string) { s.secrets = append(s.secrets, v) }

// Secrets returns every code, access token, refresh token and ID token the
// sim issued, and the client secret, so tests can grep logs and pages.
func (s *Sim) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.secrets)+1)
	if s.cfg.ClientSecret != "" { // a public client has none
		out = append(out, s.cfg.ClientSecret)
	}
	return append(out, s.secrets...)
}

// RegisteredDomains lists the partner domains registered in a region.
func (s *Sim) RegisteredDomains(region string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.domains[strings.ToLower(region)]...)
}

// RevokeConsent has the same effect as the owner removing the app at
// /user/revoke/consent: every refresh and access token of that owner for the
// configured client dies.
func (s *Sim) RevokeConsent(sub string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeLocked(sub, s.cfg.ClientID)
}

func (s *Sim) revokeLocked(sub, client string) {
	for tok, rec := range s.refresh {
		if rec.fam.sub == sub && rec.fam.client == client {
			rec.fam.dead = true
			delete(s.refresh, tok)
		}
	}
	s.seq++
	g := s.grantLocked(sub, client)
	g.accessValidFrom = s.seq
	g.scopes = nil
}

// SetGrantedScopes changes what an owner granted the configured client, as
// Tesla's consent page can: existing refresh tokens keep working and new
// access tokens carry the new `scp`. openid and offline_access are always kept.
func (s *Sim) SetGrantedScopes(sub string, scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grantLocked(sub, s.cfg.ClientID).scopes = withFixedScopes(scopes)
}

func (s *Sim) grantLocked(sub, client string) *grant {
	k := grantKey{sub, client}
	g := s.grants[k]
	if g == nil {
		g = &grant{}
		s.grants[k] = g
	}
	return g
}
