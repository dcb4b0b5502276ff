package teslasim

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
	"time"
)

var knownGrants = map[string]bool{"authorization_code": true, "refresh_token": true, "client_credentials": true}

func (s *Sim) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		teslaError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		s.begin("token.invalid", w, r)
		teslaError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	gt := r.PostForm.Get("grant_type")
	endpoint := "token." + gt
	if !knownGrants[gt] {
		endpoint = "token.unsupported"
	}
	if !s.begin(endpoint, w, r) {
		return
	}
	if _, ok := s.takeFault(FaultUnauthorizedClient, endpoint); ok {
		teslaError(w, http.StatusUnauthorized, "unauthorized_client", "client is not authorized")
		return
	}
	switch gt {
	case "authorization_code":
		s.tokenCode(w, r)
	case "refresh_token":
		s.tokenRefresh(w, r)
	case "client_credentials":
		s.tokenClientCredentials(w, r)
	default:
		teslaError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type")
	}
}

// clientCreds returns the client id and secret from HTTP Basic auth or the form.
func clientCreds(r *http.Request) (id, secret string, hasSecret bool) {
	if u, p, ok := r.BasicAuth(); ok {
		uid, err1 := url.QueryUnescape(u)
		pw, err2 := url.QueryUnescape(p)
		if err1 == nil && err2 == nil {
			return uid, pw, true
		}
		return u, p, true
	}
	_, hasSecret = r.PostForm["client_secret"]
	return r.PostForm.Get("client_id"), r.PostForm.Get("client_secret"), hasSecret
}

// clientOK authenticates the client. A confidential client must send its
// secret where needSecret says so; a public client must never send one.
func (s *Sim) clientOK(id, secret string, needSecret, hasSecret bool) bool {
	if id != s.cfg.ClientID {
		return false
	}
	if s.cfg.PublicClient {
		return !hasSecret
	}
	if !needSecret && !hasSecret {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.ClientSecret)) == 1
}

