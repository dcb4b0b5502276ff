package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"teslalink/internal/testenv"
)

func getIn(t *testing.T, e *testenv.Env, b *testenv.Browser, path, acceptLanguage string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.URL+path, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if acceptLanguage != "" {
		req.Header.Set("Accept-Language", acceptLanguage)
	}
	return b.Do(req)
}

// Pages follow Accept-Language until the owner picks a language in the
// switcher, which a cookie remembers.
func TestLanguages(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	res, body := getIn(t, e, b, "/", "de-CH,de;q=0.9,en;q=0.5")
	if res.Header.Get("Content-Language") != "de" || !strings.Contains(body, `<html lang="de">`) ||
		!strings.Contains(body, ">Tesla verbinden</a>") || !strings.Contains(res.Header.Get("Vary"), "Accept-Language") {
		t.Errorf("German landing: %q %q", res.Header.Get("Content-Language"), res.Header.Get("Vary"))
	}
	if _, body := getIn(t, e, b, "/", "ja"); !strings.Contains(body, `<html lang="en">`) {
		t.Errorf("an unoffered language does not fall back to English")
	}
	if res, body := getIn(t, e, b, "/no-such-page", "es"); res.StatusCode != http.StatusNotFound || !strings.Contains(body, "<h1>No encontrado</h1>") {
		t.Errorf("Spanish 404 page: %d", res.StatusCode)
	}

	res, _ = b.PostForm("/language", url.Values{"lang": {"fr"}, "return": {"/connect"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/connect" {
		t.Fatalf("switch: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if c := setCookieNamed(res, "__Host-teslalink-lang"); c == nil || c.Value != "fr" || !c.Secure || !c.HttpOnly || c.Path != "/" {
		t.Errorf("language cookie %+v", c)
	}
	if _, body := getIn(t, e, b, "/connect", "de"); !strings.Contains(body, `<html lang="fr">`) || !strings.Contains(body, "Continuer vers Tesla") ||
		!strings.Contains(body, `data-lang="fr"`) || !strings.Contains(body, `aria-current="true" data-lang="fr"`) {
		t.Errorf("the chosen French does not win over Accept-Language")
	}
	for _, back := range []string{"//evil.example/", "https://evil.example/", `/\evil.example`, ""} {
		res, _ := b.PostForm("/language", url.Values{"lang": {"nl"}, "return": {back}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
			t.Errorf("return %q: %d %q, want / ", back, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if res, body := b.PostForm("/language", url.Values{"lang": {"xx"}}); res.StatusCode != http.StatusBadRequest ||
		!strings.Contains(body, `<html lang="nl">`) {
		t.Errorf("unknown language: %d", res.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, e.URL+"/language", strings.NewReader("lang=de"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if res, _ := b.Do(req); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site switch: %d", res.StatusCode)
	}
	// Signed in, the account page and its activity follow the choice.
	signIn(t, e, b, "ann@example.com")
	b.PostForm("/language", url.Values{"lang": {"zh-Hans"}, "return": {"/account"}})
	if _, body := b.Get("/account"); !strings.Contains(body, "<h1>您的 Tesla 连接</h1>") || !strings.Contains(body, "已连接") {
		t.Errorf("Chinese account page")
	}
}

// The switcher's return path keeps only the owner pages' own parameters:
// nothing from the callback's query (code, state) or appended by anyone
// else reaches the HTML.
func TestLanguageSwitcherReturnPath(t *testing.T) {
	t.Parallel()
	e := testenv.New(t, testenv.Options{})
	b := e.Browser()
	signIn(t, e, b, "ann@example.com")
	for path, want := range map[string]string{
		"/account?page=2":                          `name="return" value="/account?page=2"`,
		"/account?page=1":                          `name="return" value="/account"`,
		"/connect?relink=1":                        `name="return" value="/connect?relink=1"`,
		"/account?secret=s3cr3t-value":             `name="return" value="/account"`,
		"/auth/tesla/callback?code=NA_abc&state=x": `name="return" value="/"`,
	} {
		_, body := b.Get(path)
		if !strings.Contains(body, want) || strings.Contains(body, "s3cr3t-value") || strings.Contains(body, "NA_abc") {
			t.Errorf("%s: want %s and no query echoed", path, want)
		}
	}
}
