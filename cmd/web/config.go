package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/link"
	"teslalink/internal/linksession"
	"teslalink/internal/owner"
	"teslalink/internal/seal"
	"teslalink/internal/teslascope"
)

// configError names the variable that is wrong and how, never its value.
type configError struct {
	Var, Msg string
}

func (e *configError) Error() string { return e.Var + ": " + e.Msg }

// configErrors is every problem found in one pass, so an operator fixes them
// all at once; each is one line, and none holds a value.
type configErrors []*configError

func (es configErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// add records err (a *configError, or any error as a message for v) and
// reports whether it was nil.
func (es *configErrors) add(v string, err error) bool {
	if err == nil {
		return true
	}
	var ce *configError
	if errors.As(err, &ce) {
		*es = append(*es, ce)
	} else {
		*es = append(*es, &configError{v, err.Error()})
	}
	return false
}

// allOptionalScopes are the optional Tesla scopes the service knows.
var allOptionalScopes = teslascope.Optional()

// Config is every setting, read from the environment and validated at start-up.
type Config struct {
	Addr        string
	PublicURL   *url.URL
	DatabaseURL string
	// ListenDatabaseURL is a direct connection for the token cache's change
	// listener, for a DATABASE_URL that goes through a transaction pooler.
	ListenDatabaseURL string
	DBMaxConns        int32

	TeslaClientID       string
	TeslaClientSecret   string
	TeslaDiscoveryURL   string
	TeslaTokenURL       string
	TeslaIssuers        []string
	TeslaCallbackIssuer string
	TeslaAudience       string
	TeslaRegionURLs     map[string]string
	TeslaPublicKeyPEM   []byte

	TokenKeys   *seal.Keyring
	SessionKeys [][]byte

	ServiceName     string
	OfferedScopes   []string
	DefaultScopes   []string
	SessionIdle     time.Duration
	SessionMaxAge   time.Duration
	RefreshMargin   time.Duration
	UsageFlush      time.Duration
	KeepAliveAge    time.Duration
	KeepAliveRate   float64 // keep-alive refreshes per second, across all instances
	WebhookPrivate  bool    // allow webhook targets on private and loopback addresses
	TokenCacheBytes int     // 0 turns the token cache off
	MemoryLimit     int64   // the Go memory limit serve sets, bytes; 0: none
	// ReturnURLs is LINK_RETURN_URLS (nil when unset); ReturnLoopback also
	// allows loopback return URLs (`web dev`).
	ReturnURLs     *linksession.Allowlist
	ReturnLoopback bool
	LinkSessionTTL time.Duration
	TrustProxy     bool
	// Rate limits (0: off): per client address per minute on /connect and
	// the callback, per API client per second, and this instance's calls per
	// second to Tesla's token endpoint.
	ConnectPerMinute int
	APIPerSecond     int
	TeslaTokenRPS    int
	// ForceRefreshCooldown is FORCE_REFRESH_COOLDOWN; negative: none.
	ForceRefreshCooldown time.Duration
	// ShutdownDrain is how long /readyz answers 503 "draining" after SIGTERM
	// while requests are still served, so a load balancer stops sending new
	// ones before the listener closes (0: close at once).
	ShutdownDrain time.Duration
	// MetricsAddr is the listener for /metrics ("": off). MetricsDevDefault
	// marks web dev's loopback default, which moves to a free port when taken.
	MetricsAddr       string
	MetricsDevDefault bool
	InsecureCookie    bool // plain-HTTP localhost in `web dev` only
	CanonicalHost     bool // `web dev`: send other host names to PUBLIC_URL
	LogLevel          string
	LogFormat         string

	// ActivityRetention is how long owners' activity is kept (ACTIVITY_RETENTION).
	ActivityRetention owner.Retention
}

// env reads variables; lookup is os.LookupEnv except in tests.
type env func(string) (string, bool)

func (e env) get(name, def string) string {
	if v, ok := e(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

// loadConfig reads and validates the configuration. required lists the
// variables this command cannot do without.
func loadConfig(e env, required ...string) (*Config, error) {
	if e == nil {
		e = os.LookupEnv
	}
	var errs configErrors
	var err error
	for _, name := range required {
		if e.get(name, "") == "" {
			errs = append(errs, &configError{name, "is required"})
		}
	}
	c := &Config{
		Addr:                e.get("ADDR", "127.0.0.1:8080"),
		DatabaseURL:         e.get("DATABASE_URL", ""),
		ListenDatabaseURL:   e.get("LISTEN_DATABASE_URL", ""),
		TeslaClientID:       e.get("TESLA_CLIENT_ID", ""),
		TeslaClientSecret:   e.get("TESLA_CLIENT_SECRET", ""),
		TeslaDiscoveryURL:   e.get("TESLA_DISCOVERY_URL", "https://auth.tesla.com/oauth2/v3/thirdparty/.well-known/openid-configuration"),
		TeslaTokenURL:       e.get("TESLA_TOKEN_URL", ""),
		TeslaCallbackIssuer: e.get("TESLA_CALLBACK_ISSUER", ""),
		TeslaAudience:       e.get("TESLA_AUDIENCE", ""),
		ServiceName:         e.get("SERVICE_NAME", "teslalink"),
		LogLevel:            e.get("LOG_LEVEL", "info"),
		LogFormat:           e.get("LOG_FORMAT", "json"),
		TeslaRegionURLs:     map[string]string{},
	}
	if v := e.get("PUBLIC_URL", ""); v != "" {
		if c.PublicURL, err = parsePublicURL(v); err != nil {
			errs = append(errs, &configError{"PUBLIC_URL", err.Error()})
		}
	}
	if c.ListenDatabaseURL != "" {
		if _, err := db.ParseURL(c.ListenDatabaseURL); err != nil {
			errs = append(errs, &configError{"LISTEN_DATABASE_URL", err.Error()})
		}
	}
	if c.DatabaseURL != "" {
		if _, err := db.ParseURL(c.DatabaseURL); err != nil {
			errs = append(errs, &configError{"DATABASE_URL", err.Error()})
		}
	}
	c.DBMaxConns, err = intVar(e, "DB_MAX_CONNS", 20)
	errs.add("DB_MAX_CONNS", err)
	for _, name := range []string{"TESLA_DISCOVERY_URL", "TESLA_TOKEN_URL", "TESLA_CALLBACK_ISSUER", "TESLA_AUDIENCE"} {
		if v := e.get(name, ""); v != "" && !absoluteURL(v) {
			errs = append(errs, &configError{name, "must be an absolute http(s) URL"})
		}
	}
	for _, region := range []string{"na", "eu", "cn"} {
		name := "TESLA_FLEET_API_" + strings.ToUpper(region)
		if v := e.get(name, ""); v != "" {
			if !absoluteURL(v) {
				errs = append(errs, &configError{name, "must be an absolute http(s) URL"})
			}
			c.TeslaRegionURLs[region] = strings.TrimRight(v, "/")
		}
	}
	if v := e.get("TESLA_ISSUERS", ""); v != "" {
		for _, iss := range strings.Split(v, ",") {
			if iss = strings.TrimSpace(iss); iss != "" {
				c.TeslaIssuers = append(c.TeslaIssuers, iss)
			}
		}
	}
	if path := e.get("TESLA_PUBLIC_KEY_FILE", ""); path != "" {
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), "-----BEGIN PUBLIC KEY-----") {
			errs = append(errs, &configError{"TESLA_PUBLIC_KEY_FILE", "must name a readable PEM file holding a PUBLIC KEY"})
		}
		c.TeslaPublicKeyPEM = b
	}
	if v := e.get("TOKEN_ENCRYPTION_KEYS", ""); v != "" {
		if c.TokenKeys, err = seal.ParseKeys(v); err != nil {
			errs = append(errs, &configError{"TOKEN_ENCRYPTION_KEYS", err.Error() + " (want id:base64 of 32 random bytes, comma-separated; generate with 'web keys generate')"})
		}
	}
	if v := e.get("SESSION_KEYS", ""); v != "" {
		if c.SessionKeys, err = parseSessionKeys(v); err != nil {
			errs = append(errs, &configError{"SESSION_KEYS", err.Error()})
		}
	}
	c.OfferedScopes, err = scopesVar(e, "SCOPES_OFFERED", allOptionalScopes)
	errs.add("SCOPES_OFFERED", err)
	c.DefaultScopes, err = scopesVar(e, "SCOPES_DEFAULT", []string{"user_data", "vehicle_device_data"})
	errs.add("SCOPES_DEFAULT", err)
	for _, d := range []struct {
		name string
		def  time.Duration
		dst  *time.Duration
	}{
		{"SESSION_IDLE_TIMEOUT", 30 * time.Minute, &c.SessionIdle},
		{"SESSION_MAX_AGE", 12 * time.Hour, &c.SessionMaxAge},
		{"TOKEN_REFRESH_MARGIN", 5 * time.Minute, &c.RefreshMargin},
		{"USAGE_FLUSH_INTERVAL", 10 * time.Second, &c.UsageFlush},
		{"TOKEN_KEEPALIVE_AGE", 30 * 24 * time.Hour, &c.KeepAliveAge},
		{"LINK_SESSION_TTL", linksession.DefaultTTL, &c.LinkSessionTTL},
	} {
		*d.dst, err = durationVar(e, d.name, d.def)
		errs.add(d.name, err)
	}
	if v := e.get("LINK_RETURN_URLS", ""); v != "" {
		if c.ReturnURLs, err = linksession.ParseAllowlist(v); err != nil {
			errs = append(errs, &configError{"LINK_RETURN_URLS", err.Error() + " (want absolute https URLs, comma-separated, e.g. https://app.example.com/tesla/done)"})
		}
	}
	c.ActivityRetention = owner.DefaultRetention
	if v := e.get("ACTIVITY_RETENTION", ""); v != "" {
		if c.ActivityRetention, err = owner.ParseRetention(v); err != nil {
			return nil, &configError{"ACTIVITY_RETENTION", err.Error()}
		}
	}
	mb, err := intVarAllowZero(e, "TOKEN_CACHE_MB", 32)
	errs.add("TOKEN_CACHE_MB", err)
	c.TokenCacheBytes = int(mb) << 20
	limit, err := intVarAllowZero(e, "MEMORY_LIMIT_MB", 80)
	errs.add("MEMORY_LIMIT_MB", err)
	c.MemoryLimit = int64(limit) << 20
	if err == nil && limit > 0 && limit < 2*mb+minMemoryMB {
		errs = append(errs, &configError{"MEMORY_LIMIT_MB", fmt.Sprintf("must be at least twice TOKEN_CACHE_MB plus %d (the service itself), "+
			"so at least %d with TOKEN_CACHE_MB=%d; or lower TOKEN_CACHE_MB", minMemoryMB, 2*mb+minMemoryMB, mb)})
	}
	c.TrustProxy = e.get("TRUST_PROXY", "") == "true"
	if c.KeepAliveRate, err = strconv.ParseFloat(e.get("KEEPALIVE_RATE", "1"), 64); err != nil ||
		c.KeepAliveRate <= 0 || c.KeepAliveRate > 1000 || math.IsNaN(c.KeepAliveRate) {
		errs = append(errs, &configError{"KEEPALIVE_RATE", "must be a number of refreshes per second above 0 and at most 1000, e.g. 2 or 0.5"})
	}
	switch v := e.get("WEBHOOK_ALLOW_PRIVATE", "false"); v {
	case "true", "false":
		c.WebhookPrivate = v == "true"
	default:
		errs = append(errs, &configError{"WEBHOOK_ALLOW_PRIVATE", "must be true or false"})
	}
	for _, v := range []struct {
		name string
		def  int32
		dst  *int
	}{
		{"RATE_LIMIT_CONNECT", 30, &c.ConnectPerMinute},
		{"RATE_LIMIT_API", 100, &c.APIPerSecond},
		{"TESLA_TOKEN_RPS", 10, &c.TeslaTokenRPS},
	} {
		n, err := intVarAllowZero(e, v.name, v.def)
		errs.add(v.name, err)
		*v.dst = int(n)
	}
	if v := e.get("METRICS_ADDR", ""); v != "" {
		if _, _, perr := net.SplitHostPort(v); perr != nil {
			errs = append(errs, &configError{"METRICS_ADDR", "must be host:port, e.g. 127.0.0.1:9464"})
		} else {
			c.MetricsAddr = v
		}
	}
	c.ForceRefreshCooldown = link.DefaultForceRefreshCooldown
	if v := e.get("FORCE_REFRESH_COOLDOWN", ""); v != "" {
		if d, perr := time.ParseDuration(v); perr != nil || d < 0 || d > time.Hour {
			errs = append(errs, &configError{"FORCE_REFRESH_COOLDOWN", "must be a duration from 0s (off) to 1h, e.g. 30s"})
		} else if d == 0 {
			c.ForceRefreshCooldown = -1
		} else {
			c.ForceRefreshCooldown = d
		}
	}
	if v := e.get("SHUTDOWN_DRAIN", ""); v != "" {
		if d, perr := time.ParseDuration(v); perr != nil || d < 0 || d > 10*time.Minute {
			errs = append(errs, &configError{"SHUTDOWN_DRAIN", "must be a duration from 0s to 10m, e.g. 10s"})
		} else {
			c.ShutdownDrain = d
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		errs = append(errs, &configError{"LOG_LEVEL", "must be debug, info, warn or error"})
	}
	if !slices.Contains([]string{"json", "text"}, c.LogFormat) {
		errs = append(errs, &configError{"LOG_FORMAT", "must be json or text"})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return c, nil
}

func parsePublicURL(v string) (*url.URL, error) {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("must be an absolute http(s) URL without query, e.g. https://link.example.com")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	return u, nil
}

func absoluteURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func parseSessionKeys(v string) ([][]byte, error) {
	var keys [][]byte
	for i, part := range strings.Split(v, ",") {
		b, err := seal.DecodeBase64(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("key %d is not valid base64", i+1)
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("key %d is %d bytes; each key needs at least 32 random bytes (base64)", i+1, len(b))
		}
		keys = append(keys, b)
	}
	return keys, nil
}

func scopesVar(e env, name string, def []string) ([]string, error) {
	v := e.get(name, "")
	if v == "" {
		return def, nil
	}
	var out []string
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(allOptionalScopes, s) {
			return nil, &configError{name, fmt.Sprintf("unknown scope %q (known: %s)", s, strings.Join(allOptionalScopes, ", "))}
		}
		out = append(out, s)
	}
	return out, nil
}

func durationVar(e env, name string, def time.Duration) (time.Duration, error) {
	v := e.get(name, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, &configError{name, "must be a positive duration such as 30m or 12h"}
	}
	return d, nil
}

func intVar(e env, name string, def int32) (int32, error) {
	v := e.get(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > 10000 {
		return 0, &configError{name, "must be a positive whole number"}
	}
	return int32(n), nil
}

// minMemoryMB is what the service needs besides its token cache: the Go
// runtime, connection buffers and pools, templates and catalogs.
const minMemoryMB = 16

func intVarAllowZero(e env, name string, def int32) (int32, error) {
	if e.get(name, "") == "0" {
		return 0, nil
	}
	return intVar(e, name, def)
}