func (s *Sim) tokenCode(w http.ResponseWriter, r *http.Request) {
	id, secret, hasSecret := clientCreds(r)
	if !s.clientOK(id, secret, true, hasSecret) {
		teslaError(w, http.StatusUnauthorized, "unauthorized_client", "client authentication failed")
		return
	}
	f := r.PostForm
	code := f.Get("code")
	if code == "" || f.Get("redirect_uri") == "" {
		teslaError(w, http.StatusBadRequest, "invalid_request", "code and redirect_uri are required")
		return
	}
	aud := f.Get("audience")
	if _, ok := s.regionOfBase(r, aud); !ok {
		teslaError(w, http.StatusBadRequest, "invalid_request", "audience must be a Fleet API base URL")
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	c := s.codes[code]
	switch {
	case c == nil || c.used || !now.Before(c.expires) || c.client != id:
		s.mu.Unlock()
		teslaError(w, http.StatusBadRequest, "invalid_auth_code", "the authorization code is invalid, expired or already used")
		return
	}
	c.used = true // consumed by any attempt, successful or not
	s.mu.Unlock()
	if f.Get("redirect_uri") != c.redirectURI {
		teslaError(w, http.StatusBadRequest, "invalid_redirect_url", "redirect_uri does not match the authorization request")
		return
	}
	verifier := f.Get("code_verifier")
	switch {
	case s.cfg.PublicClient && c.challenge == "": // authorize refuses this; kept as a second guard
		teslaError(w, http.StatusBadRequest, "invalid_request", "a public client must use PKCE")
		return
	case c.challenge != "" && verifier == "":
		teslaError(w, http.StatusBadRequest, "invalid_request", "code_verifier is required")
		return
	case c.challenge != "" && s256(verifier) != c.challenge:
		teslaError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match code_challenge")
		return
	case c.challenge == "" && verifier != "":
		teslaError(w, http.StatusBadRequest, "invalid_grant", "code_verifier sent without code_challenge")
		return
	}
	s.mu.Lock()
	s.families++
	fam := &family{id: s.families, sub: c.sub, client: c.client, region: c.region, audience: aud, nonce: c.nonce}
	s.grantLocked(c.sub, c.client).scopes = c.scopes
	s.mu.Unlock()
	s.issue(w, r, "token.authorization_code", fam, "", now)
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return b64.EncodeToString(sum[:])
}

func (s *Sim) tokenRefresh(w http.ResponseWriter, r *http.Request) {
	id, secret, hasSecret := clientCreds(r)
	if !s.clientOK(id, secret, false, hasSecret) {
		teslaError(w, http.StatusUnauthorized, "unauthorized_client", "client authentication failed")
		return
	}
	tok := r.PostForm.Get("refresh_token")
	if tok == "" {
		teslaError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
		return
	}
	if _, ok := s.takeFault(FaultRefreshLoginRequired, "token.refresh_token"); ok {
		teslaError(w, http.StatusUnauthorized, "login_required", "the refresh_token is invalid")
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	rec := s.refresh[tok]
	ok := rec != nil && !rec.fam.dead && rec.fam.client == id && now.Before(rec.expires)
	if ok {
		fam := rec.fam
		switch {
		case tok == fam.current:
			if fam.lastUsed != "" {
				delete(s.refresh, fam.lastUsed) // an older used token loses its grace
			}
			fam.lastUsed, fam.lastUsedAt = tok, now
		case tok == fam.lastUsed && now.Before(fam.lastUsedAt.Add(s.cfg.RefreshGrace)):
			// Tesla keeps the most recently used refresh token valid for 24h.
		default:
			ok = false
		}
	}
	switch {
	case s.spent[tok] && ok:
		s.reuse.Accepted++
	case s.spent[tok]:
		s.reuse.Refused++
	case ok:
		s.spent[tok] = true
	}
	s.mu.Unlock()
	if !ok {
		teslaError(w, http.StatusUnauthorized, "login_required", "the refresh_token is invalid")
		return
	}
	s.issue(w, r, "token.refresh_token", rec.fam, tok, now)
}

// issue creates a new refresh token, access token and ID token for fam and
// answers with them. used is the refresh token just used ("" for a code).
func (s *Sim) issue(w http.ResponseWriter, r *http.Request, endpoint string, fam *family, used string, now time.Time) {
	prefix := strings.ToUpper(fam.region) + "_"
	refresh := prefix + randHex(32)
	jti := randHex(16)

	s.mu.Lock()
	if fam.dead { // revoked while we were working
		s.mu.Unlock()
		teslaError(w, http.StatusUnauthorized, "login_required", "the refresh_token is invalid")
		return
	}
	g := s.grantLocked(fam.sub, fam.client)
	scopes := append([]string(nil), g.scopes...)
	s.seq++
	seq := s.seq
	if used != "" && !s.cfg.KeepOldAccessTokens {
		g.accessValidFrom = seq
	}
	// Cycle out the previous refresh token unless it is the one just used
	// (which keeps its 24-hour grace).
	if fam.current != "" && fam.current != fam.lastUsed {
		delete(s.refresh, fam.current)
	}
	fam.current = refresh
	s.refresh[refresh] = &refreshRec{fam: fam, expires: now.Add(s.cfg.RefreshTokenTTL)}
	aud := s.audiences(r, fam.audience)
	s.access[jti] = &accessRec{
		sub: fam.sub, client: fam.client, region: fam.region, seq: seq,
		aud: aud, scopes: scopes, expires: now.Add(s.cfg.AccessTokenTTL),
	}
	s.rememberLocked(refresh)
	s.mu.Unlock()

	at, err := signJWT(s.keys.signer(), map[string]any{
		"iss": s.cfg.Issuer, "sub": fam.sub, "aud": aud, "azp": fam.client,
		"scp": scopes, "ou_code": strings.ToUpper(fam.region), "locale": "en-US",
		"amr": []string{"pwd"}, "auth_time": now.Unix(),
		"iat": now.Unix(), "exp": now.Add(s.cfg.AccessTokenTTL).Unix(), "jti": jti,
	})
	if err != nil {
		teslaError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	idt, err := s.idToken(endpoint, fam, now)
	if err != nil {
		teslaError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	s.mu.Lock()
	s.rememberLocked(at)
	s.rememberLocked(idt)
	s.mu.Unlock()

	if used != "" {
		if _, ok := s.takeFault(FaultDropAfterRefresh, endpoint); ok {
			dropConnection(w)
			return
		}
	}
	body := map[string]any{
		"access_token":  at,
		"refresh_token": refresh,
		"id_token":      idt,
		"expires_in":    int(s.cfg.AccessTokenTTL.Seconds()),
		"token_type":    "Bearer",
	}
	if !s.cfg.OmitScopeInTokenResponse {
		body["scope"] = strings.Join(scopes, " ")
	}
	writeJSON(w, http.StatusOK, body)
}

// audiences lists the regional base URLs, the requested one first.
func (s *Sim) audiences(r *http.Request, requested string) []string {
	out := []string{requested}
	for _, reg := range regions {
		if b := s.regionBase(r, reg); b != requested {
			out = append(out, b)
		}
	}
	return out
}

// idToken builds the ID token, applying any active ID token faults.
func (s *Sim) idToken(endpoint string, fam *family, now time.Time) (string, error) {
	claims := map[string]any{
		"iss": s.cfg.Issuer, "aud": fam.client, "sub": fam.sub,
		"iat": now.Unix(), "exp": now.Add(s.cfg.IDTokenTTL).Unix(), "auth_time": now.Unix(),
	}
	if fam.nonce != "" {
		claims["nonce"] = fam.nonce
	}
	on := map[Fault]bool{}
	for _, f := range idTokenFaults {
		if _, ok := s.takeFault(f, endpoint); ok {
			on[f] = true
		}
	}
	if on[FaultIDTokenWrongIssuer] {
		claims["iss"] = "https://evil.example.com/oauth2/v3/nts"
	}
	if on[FaultIDTokenWrongAudience] {
		claims["aud"] = "someone-else-" + fam.client
	}
	if on[FaultIDTokenMissingAudience] {
		delete(claims, "aud")
	}
	if on[FaultIDTokenWrongNonce] {
		claims["nonce"] = "wrong-" + randHex(8)
	}
	if on[FaultIDTokenMissingNonce] {
		delete(claims, "nonce")
	}
	if on[FaultIDTokenMissingSub] {
		delete(claims, "sub")
	}
	if on[FaultIDTokenMissingIAT] {
		delete(claims, "iat")
	}
	if on[FaultIDTokenExpired] {
		claims["iat"] = now.Add(-2 * time.Hour).Unix()
		claims["auth_time"] = now.Add(-2 * time.Hour).Unix()
		claims["exp"] = now.Add(-time.Hour).Unix()
	}
	switch {
	case on[FaultIDTokenAlgNone]:
		return unsignedJWT(claims)
	case on[FaultIDTokenUnknownKID]:
		k, err := s.keys.unknownKey()
		if err != nil {
			return "", err
		}
		return signJWT(k, claims)
	}
	tok, err := signJWT(s.keys.signer(), claims)
	if err != nil {
		return "", err
	}
	if on[FaultIDTokenBadSignature] {
		tok = corruptSignature(tok)
	}
	return tok, nil
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

func (s *Sim) tokenClientCredentials(w http.ResponseWriter, r *http.Request) {
	if s.cfg.PublicClient {
		// Tesla: open-source apps "cannot generate or access APIs that require
		// client credentials tokens (Partner Authentication Token)".
		teslaError(w, http.StatusUnauthorized, "unauthorized_client", "public clients cannot obtain partner tokens")
		return
	}
	id, secret, hasSecret := clientCreds(r)
	if !s.clientOK(id, secret, true, hasSecret) {
		teslaError(w, http.StatusUnauthorized, "unauthorized_client", "client authentication failed")
		return
	}
	aud := r.PostForm.Get("audience")
	if _, ok := s.regionOfBase(r, aud); !ok {
		teslaError(w, http.StatusBadRequest, "invalid_request", "audience must be a Fleet API base URL")
		return
	}
	set := map[string]bool{}
	for _, sc := range splitScopes(r.PostForm.Get("scope")) {
		if isKnownScope(sc) {
			set[sc] = true
		}
	}
	scopes := canonical(set)
	now := s.clock.Now()
	jti := randHex(16)
	s.mu.Lock()
	s.seq++
	s.access[jti] = &accessRec{
		sub: id, client: id, seq: s.seq, partner: true, aud: []string{aud},
		scopes: scopes, expires: now.Add(s.cfg.AccessTokenTTL),
	}
	s.mu.Unlock()
	at, err := signJWT(s.keys.signer(), map[string]any{
		"iss": s.cfg.Issuer, "sub": id, "client_id": id, "aud": []string{aud}, "scp": scopes,
		"iat": now.Unix(), "exp": now.Add(s.cfg.AccessTokenTTL).Unix(), "jti": jti,
	})
	if err != nil {
		teslaError(w, http.StatusInternalServerError, "server_error", "signing failed")
		return
	}
	s.mu.Lock()
	s.rememberLocked(at)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "expires_in": int(s.cfg.AccessTokenTTL.Seconds()),
		"token_type": "Bearer", "scope": strings.Join(scopes, " "),
	})
}

// RefreshReuse counts refresh grants that presented a refresh token which
// had already been accepted once: a client that used a token twice.
// Accepted ones fell within Tesla's grace for the most recently used token;
// refused ones came later (or after a newer token was used) and got 401
// login_required. A token refused by an injected fault is not counted.
type RefreshReuse struct {
	Accepted int `json:"accepted"`
	Refused  int `json:"refused"`
}

// RefreshReuses returns the reuse counters since the simulator started
// (they are not kept in the state file).
func (s *Sim) RefreshReuses() RefreshReuse {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reuse
}
