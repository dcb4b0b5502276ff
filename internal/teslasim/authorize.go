package teslasim

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// authzRequest is a validated authorization request.
type authzRequest struct {
	raw                     url.Values
	clientID, redirectURI   string
	state, nonce, challenge string
	scopes                  []string // requested (canonical order, fixed ones included)
	requireRequested        bool
}

// authzError is a problem with an authorization request. redirect=false means
// it must be shown as a page, never sent to the redirect_uri.
type authzError struct {
	redirect   bool
	code, desc string
}

func (s *Sim) parseAuthz(q url.Values) (*authzRequest, *authzError) {
	a := &authzRequest{
		raw: q, clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
		state: q.Get("state"), nonce: q.Get("nonce"), challenge: q.Get("code_challenge"),
		requireRequested: q.Get("require_requested_scopes") == "true",
	}
	if a.clientID == "" || a.clientID != s.cfg.ClientID {
		return nil, &authzError{code: "invalid_client", desc: "Unknown client_id."}
	}
	if a.redirectURI == "" || !slices.Contains(s.cfg.RedirectURIs, a.redirectURI) {
		return nil, &authzError{code: "invalid_redirect_url", desc: "The redirect_uri is not registered for this client."}
	}
	if q.Get("response_type") != "code" {
		return a, &authzError{true, "unsupported_response_type", "response_type must be code"}
	}
	if a.state == "" {
		return a, &authzError{true, "invalid_request", "state is required"}
	}
	set := map[string]bool{}
	for _, sc := range splitScopes(q.Get("scope")) {
		if !isKnownScope(sc) {
			return a, &authzError{true, "invalid_scope", "unknown scope"}
		}
		set[sc] = true
	}
	if !set["openid"] {
		return a, &authzError{true, "invalid_scope", "openid scope is required"}
	}
	a.scopes = withFixedScopes(canonical(set))
	method := q.Get("code_challenge_method")
	if (method != "" || a.challenge != "") && method != "S256" {
		return a, &authzError{true, "invalid_request", "code_challenge_method must be S256"}
	}
	if method == "S256" && (len(a.challenge) < 43 || len(a.challenge) > 128) {
		return a, &authzError{true, "invalid_request", "invalid code_challenge"}
	}
	if s.cfg.PublicClient && a.challenge == "" {
		return a, &authzError{true, "invalid_request", "code_challenge is required for this client"}
	}
	return a, nil
}

// errorRedirect sends the browser back to the client with an error.
func (s *Sim) errorRedirect(w http.ResponseWriter, r *http.Request, a *authzRequest, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}, "issuer": {s.base(r) + "/oauth2/v3"}}
	if a.state != "" {
		v.Set("state", a.state)
	}
	http.Redirect(w, r, withQuery(a.redirectURI, v), http.StatusFound)
}

func withQuery(u string, v url.Values) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + v.Encode()
}

func (s *Sim) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if !s.begin("authorize", w, r) {
		return
	}
	var q url.Values
	switch r.Method {
	case http.MethodGet:
		q = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeHTML(w, http.StatusBadRequest, pageData{Title: "Bad request", Error: "The form could not be read."})
			return
		}
		var err error
		if q, err = url.ParseQuery(r.PostForm.Get("authz")); err != nil {
			writeHTML(w, http.StatusBadRequest, pageData{Title: "Bad request", Error: "The sign-in request is malformed."})
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeHTML(w, http.StatusMethodNotAllowed, pageData{Title: "Method not allowed"})
		return
	}
	a, aerr := s.parseAuthz(q)
	if aerr != nil && !aerr.redirect {
		writeHTML(w, http.StatusBadRequest, pageData{Title: "Sign-in error", Error: aerr.desc + " (" + aerr.code + ")"})
		return
	}
	if aerr != nil {
		s.errorRedirect(w, r, a, aerr.code, aerr.desc)
		return
	}
	if r.Method == http.MethodGet {
		s.renderConsent(w, http.StatusOK, a, "", "")
		return
	}
	s.decide(w, r, a)
}

func (s *Sim) renderConsent(w http.ResponseWriter, status int, a *authzRequest, email, msg string) {
	rows := make([]scopeRow, 0, len(a.scopes))
	for _, sc := range a.scopes {
		rows = append(rows, scopeRow{Name: sc, Label: scopeLabels[sc], Fixed: isFixedScope(sc) || a.requireRequested})
	}
	writeHTML(w, status, pageData{
		Title: "Sign in to Tesla", Error: msg, Consent: true, Authz: a.raw.Encode(),
		Client: a.clientID, Email: email, Scopes: rows, Locked: a.requireRequested,
	})
}

func (s *Sim) decide(w http.ResponseWriter, r *http.Request, a *authzRequest) {
	f := r.PostForm
	switch f.Get("decision") {
	case "deny":
		s.errorRedirect(w, r, a, "access_denied", "The owner denied the request.")
		return
	case "allow":
	default:
		s.renderConsent(w, http.StatusBadRequest, a, f.Get("email"), "Choose Allow or Deny.")
		return
	}
	email := normEmail(f.Get("email"))
	if !strings.Contains(email, "@") ||
		subtle.ConstantTimeCompare([]byte(f.Get("password")), []byte(s.cfg.Password)) != 1 {
		s.renderConsent(w, http.StatusUnauthorized, a, email, "Wrong email or password.")
		return
	}
	checked := map[string]bool{"openid": true, "offline_access": true}
	for _, sc := range f["scope"] {
		if slices.Contains(a.scopes, sc) {
			checked[sc] = true
		}
	}
	granted := canonical(checked)
	if a.requireRequested && !slices.Equal(granted, a.scopes) {
		s.errorRedirect(w, r, a, "access_denied", "The owner did not grant every required scope.")
		return
	}
	o := s.owner(email)
	code := strings.ToUpper(o.Region) + "_" + randHex(24)
	now := s.clock.Now()
	s.mu.Lock()
	if len(s.codes) > 10000 {
		for k, c := range s.codes {
			if c.used || !now.Before(c.expires) {
				delete(s.codes, k)
			}
		}
	}
	s.emails[o.Sub] = o.Email
	s.codes[code] = &authCode{
		client: a.clientID, redirectURI: a.redirectURI, sub: o.Sub, region: o.Region,
		nonce: a.nonce, challenge: a.challenge, scopes: granted,
		expires: now.Add(s.cfg.CodeTTL),
	}
	s.rememberLocked(code)
	s.mu.Unlock()
	locale := a.raw.Get("locale")
	if locale == "" {
		locale = "en-US"
	}
	v := url.Values{"code": {code}, "state": {a.state}, "issuer": {s.base(r) + "/oauth2/v3"}, "locale": {locale}}
	http.Redirect(w, r, withQuery(a.redirectURI, v), http.StatusFound)
}
