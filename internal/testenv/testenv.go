// Package testenv assembles the whole service for tests: a fresh PostgreSQL
// database, the Tesla simulator, and teslalink served over HTTPS on
// loopback, plus a cookie-keeping client that acts like a browser.
// Test packages that use it call pgtest.Main from TestMain.
package testenv

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"teslalink/internal/app"
	"teslalink/internal/db"
	"teslalink/internal/fleet"
	"teslalink/internal/jobs"
	"teslalink/internal/link"
	"teslalink/internal/linksession"
	"teslalink/internal/oidc"
	"teslalink/internal/owner"
	"teslalink/internal/pgtest"
	"teslalink/internal/ratelimit"
	"teslalink/internal/seal"
	"teslalink/internal/teslascope"
	"teslalink/internal/teslasim"
	"teslalink/internal/tokencache"
	"teslalink/internal/usage"
)

// OptionalScopes are all optional scopes, as the service offers by default.
var OptionalScopes = teslascope.Optional()

// Options tune an Env.
type Options struct {
	// LogLevel is the service's log level; nil: debug.
	LogLevel      slog.Leveler
	Sim           func(*teslasim.Config) // adjust the simulator's config
	PlainHTTP     bool                   // serve over http:// (cookies without Secure/__Host-)
	RefreshMargin time.Duration
	DatabaseURL   string // share a database with another Env (several instances)
	// ListenDatabaseURL is LISTEN_DATABASE_URL: the token cache's listener
	// connects there directly instead of through the pool.
	ListenDatabaseURL string
	Sim0              *teslasim.Sim // share a simulator with another Env
	TokenKeys         string        // TOKEN_ENCRYPTION_KEYS; "" → a fresh key
	// SessionNow is the session store's clock (idle and absolute timeouts);
	// nil: time.Now.
	SessionNow    func() time.Time
	SessionIdle   time.Duration // session idle timeout; 0: the store's default
	SessionMaxAge time.Duration // session absolute lifetime; 0: the store's default
	// Provider points the service at a standard OpenID provider instead of the
	// simulator (no simulator is started; Env.Sim is nil; clocks are real).
	Provider *Provider
	// NoCache runs without the token cache (every API request reads the database).
	NoCache bool
	// Jobs starts this instance's background jobs (webhook deliveries,
	// keep-alive, cleanup). Without it, jobs are still enqueued (events are
	// recorded with every change) but this instance works none of them.
	Jobs bool
	// RetrySchedule is the webhook retry schedule; nil: 50 ms between tries.
	RetrySchedule []time.Duration
	// WebhookStrict refuses private and loopback webhook targets, as
	// production does; by default tests allow them (receivers are on loopback).
	WebhookStrict bool
	KeepAliveAge  time.Duration // TOKEN_KEEPALIVE_AGE; 0: 720h
	KeepAliveRate float64       // KEEPALIVE_RATE; 0: 1000 a second
	// KeepAliveEvery is how often a keep-alive round starts; 0: every 200 ms.
	KeepAliveEvery time.Duration
	// TrustProxy is TRUST_PROXY: client IP from X-Forwarded-For, and an
	// upstream X-Request-Id recorded in the log.
	TrustProxy bool
	// ConnectPerMinute and APIPerSecond are the rate limits (0: none).
	ConnectPerMinute, APIPerSecond int
	// TokenBudget limits calls to the simulator's token endpoint (nil: none).
	TokenBudget *ratelimit.Bucket
	// ForceRefreshCooldown is FORCE_REFRESH_COOLDOWN; 0: none (so tests may
	// force refreshes back to back).
	ForceRefreshCooldown time.Duration
	// DBMaxConns is DB_MAX_CONNS; 0: 40.
	DBMaxConns int32
	// ReturnURLs is the link sessions' return-URL allowlist; nil allows
	// loopback URLs, as `web dev` does. &linksession.Allowlist{} allows none.
	ReturnURLs *linksession.Allowlist
	// LinkSessionTTL is how long a session URL works; 0: the default.
	LinkSessionTTL time.Duration
}

// Provider is a standard OpenID provider for Options.Provider (e.g. oidctest).
type Provider struct {
	DiscoveryURL, ClientID, ClientSecret string
	Audience                             string          // TESLA_AUDIENCE; "" → none sent
	Secrets                              func() []string // the provider's secrets for Leaks; may be nil
}

// Env is one running teslalink with its simulator and database.
type Env struct {
	T      testing.TB
	Sim    *teslasim.Sim
	Store  *db.Store
	DBURL  string
	Server *httptest.Server
	App    *app.App
	Tesla  *oidc.Client
	Fleet  *fleet.Client
	Links  *link.Service
	Owners *owner.Service
	// LinkSessions runs the team's link sessions.
	LinkSessions *linksession.Service
	Usage        *usage.Recorder
	Cache        *tokencache.Cache // nil with Options.NoCache
	Jobs         *jobs.Runner
	Keys         *seal.Keyring
	KeySpec      string
	Logs         *LogBuffer
	URL          string

	provider *Provider // Options.Provider, nil with the simulator
}

