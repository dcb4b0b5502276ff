package templates

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"teslalink/web/static"
)

func render(t *testing.T, name string) string {
	t.Helper()
	c, ok := samplePages()[name]
	if !ok {
		t.Fatalf("no sample page %q", name)
	}
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return buf.String()
}

func TestEveryPageBasics(t *testing.T) {
	t.Parallel()
	css, err := static.FS.ReadFile("app.css")
	if err != nil {
		t.Fatalf("read app.css: %v", err)
	}
	for name := range samplePages() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			html := render(t, name)
			if size := len(html) + len(css); size >= 50*1024 {
				t.Errorf("page plus CSS is %d bytes, want < 50 KB", size)
			}
			for _, want := range []string{
				`<!doctype html>`, `<html lang="en">`, `name="viewport"`,
				`<meta name="referrer" content="no-referrer">`,
				`<link rel="stylesheet" href="/static/app.css?v=abc123">`,
				`href="#main"`, `id="main"`, `class="site-header"`, `class="site-footer"`,
			} {
				if !strings.Contains(strings.ToLower(html), strings.ToLower(want)) {
					t.Errorf("missing %s", want)
				}
			}
			if n := strings.Count(html, "<h1"); n != 1 {
				t.Errorf("%d <h1> elements, want 1", n)
			}
			for _, bad := range []string{"<script", " style=", "javascript:", "onclick", "TemplFailedSanitization"} {
				if strings.Contains(strings.ToLower(html), strings.ToLower(bad)) {
					t.Errorf("page contains %q", bad)
				}
			}
			checkForms(t, html)
			checkLabels(t, html)
		})
	}
}

var (
	formRe     = regexp.MustCompile(`(?s)<form[^>]*>.*?</form>`)
	checkboxRe = regexp.MustCompile(`<input type="checkbox"[^>]*\bid="([^"]+)"`)
)

// checkForms asserts every form posts and carries the CSRF field.
func checkForms(t *testing.T, html string) {
	t.Helper()
	for _, f := range formRe.FindAllString(html, -1) {
		if !strings.Contains(f, `method="post"`) {
			t.Errorf("form without method=post: %.80s", f)
		}
		if !strings.Contains(f, `<input type="hidden" name="csrf" value="csrf-token-value">`) {
			t.Errorf("form without csrf input: %.80s", f)
		}
	}
}

// checkLabels asserts every checkbox has exactly one <label for>.
func checkLabels(t *testing.T, html string) {
	t.Helper()
	inputs := strings.Count(html, `type="checkbox"`)
	ids := checkboxRe.FindAllStringSubmatch(html, -1)
	if len(ids) != inputs {
		t.Fatalf("%d checkboxes but %d with an id", inputs, len(ids))
	}
	for _, m := range ids {
		if n := strings.Count(html, `<label for="`+m[1]+`"`); n != 1 {
			t.Errorf("checkbox %s has %d labels, want 1", m[1], n)
		}
	}
}

