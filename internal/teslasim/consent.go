package teslasim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"

	"golang.org/x/net/html"
)

// Consent drives the login-and-consent page like a browser would (GET the
// authorize URL, POST the form) and returns the redirect Location: the
// client's redirect_uri with code/state/issuer/locale, or error=.... grant
// lists the optional scopes the owner leaves checked (openid and
// offline_access are always granted; with require_requested_scopes=true every
// requested scope is fixed). allow=false presses "deny". The password is the
// configured one. It does not follow the redirect. Requests are served
// in-process, so they count as calls to "authorize" like a browser's would.
func (s *Sim) Consent(ctx context.Context, authorizeURL, email string, grant []string, allow bool) (*url.URL, error) {
	return s.ConsentWithPassword(ctx, authorizeURL, email, s.cfg.Password, grant, allow)
}

// ConsentWithPassword is Consent with an explicit password, to exercise the
// wrong-password path.
func (s *Sim) ConsentWithPassword(ctx context.Context, authorizeURL, email, password string, grant []string, allow bool) (*url.URL, error) {
	do := func(req *http.Request) (*http.Response, error) { return s.serveInProcess(req), nil }
	return consent(ctx, do, authorizeURL, email, password, grant, allow)
}

// ConsentOverHTTP is Consent for a simulator in another process: it sends
// the two requests with client, which must not follow redirects (its
// CheckRedirect returns http.ErrUseLastResponse), and needs the password.
func ConsentOverHTTP(ctx context.Context, client *http.Client, authorizeURL, email, password string, grant []string, allow bool) (*url.URL, error) {
	do := func(req *http.Request) (*http.Response, error) {
		res, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("teslasim: consent: %s: %w", req.Method, err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("teslasim: consent: read page: %w", err)
		}
		res.Body = io.NopCloser(bytes.NewReader(body))
		return res, nil
	}
	return consent(ctx, do, authorizeURL, email, password, grant, allow)
}

func consent(ctx context.Context, do func(*http.Request) (*http.Response, error), authorizeURL, email, password string, grant []string, allow bool) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL, nil)
	if err != nil {
		return nil, fmt.Errorf("teslasim: consent: build request: %w", err)
	}
	res, err := do(req)
	if err != nil {
		return nil, err
	}
	if loc, ok, err := redirectLocation(res, authorizeURL); ok || err != nil {
		return loc, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("teslasim: consent: authorize page answered %d", res.StatusCode)
	}
	form, action, err := parseConsentForm(res.Body)
	if err != nil {
		return nil, err
	}
	vals := url.Values{}
	for _, in := range form {
		switch {
		case in.typ == "hidden":
			vals.Add(in.name, in.value)
		case in.typ == "checkbox" && in.name == "scope" && !in.disabled:
			if slices.Contains(grant, in.value) {
				vals.Add("scope", in.value)
			}
		}
	}
	vals.Set("email", email)
	vals.Set("password", password)
	vals.Set("decision", map[bool]string{true: "allow", false: "deny"}[allow])
	base, err := url.Parse(authorizeURL)
	if err != nil {
		return nil, fmt.Errorf("teslasim: consent: parse authorize URL: %w", err)
	}
	target, err := base.Parse(action)
	if err != nil {
		return nil, fmt.Errorf("teslasim: consent: parse form action: %w", err)
	}
	post, err := http.NewRequestWithContext(ctx, http.MethodPost, target.String(), strings.NewReader(vals.Encode()))
	if err != nil {
		return nil, fmt.Errorf("teslasim: consent: build form post: %w", err)
	}
	post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, err = do(post); err != nil {
		return nil, err
	}
	loc, ok, err := redirectLocation(res, target.String())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("teslasim: consent: form post answered %d without a redirect", res.StatusCode)
	}
	return loc, nil
}

func (s *Sim) serveInProcess(req *http.Request) *http.Response {
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, req)
	return rec.Result()
}

func redirectLocation(res *http.Response, from string) (*url.URL, bool, error) {
	if res.StatusCode < 300 || res.StatusCode > 399 {
		return nil, false, nil
	}
	base, err := url.Parse(from)
	if err != nil {
		return nil, true, fmt.Errorf("teslasim: consent: parse URL: %w", err)
	}
	loc, err := base.Parse(res.Header.Get("Location"))
	if err != nil {
		return nil, true, fmt.Errorf("teslasim: consent: parse Location: %w", err)
	}
	return loc, true, nil
}

type formInput struct {
	typ, name, value string
	disabled         bool
}

// parseConsentForm finds the first POST form and its inputs.
func parseConsentForm(r io.Reader) ([]formInput, string, error) {
	doc, err := html.Parse(r)
	if err != nil {
		return nil, "", fmt.Errorf("teslasim: consent: parse page: %w", err)
	}
	var form *html.Node
	var find func(n *html.Node)
	find = func(n *html.Node) {
		if form != nil {
			return
		}
		if n.Type == html.ElementNode && n.Data == "form" && strings.EqualFold(attr(n, "method"), "post") {
			form = n
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			find(c)
		}
	}
	find(doc)
	if form == nil {
		return nil, "", errors.New("teslasim: consent: no form on the authorize page")
	}
	var inputs []formInput
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" {
			_, disabled := attrOK(n, "disabled")
			_, checked := attrOK(n, "checked")
			typ := strings.ToLower(attr(n, "type"))
			if typ != "checkbox" || checked {
				inputs = append(inputs, formInput{typ: typ, name: attr(n, "name"), value: attr(n, "value"), disabled: disabled})
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(form)
	return inputs, attr(form, "action"), nil
}

func attr(n *html.Node, key string) string {
	v, _ := attrOK(n, key)
	return v
}

func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}
