package handlers_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/handlers"
	"teslalink/internal/testenv"
)

// openapiHost is the server the document is matched against; requests are
// rewritten to it for routing only.
const openapiHost = "http://teslalink.test"

var openapiDoc = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi3.NewLoader().LoadFromData(handlers.OpenAPI())
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	doc.Servers = openapi3.Servers{{URL: openapiHost}}
	return legacy.NewRouter(doc)
})

// conformance is a RoundTripper that validates every /api/ response against
// openapi.yaml and fails the test on any mismatch.
type conformance struct {
	t    testing.TB
	base http.RoundTripper
	mu   sync.Mutex
	seen int
}

func (c *conformance) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.base.RoundTrip(req)
	if err != nil || !strings.HasPrefix(req.URL.Path, "/api/") {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	c.validate(req, res, body)
	return res, nil
}

func (c *conformance) validate(req *http.Request, res *http.Response, body []byte) {
	router, err := openapiDoc()
	if err != nil {
		c.t.Errorf("openapi.yaml: %v", err)
		return
	}
	u, _ := url.Parse(openapiHost + req.URL.RequestURI())
	routed := req.Clone(context.Background())
	routed.URL = u
	routed.Host = u.Host
	route, params, err := router.FindRoute(routed)
	if err != nil {
		// Only routes the API does not have may be missing from the document.
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
			c.t.Errorf("%s %s → %d: not in openapi.yaml: %v", req.Method, req.URL.Path, res.StatusCode, err)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: routed, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status: res.StatusCode, Header: res.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		c.t.Errorf("%s %s → %d does not conform to openapi.yaml: %v\nbody: %s", req.Method, req.URL.Path, res.StatusCode, err, body)
	}
	c.mu.Lock()
	c.seen++
	c.mu.Unlock()
}

// api is a backend calling the API with one key; every response is checked
// against openapi.yaml.
type api struct {
	t      testing.TB
	base   string
	key    string
	client *http.Client
}

func newAPI(t testing.TB, e *testenv.Env, key string) *api {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxIdleConnsPerHost: 64} //nolint:gosec // test server
	t.Cleanup(tr.CloseIdleConnections)
	conf := &conformance{t: t, base: tr}
	t.Cleanup(func() {
		conf.mu.Lock()
		defer conf.mu.Unlock()
		if conf.seen == 0 && !t.Failed() {
			t.Error("no API response was checked against openapi.yaml")
		}
	})
	return &api{t: t, base: e.URL, key: key, client: &http.Client{Timeout: 60 * time.Second, Transport: conf}}
}

func (a *api) withKey(key string) *api { c := *a; c.key = key; return &c }

// do sends a request; body "" sends none.
func (a *api) do(method, path, body string) (*http.Response, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, a.base+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Errorf("%s %s: %v", method, path, err)
		return &http.Response{StatusCode: -1, Header: http.Header{}}, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

type tokenOut struct {
	AccessToken     string    `json:"access_token"`
	TokenType       string    `json:"token_type"`
	ExpiresAt       time.Time `json:"expires_at"`
	Scopes          []string  `json:"scopes"`
	Region          string    `json:"region"`
	FleetAPIBaseURL string    `json:"fleet_api_base_url"`
	LinkID          string    `json:"link_id"`
}

type problemOut struct {
	Type   string `json:"type"`
	Status int    `json:"status"`
	Title  string `json:"title"`
}

type linkOut struct {
	ID            string     `json:"id"`
	OwnerSub      string     `json:"owner_sub"`
	OwnerEmail    string     `json:"owner_email"`
	Status        string     `json:"status"`
	StatusReason  string     `json:"status_reason"`
	Region        string     `json:"region"`
	GrantedScopes []string   `json:"granted_scopes"`
	RefreshedAt   *time.Time `json:"refreshed_at"`
	LastUsedAt    *time.Time `json:"last_used_at"`
	RevokedAt     *time.Time `json:"revoked_at"`
}

// token asks for the link's token and returns it on 200.
func (a *api) token(linkID, body string) (tokenOut, *http.Response, []byte) {
	a.t.Helper()
	res, b := a.do(http.MethodPost, "/api/v1/links/"+linkID+"/token", body)
	var out tokenOut
	if res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &out); err != nil {
			a.t.Errorf("token body: %v", err)
		}
	}
	return out, res, b
}

// wantProblem checks a problem answer's status and type slug.
func wantProblem(t testing.TB, res *http.Response, body []byte, status int, slug string) {
	t.Helper()
	var p problemOut
	if err := json.Unmarshal(body, &p); err != nil {
		t.Errorf("want problem %d %s, got %d %s", status, slug, res.StatusCode, body)
		return
	}
	if res.StatusCode != status || p.Status != status || p.Type != "https://teslalink.dev/problems/"+slug {
		t.Errorf("want %d %s, got %d %s", status, slug, res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("problem Content-Type = %q", ct)
	}
}

// newKey creates an API client and returns its key.
func newKey(t testing.TB, e *testenv.Env, name string, scopes ...string) string {
	t.Helper()
	if len(scopes) == 0 {
		scopes = apikey.Scopes
	}
	k, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.CreateAPIClient(context.Background(), name, k.Display, k.Hash, scopes); err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

// linkOwner runs the owner's login (granting what is asked) and returns their link.
func linkOwner(t testing.TB, e *testenv.Env, email string, scopes ...string) *db.Link {
	t.Helper()
	if len(scopes) == 0 {
		scopes = []string{"user_data", "vehicle_device_data"}
	}
	b := e.Browser()
	if res, _ := b.Login(email, scopes, nil); res.StatusCode != http.StatusSeeOther {
		logs := e.Logs.String()
		t.Fatalf("login %s: %d\n%s", email, res.StatusCode, logs[max(0, len(logs)-3000):])
	}
	rows, err := e.Store.ListLinks(context.Background(), db.LinkFilter{OwnerSub: e.Sim.OwnerSub(email)})
	if err != nil || len(rows) != 1 {
		t.Fatalf("link of %s: %v (%d rows)", email, err, len(rows))
	}
	l := rows[0].Link
	return &l
}