func TestPageContent(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"landing": {`href="/connect"`, `Connect your Tesla`, `Acme Fleet will never`},
		"connect": {
			`<form method="post" action="/connect"`, `<legend>`, `Read</legend>`, `Control</legend>`,
			`name="scope" value="user_data" id="scope-user_data" checked`,
			`name="scope" value="vehicle_location" id="scope-vehicle_location" aria-describedby`,
			`data-testid="always-scopes"`, `Sign in with Tesla`, `Stay connected`, `Continue to Tesla`,
		},
		"connect-relink": {`Change what Acme Fleet can access`, `name="relink" value="1"`, `data-testid="error-summary"`, `href="#scope-user_data"`},
		"account": {
			`data-testid="granted-scopes"`, `<li data-scope="user_data">`, `<li data-scope="vehicle_cmds">`,
			`data-testid="missing-scopes"`, `data-scope="vehicle_location"`,
			`data-testid="vehicles"`, `<li data-vin="5YJ3E1EA7KF000001">`, `Unnamed vehicle`,
			`data-testid="status" data-status="active">Active<`, `Europe, Middle East &amp; Africa`,
			`<time datetime="2025-03-11T12:00:00Z" title="11 Mar 2025, 12:00 UTC">3 days ago</time>`,
			`data-client="fleet-dashboard"`, `5 minutes ago`, `Yesterday`,
			`href="/connect?relink=1"`, `href="/account/revoke"`, `action="/logout"`,
			`<li data-kind="used">`, `Used by fleet-dashboard`, `Permissions changed on Tesla&#39;s page`,
			`No longer sharing Vehicle location.`, `Now sharing Vehicle commands. No longer sharing Energy data.`,
			`Access revoked by charging-scheduler`, `Access revoked by you`, `Sharing: Profile, Vehicle data, Vehicle location`,
			`The sign-in expired, or your Tesla password changed.`,
			`href="/account#activity-section" rel="prev"`, `href="/account?page=3#activity-section" rel="next"`, `Page 2`,
			`href="/account/data" download`, `href="/account/delete"`,
		},
		"account-reauth": {`Tesla asked you to sign in again`, `>Reconnect</a>`, `data-status="needs_reauth">Sign-in needed<`,
			`data-testid="vehicles-note"`, `data-testid="tesla-unreachable"`, `No service has used this connection yet.`},
		"revoke-confirm": {`action="/account/revoke"`, `Tesla will stop sharing your data with Acme Fleet.`, `button-danger`, `href="/account"`},
		"revoked":        {`data-testid="tesla-revoke-link"`, `rel="noreferrer"`, `href="https://auth.tesla.com/user/revoke/consent?revoke_client_id=abc&amp;back_url=`},
		"signed-out":     {`You are signed out`},
		"delete-confirm": {`action="/account/delete"`, `Tesla will stop sharing your data with Acme Fleet, and Acme Fleet will forget you.`,
			`button-danger`, `href="/account"`, `name="csrf" value="csrf-token-value"`},
		"deleted": {`data-testid="deleted"`, `2 keys to your Tesla account`, `1 connection with its permissions`, `57 activity entries`,
			`1 sign-in<`, `data-testid="tesla-revoke-link"`, `rel="noreferrer"`},
		"error": {`data-testid="error-reference"`, `k3x9q2`, `href="/connect"`, `Try again`},
	}
	for name, wants := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			html := render(t, name)
			for _, w := range wants {
				if !strings.Contains(html, w) {
					t.Errorf("missing %s", w)
				}
			}
		})
	}
}

func TestAccountOmissions(t *testing.T) {
	t.Parallel()
	html := render(t, "account")
	for _, absent := range []string{`data-scope="openid"`, `data-scope="offline_access"`, `data-testid="tesla-unreachable"`, `data-testid="reauth-banner"`} {
		if strings.Contains(html, absent) {
			t.Errorf("active account page contains %s", absent)
		}
	}
	if strings.Contains(html, "button-primary") {
		t.Error("active account page has a primary button; its only actions are secondary")
	}
	for _, absent := range []string{"TemplFailed", "vehicle_cmds<"} {
		if strings.Contains(html, absent) {
			t.Errorf("page shows %q", absent)
		}
	}
}

func TestConnectShowsNoAlwaysInputs(t *testing.T) {
	t.Parallel()
	html := render(t, "connect")
	for _, s := range []string{"openid", "offline_access"} {
		if strings.Contains(html, `value="`+s+`"`) {
			t.Errorf("always-included scope %s is an input", s)
		}
	}
	if n := strings.Count(html, `type="checkbox"`); n != 7 {
		t.Errorf("%d checkboxes, want 7", n)
	}
}

func TestStaticAssets(t *testing.T) {
	t.Parallel()
	css, err := static.FS.ReadFile("app.css")
	if err != nil {
		t.Fatal(err)
	}
	if len(css) >= 12*1024 {
		t.Errorf("app.css is %d bytes, want < 12 KB", len(css))
	}
	for _, want := range []string{"prefers-color-scheme: dark", ":focus-visible", "min-height: 48px"} {
		if !bytes.Contains(css, []byte(want)) {
			t.Errorf("app.css lacks %q", want)
		}
	}
	if bytes.Contains(css, []byte("@import")) || bytes.Contains(css, []byte("url(")) {
		t.Error("app.css loads something external")
	}
	if _, err := static.FS.ReadFile("favicon.svg"); err != nil {
		t.Errorf("favicon.svg: %v", err)
	}
}

// TestWritePreview writes every sample page to $TESLALINK_UI_PREVIEW (with
// app.css beside it) so a person can open or screenshot them.
func TestWritePreview(t *testing.T) {
	dir := os.Getenv("TESLALINK_UI_PREVIEW")
	if dir == "" {
		t.Skip("set TESLALINK_UI_PREVIEW=dir to write the sample pages")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"app.css", "favicon.svg"} {
		b, err := static.FS.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name := range samplePages() {
		html := strings.ReplaceAll(render(t, name), "/static/", "")
		if err := os.WriteFile(filepath.Join(dir, name+".html"), []byte(html), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
