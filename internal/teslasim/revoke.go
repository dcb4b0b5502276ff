package teslasim

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"strings"
)

// handleRevokeConsent serves Tesla's consent-revocation page. GET shows a
// confirmation form; the owner proves who they are with email and password
// (the sim keeps no login session). POST kills every refresh and access token
// of that owner for the client, then redirects to back_url (an absolute
// http(s) URL) or shows a confirmation page when there is none.
func (s *Sim) handleRevokeConsent(w http.ResponseWriter, r *http.Request) {
	if !s.begin("revoke_consent", w, r) {
		return
	}
	var v url.Values
	switch r.Method {
	case http.MethodGet:
		v = r.URL.Query()
	case http.MethodPost:
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			writeHTML(w, http.StatusBadRequest, pageData{Title: "Bad request", Error: "The form could not be read."})
			return
		}
		v = r.PostForm
	default:
		w.Header().Set("Allow", "GET, POST")
		writeHTML(w, http.StatusMethodNotAllowed, pageData{Title: "Method not allowed"})
		return
	}
	client, back := v.Get("revoke_client_id"), v.Get("back_url")
	if client != s.cfg.ClientID {
		writeHTML(w, http.StatusBadRequest, pageData{Title: "Manage app access", Error: "Unknown application (revoke_client_id)."})
		return
	}
	if back != "" && !validBackURL(back) {
		writeHTML(w, http.StatusBadRequest, pageData{Title: "Manage app access", Error: "back_url must be an absolute http(s) URL."})
		return
	}
	d := pageData{Title: "Manage app access", Revoke: true, RevokeID: client, BackURL: back}
	if r.Method == http.MethodGet {
		writeHTML(w, http.StatusOK, d)
		return
	}
	email := normEmail(v.Get("email"))
	d.Email = email
	if !strings.Contains(email, "@") ||
		subtle.ConstantTimeCompare([]byte(v.Get("password")), []byte(s.cfg.Password)) != 1 {
		d.Error = "Wrong email or password."
		writeHTML(w, http.StatusUnauthorized, d)
		return
	}
	sub := s.owner(email).Sub
	s.mu.Lock()
	s.revokeLocked(sub, client)
	s.mu.Unlock()
	if back == "" {
		writeHTML(w, http.StatusOK, pageData{Title: "Access removed", Message: client + " no longer has access to your Tesla account."})
		return
	}
	http.Redirect(w, r, back, http.StatusFound)
}

func validBackURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
