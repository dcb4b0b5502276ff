package teslasim

import (
	"crypto/rsa"
	"log/slog"
	"time"
)

// Default values used when the corresponding Config field is zero.
const (
	DefaultClientID     = "teslalink-dev"
	DefaultClientSecret = "teslalink-dev-secret"
	DefaultPassword     = "tesla"
	DefaultIssuer       = "https://auth.tesla.com/oauth2/v3/nts"

	DefaultAccessTokenTTL  = 8 * time.Hour
	DefaultIDTokenTTL      = 8 * time.Hour
	DefaultRefreshTokenTTL = 90 * 24 * time.Hour // Tesla: "3 months"
	DefaultRefreshGrace    = 24 * time.Hour
	DefaultCodeTTL         = 10 * time.Minute
)

// Regions the simulator serves, lower-case as inside teslalink.
var regions = []string{"na", "eu", "cn"}

// Config configures a Sim. Zero values get sensible defaults.
type Config struct {
	ClientID     string // default "teslalink-dev"
	ClientSecret string // default "teslalink-dev-secret"; always "" with PublicClient
	// PublicClient registers ClientID as Tesla's "open source app": a public
	// client without a secret. As Tesla documents for open-source tokens,
	// authorize then requires PKCE (S256), the code exchange requires the
	// code_verifier, and no client_credentials (partner) token is issued. A
	// client_secret sent with any request is refused: the client has none.
	PublicClient bool
	RedirectURIs []string // exact allowed redirect URIs (required for authorize to succeed)
	Password     string   // default "tesla": the password every simulated owner uses
	// Issuer is the ID token `iss` and the discovery `issuer`; default
	// "https://auth.tesla.com/oauth2/v3/nts". As at Tesla, it is not the URL
	// the discovery document is served from.
	Issuer string
	// Owners are optional fixed owners (matched by email, case-insensitively).
	// Any other email signs in as a distinct owner whose sub is derived from the
	// email (stable across Sims); such an owner is in region "na" unless the
	// email's local part ends in "+eu" or "+cn" (e.g. "ann+eu@example.com").
	Owners []Owner
	// RequirePartnerRegistration makes user Fleet API endpoints answer 412
	// until the client's domain is registered in that region.
	RequirePartnerRegistration bool
	// KeepOldAccessTokens switches off Tesla's 2024 rule that a refresh
	// invalidates earlier access tokens of the same owner and client.
	KeepOldAccessTokens bool
	// OmitScopeInTokenResponse leaves `scope` out of token responses, so the
	// client has to read the granted scopes from the access token's `scp`.
	OmitScopeInTokenResponse bool
	// Clock is the simulator's time; nil: a new Clock starting at time.Now().
	Clock *Clock
	// Logger receives request logs (never token values); nil: discard.
	Logger *slog.Logger
	// StateFile, when set, keeps the simulator's owners, grants, refresh
	// tokens (with their grace), live access tokens, signing keys and clock
	// offset across restarts: it is read by New and written after every
	// request that may change them, and at Close.
	StateFile string
	// SigningKey is the initial RS256 signing key; nil: a fresh 2048-bit key.
	// Sharing one key across many Sims saves key generation time in tests.
	SigningKey *rsa.PrivateKey

	AccessTokenTTL  time.Duration // default 8h
	IDTokenTTL      time.Duration // default 8h
	RefreshTokenTTL time.Duration // default 90 days
	RefreshGrace    time.Duration // default 24h: how long the last used refresh token keeps working
	CodeTTL         time.Duration // default 10 minutes
}

// Owner is a simulated Tesla account.
type Owner struct {
	Email    string
	Name     string
	Sub      string
	Region   string // "na", "eu" or "cn"; default "na"
	Vehicles []Vehicle
}

// Vehicle is one entry of GET /api/1/vehicles.
type Vehicle struct {
	ID          int64
	VehicleID   int64
	VIN         string
	DisplayName string
	State       string // "online", "asleep" or "offline"
}

func (c Config) withDefaults() Config {
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	switch {
	case c.PublicClient:
		c.ClientSecret = ""
	case c.ClientSecret == "":
		c.ClientSecret = DefaultClientSecret
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Clock == nil {
		c.Clock = NewClock(time.Now())
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.AccessTokenTTL <= 0 {
		c.AccessTokenTTL = DefaultAccessTokenTTL
	}
	if c.IDTokenTTL <= 0 {
		c.IDTokenTTL = DefaultIDTokenTTL
	}
	if c.RefreshTokenTTL <= 0 {
		c.RefreshTokenTTL = DefaultRefreshTokenTTL
	}
	if c.RefreshGrace <= 0 {
		c.RefreshGrace = DefaultRefreshGrace
	}
	if c.CodeTTL <= 0 {
		c.CodeTTL = DefaultCodeTTL
	}
	c.RedirectURIs = append([]string(nil), c.RedirectURIs...)
	c.Owners = append([]Owner(nil), c.Owners...)
	return c
}