// New starts an Env; everything stops when the test ends.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	e := &Env{T: t, Logs: &LogBuffer{}}
	level := opts.LogLevel
	if level == nil {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewJSONHandler(e.Logs, &slog.HandlerOptions{Level: level}))

	e.Server = httptest.NewUnstartedServer(nil)
	scheme := "https"
	if opts.PlainHTTP {
		scheme = "http"
	}
	e.URL = scheme + "://" + e.Server.Listener.Addr().String()
	callback := e.URL + "/auth/tesla/callback"

	e.Sim = opts.Sim0
	if e.Sim == nil && opts.Provider == nil {
		cfg := teslasim.Config{RedirectURIs: []string{callback}, Logger: logger.With("component", "teslasim")}
		if opts.Sim != nil {
			opts.Sim(&cfg)
		}
		sim, err := teslasim.New(cfg)
		if err != nil {
			t.Fatalf("teslasim: %v", err)
		}
		if err := sim.Start("127.0.0.1:0"); err != nil {
			t.Fatalf("teslasim start: %v", err)
		}
		t.Cleanup(func() { sim.Close() })
		e.Sim = sim
	}

	e.DBURL = opts.DatabaseURL
	if e.DBURL == "" {
		e.DBURL = pgtest.URL(t)
	}
	maxConns := opts.DBMaxConns
	if maxConns <= 0 {
		maxConns = 40
	}
	store, err := db.Open(context.Background(), e.DBURL, maxConns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	store.SetListenURL(opts.ListenDatabaseURL)
	e.Store = store

	e.KeySpec = opts.TokenKeys
	if e.KeySpec == "" {
		e.KeySpec, _ = seal.GenerateKey("test1")
	}
	e.Keys, err = seal.ParseKeys(e.KeySpec)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now
	if p := opts.Provider; p != nil {
		e.provider = p
		e.Tesla = oidc.New(oidc.Config{
			DiscoveryURL: p.DiscoveryURL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, RedirectURL: callback,
			Audience: p.Audience, Logger: logger.With("component", "oidc"),
		})
		e.Fleet = fleet.New(fleet.Config{Auth: e.Tesla})
	} else {
		now = e.Sim.Clock().Now
		simCfg := e.Sim.Config()
		e.Tesla = oidc.New(oidc.Config{
			DiscoveryURL: e.Sim.DiscoveryURL(), ClientID: simCfg.ClientID, ClientSecret: simCfg.ClientSecret,
			RedirectURL: callback, TokenURL: e.Sim.TokenURL(), Issuers: []string{e.Sim.IDTokenIssuer()},
			// Explicit: the simulator is not on a Tesla host but requires `audience`.
			Audience: e.Sim.RegionBaseURL("na"),
			Logger:   logger.With("component", "oidc"), Now: now, TokenBudget: opts.TokenBudget,
		})
		e.Fleet = fleet.New(fleet.Config{Auth: e.Tesla,
			RegionBaseURLs: map[string]string{"na": e.Sim.RegionBaseURL("na"), "eu": e.Sim.RegionBaseURL("eu"), "cn": e.Sim.RegionBaseURL("cn")}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Tesla.Discover(ctx); err != nil {
		t.Fatalf("discover: %v", err)
	}
	sessKey := make([]byte, 32)
	rand.Read(sessKey)
	cacheBytes := 8 << 20
	if opts.NoCache {
		cacheBytes = 0
	}
	retry := opts.RetrySchedule
	if retry == nil {
		retry = []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}
	}
	allow := opts.ReturnURLs
	if allow == nil {
		allow = linksession.LoopbackAllowlist(nil)
	}
	pub, _ := url.Parse(e.URL)
	e.App, err = app.New(app.Config{
		ServiceName: "Test Service", PublicURL: pub, InsecureCookies: opts.PlainHTTP,
		OfferedScopes: OptionalScopes, DefaultScopes: []string{"user_data", "vehicle_device_data"},
		SessionKeys: [][]byte{sessKey}, TokenKeys: e.Keys, RefreshMargin: opts.RefreshMargin,
		SessionIdle: opts.SessionIdle, SessionMaxAge: opts.SessionMaxAge, SessionNow: opts.SessionNow, Now: now,
		TokenCacheBytes: cacheBytes, TrustedProxies: opts.TrustProxy,
		ConnectPerMinute: opts.ConnectPerMinute, APIPerSecond: opts.APIPerSecond,
		ForceRefreshCooldown: cmp.Or(opts.ForceRefreshCooldown, -1),
		// Tests flush usage themselves; background jobs run when a test asks (Options.Jobs, StartJobs).
		UsageFlush: time.Hour, Logger: logger, ReturnURLs: allow, LinkSessionTTL: opts.LinkSessionTTL,
		RetrySchedule:       retry,
		WebhookAllowPrivate: !opts.WebhookStrict, WebhookTimeout: 2 * time.Second,
		KeepAliveAge: opts.KeepAliveAge, KeepAliveRate: cmp.Or(opts.KeepAliveRate, 1000),
		KeepAliveInterval: cmp.Or(opts.KeepAliveEvery, 200*time.Millisecond),
	}, store, e.Tesla, e.Fleet)
	if err != nil {
		t.Fatal(err)
	}
	e.Links, e.Owners, e.Usage, e.Cache, e.Jobs = e.App.Links, e.App.Owners, e.App.Usage, e.App.Cache, e.App.Jobs
	e.LinkSessions = e.App.LinkSessions
	e.App.Start(context.Background())
	t.Cleanup(e.App.Stop)
	if opts.Jobs {
		e.StartJobs()
	}
	e.Server.Config.Handler = e.App.Handler()
	if opts.PlainHTTP {
		e.Server.Start()
	} else {
		e.Server.StartTLS()
	}
	t.Cleanup(e.Server.Close)
	return e
}

// StartJobs starts this instance's background jobs; they stop when the
// test ends or at StopJobs.
func (e *Env) StartJobs() {
	e.T.Helper()
	if err := e.Jobs.Start(context.Background()); err != nil {
		e.T.Fatal(err)
	}
	e.T.Cleanup(e.StopJobs)
}

// StopJobs stops this instance's background jobs, as a crash or a stop
// would: jobs not yet worked stay queued in the database.
func (e *Env) StopJobs() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.Jobs.Stop(ctx) //nolint:errcheck // stopping twice is fine
}

// LogBuffer collects everything the service logged; safe for concurrent use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns the log so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Browser is an HTTP client with a cookie jar that does not follow redirects.
type Browser struct {
	e      *Env
	Client *http.Client
	Bodies []string // every response body, for leak checks
}

// Browser returns a new browser (its own cookies).
func (e *Env) Browser() *Browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // test server's own cert
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &Browser{e: e, Client: c}
}

