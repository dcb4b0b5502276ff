package teslasim

import "net/http"

func (s *Sim) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	if !s.begin("discovery", w, r) {
		return
	}
	b := s.base(r)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.cfg.Issuer,
		"authorization_endpoint":                b + PathAuthorize,
		"token_endpoint":                        b + PathToken,
		"userinfo_endpoint":                     b + PathUserinfo,
		"end_session_endpoint":                  b + PathEndSession,
		"jwks_uri":                              b + PathJWKS,
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token", "client_credentials"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      knownScopes,
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nonce", "auth_time"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic"},
	})
}

func (s *Sim) handleJWKS(w http.ResponseWriter, r *http.Request) {
	if !s.begin("jwks", w, r) {
		return
	}
	writeJSON(w, http.StatusOK, s.keys.jwks())
}

func (s *Sim) handleEndSession(w http.ResponseWriter, r *http.Request) {
	if !s.begin("end_session", w, r) {
		return
	}
	writeHTML(w, http.StatusOK, pageData{Title: "Signed out", Message: "You are signed out of the Tesla simulator."})
}
