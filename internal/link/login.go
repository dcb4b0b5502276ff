package link

import (
	"context"
	"errors"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/oidc"
)

// Login is what the callback hands over after checking state.
type Login struct {
	Code, Verifier, Nonce string
	RequestedScopes       []string
}

// LoginError says which step of completing a login failed; Kind tells why.
type LoginError struct {
	Step string // "exchange", "id_token", "userinfo", "store"
	Kind oidc.Kind
	Err  error
}

func (e *LoginError) Error() string { return "login " + e.Step + ": " + e.Err.Error() }
func (e *LoginError) Unwrap() error { return e.Err }

// CompleteLogin exchanges the code, verifies the ID token, reads the
// owner's profile, and stores owner and link with sealed tokens.
func (s *Service) CompleteLogin(ctx context.Context, in Login) (*db.Link, error) {
	tok, err := s.tesla.Exchange(ctx, in.Code, in.Verifier, "")
	if err != nil {
		return nil, &LoginError{Step: "exchange", Kind: oidc.KindOf(err), Err: err}
	}
	if tok.RefreshToken == "" {
		return nil, &LoginError{Step: "exchange", Kind: oidc.KindInvalid, Err: errors.New("no refresh token in the response (offline_access not granted?)")}
	}
	claims, err := s.tesla.VerifyIDToken(ctx, tok.IDToken, in.Nonce)
	if err != nil {
		return nil, &LoginError{Step: "id_token", Kind: oidc.KindInvalid, Err: err}
	}
	info, err := s.tesla.Profile(ctx, tok.AccessToken, claims)
	if err != nil {
		return nil, &LoginError{Step: "userinfo", Kind: oidc.KindOf(err), Err: err}
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
		return nil, &LoginError{Step: "store", Err: err}
	}
	s.log.Info("link saved", "link_id", l.ID, "region", region, "granted_scopes", granted)
	return l, nil
}

// regionOf reads the region from the access token's ou_code, else asks the
// Fleet API (only when that can help: Tesla or configured Fleet URLs, not a
// standard provider's token at Tesla's), else falls back to the configured
// audience's region.
func (s *Service) regionOf(ctx context.Context, tok *oidc.Tokens) string {
	if tok.Region != "" {
		if _, ok := s.tesla.RegionBaseURL(tok.Region); ok {
			return tok.Region
		}
	}
	if s.tesla.FleetRegionLookup() {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if region, _, err := s.tesla.UserRegion(ctx, s.tesla.Audience(), tok.AccessToken); err == nil {
			if _, ok := s.tesla.RegionBaseURL(region); ok {
				return region
			}
		}
	}
	for _, r := range []string{"na", "eu", "cn"} {
		if u, _ := s.tesla.RegionBaseURL(r); u == s.tesla.Audience() {
			return r
		}
	}
	return "na"
}