// Do sends a request and returns the response and its body.
func (b *Browser) Do(req *http.Request) (*http.Response, string) {
	b.e.T.Helper()
	res, err := b.Client.Do(req)
	if err != nil {
		b.e.T.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	b.Bodies = append(b.Bodies, string(body))
	return res, string(body)
}

// Get fetches a path (or absolute URL).
func (b *Browser) Get(path string) (*http.Response, string) {
	b.e.T.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.abs(path), nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.Do(req)
}

// PostForm posts a form as a same-origin page would.
func (b *Browser) PostForm(path string, form url.Values) (*http.Response, string) {
	b.e.T.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.abs(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.e.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.Do(req)
}

func (b *Browser) abs(path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return b.e.URL + path
}

// StartLogin posts /connect with the chosen scopes and returns Tesla's authorize URL.
func (b *Browser) StartLogin(scopes []string) string {
	b.e.T.Helper()
	res, _ := b.PostForm("/connect", url.Values{"scope": scopes})
	if res.StatusCode != http.StatusSeeOther {
		b.e.T.Fatalf("POST /connect: status %d", res.StatusCode)
	}
	return res.Header.Get("Location")
}

// Callback consents at the simulator as email, granting grant (nil: all
// asked), and returns the callback URL Tesla redirects to.
func (b *Browser) Consent(authorizeURL, email string, grant []string, allow bool) string {
	b.e.T.Helper()
	if grant == nil {
		u, _ := url.Parse(authorizeURL)
		grant = strings.Fields(u.Query().Get("scope"))
	}
	loc, err := b.e.Sim.Consent(context.Background(), authorizeURL, email, grant, allow)
	if err != nil {
		b.e.T.Fatalf("consent: %v", err)
	}
	return loc.String()
}

// Login runs the whole flow and returns the callback's response.
func (b *Browser) Login(email string, scopes, grant []string) (*http.Response, string) {
	b.e.T.Helper()
	return b.Get(b.Consent(b.StartLogin(scopes), email, grant, true))
}

// Leaks returns each simulator secret (token, code, client secret) found in
// the logs or in any body this browser received.
func (e *Env) Leaks(browsers ...*Browser) []string {
	haystack := e.Logs.String()
	for _, b := range browsers {
		haystack += strings.Join(b.Bodies, "\n")
	}
	var secrets []string
	if e.Sim != nil {
		secrets = e.Sim.Secrets()
	}
	if e.provider != nil {
		secrets = append(secrets, e.provider.ClientSecret)
		if e.provider.Secrets != nil {
			secrets = append(secrets, e.provider.Secrets()...)
		}
	}
	var found []string
	for _, s := range secrets {
		if len(s) >= 8 && strings.Contains(haystack, s) {
			found = append(found, s[:min(12, len(s))]+"…")
		}
	}
	return found
}
