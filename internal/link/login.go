package link

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/oidc"
	"teslalink/internal/teslascope"
)

// LoginTTL bounds a login transaction: from BeginLogin to FinishLogin.
const LoginTTL = 10 * time.Minute

// AlwaysScopes are requested on every login.
var AlwaysScopes = teslascope.Fixed()

// LoginState is one login transaction between BeginLogin and FinishLogin.
// The caller keeps it where only the browser that started the login can
// bring it back (the handlers use an encrypted, authenticated cookie); it
// holds the PKCE verifier and must never be shown.
type LoginState struct {
	State    string
	Nonce    string
	Verifier string
	Scopes   []string // everything requested, AlwaysScopes included
	ReturnTo string   // a relative path on this site, or ""
	// LinkSessionID is opaque data of the caller that began the login (a
	// link session started by a backend); FinishLogin hands it back.
	LinkSessionID string
	Created       time.Time
}

// BeginRequest starts a login.
type BeginRequest struct {
	Scopes        []string // optional scopes chosen; each must be offered
	ReturnTo      string   // where to go afterwards; anything but a relative path is dropped
	LinkSessionID string   // see LoginState.LinkSessionID
	Locale        string   // sent to Tesla's authorize page ("" → not sent)
}

// BeginLogin starts a login transaction: fresh state, nonce and PKCE
// verifier, and the provider's authorization URL to send the owner to.
func (s *Service) BeginLogin(ctx context.Context, req BeginRequest) (string, *LoginState, error) {
	scopes := slices.Clone(AlwaysScopes)
	for _, sc := range req.Scopes {
		if !slices.Contains(s.offered, sc) {
			return "", nil, apperr.New(apperr.UnknownPermission, fmt.Errorf("scope %q is not offered", sanitize(sc)))
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	if len(req.ReturnTo) > MaxReturnTo {
		return "", nil, apperr.New(apperr.ReturnToTooLong, fmt.Errorf("return_to of %d bytes", len(req.ReturnTo)))
	}
	st := &LoginState{State: randomToken(32), Nonce: randomToken(32), Verifier: randomToken(48), Scopes: scopes,
		ReturnTo: SafeReturnTo(req.ReturnTo), LinkSessionID: req.LinkSessionID, Created: s.now()}
	authURL, err := s.tesla.AuthCodeURL(ctx, oidc.AuthRequest{State: st.State, Nonce: st.Nonce, Verifier: st.Verifier,
		Scopes: scopes, Locale: req.Locale, PromptMissingScopes: true})
	if err != nil {
		return "", nil, apperr.New(apperr.TeslaUnavailable, err)
	}
	return authURL, st, nil
}

// Finished is a completed login.
type Finished struct {
	Link          *db.Link
	ReturnTo      string // from BeginRequest, checked
	LinkSessionID string // from BeginRequest
}

// FinishLogin completes the login st (nil when the caller has none) with
// the provider's callback query q: it checks state, single use and the
// answer's issuer, maps the provider's error=, and exchanges the code for
// a stored link. Every failure is an *apperr.Error.
func (s *Service) FinishLogin(ctx context.Context, st *LoginState, q url.Values) (*Finished, error) {
	if st == nil || s.now().Sub(st.Created) > LoginTTL || st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return nil, apperr.New(apperr.LoginExpired, errors.New("missing, invalid or expired login state"))
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		return nil, apperr.New(apperr.LoginStateMismatch, errors.New("state mismatch"))
	}
	fresh, err := s.store.ConsumeLoginState(ctx, hashState(st.State), st.Created.Add(LoginTTL+time.Minute))
	if err != nil {
		return nil, translate(err)
	}
	if !fresh {
		return nil, apperr.New(apperr.LoginReplayed, errors.New("state replayed"))
	}
	if err := s.tesla.CheckCallbackIssuer(q); oidc.KindOf(err) == oidc.KindTransient {
		return nil, apperr.New(apperr.TeslaUnavailable, err) // discovery not done yet: we cannot check the issuer
	} else if err != nil {
		return nil, apperr.New(apperr.LoginWrongIssuer, err)
	}
	if e := q.Get("error"); e != "" {
		return nil, providerError(e)
	}
	code := q.Get("code")
	if code == "" {
		return nil, apperr.New(apperr.LoginNoCode, errors.New("no code"))
	}
	l, err := s.completeLogin(ctx, loginGrant{Code: code, Verifier: st.Verifier, Nonce: st.Nonce, RequestedScopes: st.Scopes})
	if err != nil {
		return nil, err
	}
	return &Finished{Link: l, ReturnTo: SafeReturnTo(st.ReturnTo), LinkSessionID: st.LinkSessionID}, nil
}

// providerError maps the callback's error= parameter.
func providerError(code string) error {
	err := errors.New("provider returned error=" + sanitize(code))
	switch code {
	case "access_denied":
		return apperr.New(apperr.LoginDenied, err)
	case "invalid_scope":
		return apperr.New(apperr.LoginInvalidScope, err)
	case "login_required", "interaction_required", "consent_required":
		return apperr.New(apperr.LoginSignInRequired, err)
	case "temporarily_unavailable", "server_error":
		return apperr.New(apperr.LoginProviderDown, err)
	}
	return apperr.New(apperr.LoginProviderError, err)
}

// MaxReturnTo bounds ReturnTo: the login state travels in a cookie, which
// browsers (and the cookie codec) cap at 4 KB with everything else in it.
const MaxReturnTo = 1024

// SafeReturnTo keeps only a relative path on this site, so no login ends
// on another site (see docs/security.md, "Login transaction").
func SafeReturnTo(v string) string {
	if v == "" || !strings.HasPrefix(v, "/") || strings.HasPrefix(v, "//") || strings.ContainsAny(v, "\\\r\n\t") {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return ""
	}
	return v
}

// sanitize keeps a provider's value safe for logs (no injection of log lines).
func sanitize(v string) string {
	if len(v) > 64 {
		v = v[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '?'
	}, v)
}

// randomToken returns n random bytes, base64url-encoded (CSPRNG).
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashState(state string) []byte {
	h := sha256.Sum256([]byte("login-state:" + state))
	return h[:]
}

// loginGrant is what FinishLogin hands to completeLogin after its checks.
type loginGrant struct {
	Code, Verifier, Nonce string
	RequestedScopes       []string
}

// completeLogin exchanges the code, verifies the ID token, reads the
// owner's profile, and stores owner and link with sealed tokens.
func (s *Service) completeLogin(ctx context.Context, in loginGrant) (*db.Link, error) {
	tok, err := s.tesla.Exchange(ctx, in.Code, in.Verifier, "")
	if err != nil {
		return nil, loginFailed("exchange", oidc.KindOf(err), err)
	}
	if tok.RefreshToken == "" {
		return nil, loginFailed("exchange", oidc.KindInvalid, errors.New("no refresh token in the response (offline_access not granted?)"))
	}
	claims, err := s.tesla.VerifyExchangedIDToken(ctx, tok, in.Nonce)
	if err != nil {
		return nil, loginFailed("id_token", oidc.KindInvalid, err)
	}
	info, err := s.tesla.Profile(ctx, tok.AccessToken, claims)
	if err != nil {
		return nil, loginFailed("userinfo", oidc.KindOf(err), err)
	}
	region := s.regionOf(ctx, tok)
	granted := tok.Scopes
	if granted == nil {
		granted = in.RequestedScopes // provider said nothing: assume what was asked
	}
	l, err := s.store.SaveLink(ctx, db.LinkGrant{
		Sub: claims.Subject, Email: info.Email, Name: info.Name, Region: region, IDTokenIssuer: claims.Issuer,
		RequestedScopes: in.RequestedScopes, GrantedScopes: granted, AccessTokenExpiresAt: s.expiry(tok),
	}, func(linkID string) (db.SealedTokens, error) {
		return s.sealTokens(linkID, tok.RefreshToken, tok.AccessToken)
	})
	if err != nil {
		return nil, translate(fmt.Errorf("login store: %w", err)) // database trouble: 503 or 500
	}
	s.forget(l.ID) // new tokens and scopes: nothing cached about the old grant stays
	s.log.Info("link saved", "link_id", l.ID, "region", region, "granted_scopes", granted)
	return l, nil
}

// loginFailed maps a failed step of completing a login to its code.
func loginFailed(step string, kind oidc.Kind, err error) error {
	err = fmt.Errorf("login %s: %w", step, err)
	switch kind {
	case oidc.KindTransient:
		return apperr.New(apperr.LoginTeslaDown, err)
	case oidc.KindConfig:
		return apperr.New(apperr.LoginMisconfigured, err)
	case oidc.KindReauth:
		return apperr.New(apperr.LoginCodeExpired, err)
	}
	return apperr.New(apperr.LoginUnverified, err)
}

// regionOf reads the region from the access token's ou_code, else asks the
// Fleet API (only when that can help: Tesla or configured Fleet URLs, not a
// standard provider's token at Tesla's), else falls back to the configured
// audience's region.
func (s *Service) regionOf(ctx context.Context, tok *oidc.Tokens) string {
	if tok.Region != "" {
		if _, ok := s.fleet.RegionBaseURL(tok.Region); ok {
			return tok.Region
		}
	}
	if s.fleet.Usable() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if region, _, err := s.fleet.UserRegion(ctx, s.tesla.Audience(), tok.AccessToken); err == nil {
			if _, ok := s.fleet.RegionBaseURL(region); ok {
				return region
			}
		}
	}
	for _, r := range []string{"na", "eu", "cn"} {
		if u, _ := s.fleet.RegionBaseURL(r); u == s.tesla.Audience() {
			return r
		}
	}
	return "na"
}
