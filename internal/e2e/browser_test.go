package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"teslalink/internal/teslasim"
	"teslalink/internal/testenv"
)

const (
	browserTimeout = 60 * time.Second // the whole walk of one owner
	stepTimeout    = 20 * time.Second // one page or one action
	sessionCookie  = "__Host-teslalink"
)

// What each owner asks for on /connect, and what they leave ticked at Tesla.
var (
	askScopes     = []string{"user_data", "vehicle_device_data", "vehicle_cmds"}
	grantScopes   = []string{"user_data", "vehicle_device_data"}
	refusedScopes = []string{"vehicle_cmds"}
	vinRe         = regexp.MustCompile(`^[A-HJ-NPR-Z0-9]{17}$`)
)

// adaVehicles are fixed in the simulator so the account page can be compared
// exactly; bob gets the simulator's derived vehicles.
var adaVehicles = []teslasim.Vehicle{
	{ID: 1001, VehicleID: 2001, VIN: "5YJ3E1EA1PF000001", DisplayName: "Ada's Model 3", State: "online"},
	{ID: 1002, VehicleID: 2002, VIN: "7SAYGDEE5PF000002", DisplayName: "Road Trip", State: "asleep"},
}

// owner is one simulated Tesla owner walking through the service.
type owner struct {
	key           string // screenshot prefix
	email         string
	width, height int64
	mobile        bool
	vehicles      []string // expected VINs; nil: at least one well-formed VIN
}

// TestBrowserLinkFlow walks two owners through the service in headless
// Chromium: landing, scope choice, Tesla consent with one scope unticked, the
// account page, sign out, sign in again and revoke (owner A), or staying linked
// (owner B). Afterwards the database holds no token ciphertext for A's revoked
// link while B's link is untouched, and nothing the simulator issued leaked
// into the service's logs.
func TestBrowserLinkFlow(t *testing.T) {
	t.Parallel()
	execPath := findBrowser(t)
	e := testenv.New(t, testenv.Options{Sim: func(c *teslasim.Config) {
		c.Owners = append(c.Owners, teslasim.Owner{Email: "ada@example.com", Name: "Ada Lovelace", Vehicles: adaVehicles})
	}})
	shots := newShotSaver(t)

	ada := owner{key: "a", email: "ada@example.com", width: 412, height: 915, mobile: true,
		vehicles: []string{adaVehicles[0].VIN, adaVehicles[1].VIN}}
	bob := owner{key: "b", email: "bob@example.com", width: 1280, height: 900}

	a := newBrowser(t, e, execPath, ada, shots)
	a.linkAndCheckAccount()
	a.signOut()
	a.linkAndCheckAccount() // sign in again: Tesla's page asks again
	a.revoke()

	b := newBrowser(t, e, execPath, bob, shots)
	b.linkAndCheckAccount()
	b.darkMode() // the same account in dark mode, and its change-permissions page

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.DBURL)
	if err != nil {
		t.Fatalf("connect to database: %v", err)
	}
	defer conn.Close(ctx)
	type linkRow struct {
		status                      string
		refreshSealed, accessSealed []byte
		revokedAt                   *time.Time
		granted                     []string
	}
	linkOf := func(email string) linkRow {
		t.Helper()
		var r linkRow
		err := conn.QueryRow(ctx, `SELECT l.status, l.refresh_token_sealed, l.access_token_sealed, l.revoked_at, l.granted_scopes
			FROM links l JOIN owners o ON o.id = l.owner_id WHERE o.sub = $1`, e.Sim.OwnerSub(email)).
			Scan(&r.status, &r.refreshSealed, &r.accessSealed, &r.revokedAt, &r.granted)
		if err != nil {
			t.Fatalf("link of %s: %v", email, err)
		}
		return r
	}
	la := linkOf(ada.email)
	if la.status != "revoked" || la.refreshSealed != nil || la.accessSealed != nil || la.revokedAt == nil {
		t.Errorf("ada's link after revoke: status %q, refresh sealed %v, access sealed %v, revoked_at %v; want revoked, no ciphertexts",
			la.status, la.refreshSealed != nil, la.accessSealed != nil, la.revokedAt)
	}
	lb := linkOf(bob.email)
	if lb.status != "active" || len(lb.refreshSealed) == 0 || len(lb.accessSealed) == 0 || lb.revokedAt != nil {
		t.Errorf("bob's link: status %q, refresh sealed %d bytes, access sealed %d bytes, revoked_at %v; want active with ciphertexts",
			lb.status, len(lb.refreshSealed), len(lb.accessSealed), lb.revokedAt)
	}
	for _, s := range grantScopes {
		if !slices.Contains(lb.granted, s) {
			t.Errorf("bob's granted scopes %v lack %s", lb.granted, s)
		}
	}
	for _, s := range refusedScopes {
		if slices.Contains(lb.granted, s) {
			t.Errorf("bob's granted scopes %v contain the refused %s", lb.granted, s)
		}
	}
	if leaks := e.Leaks(); len(leaks) > 0 {
		t.Errorf("simulator secrets in the service's logs: %v", leaks)
	}
}

// findBrowser returns the Chromium to drive, or skips (fails on CI) without one.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not installed")
	}
	t.Skip("no chromium, chromium-browser or google-chrome on PATH")
	return ""
}

// shotSaver numbers and writes full-page screenshots to a temp dir and, when
// TESLALINK_SCREENSHOTS is set, to that directory too.
type shotSaver struct {
	t    *testing.T
	mu   sync.Mutex
	n    int
	dirs []string
}

func newShotSaver(t *testing.T) *shotSaver {
	t.Helper()
	dir, err := os.MkdirTemp("", "teslalink-screenshots-")
	if err != nil {
		t.Fatal(err)
	}
	s := &shotSaver{t: t, dirs: []string{dir}}
	if d := os.Getenv("TESLALINK_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("TESLALINK_SCREENSHOTS: %v", err)
		}
		s.dirs = append(s.dirs, d)
	}
	t.Logf("screenshots in %s", strings.Join(s.dirs, " and "))
	return s
}

func (s *shotSaver) save(name string, png []byte) {
	s.mu.Lock()
	s.n++
	file := fmt.Sprintf("%02d-%s.png", s.n, name)
	s.mu.Unlock()
	for _, d := range s.dirs {
		if err := os.WriteFile(filepath.Join(d, file), png, 0o644); err != nil {
			s.t.Errorf("save screenshot %s: %v", file, err)
		}
	}
}

// browser is one owner's own Chromium (own profile, own cookies).
type browser struct {
	t     *testing.T
	e     *testenv.Env
	o     owner
	ctx   context.Context
	shots *shotSaver
}

func newBrowser(t *testing.T, e *testenv.Env, execPath string, o owner, shots *shotSaver) *browser {
	t.Helper()
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(execPath),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("ignore-certificate-errors", true), // testenv's self-signed certificate
		chromedp.UserDataDir(t.TempDir()),
	)
	t.Cleanup(cancelAlloc) // runs before the TempDir is removed
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(cancelTab)
	ctx, cancel := context.WithTimeout(tabCtx, browserTimeout)
	t.Cleanup(cancel)
	b := &browser{t: t, e: e, o: o, ctx: ctx, shots: shots}
	opts := []chromedp.EmulateViewportOption{chromedp.EmulatePortrait}
	if o.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch)
	}
	// The first action starts the browser and ties its life to the context it
	// gets, so it runs on the owner's context, not on a shorter step context.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(o.width, o.height, opts...)); err != nil {
		t.Fatalf("start %s: %v", execPath, err)
	}
	return b
}

// do runs actions within the step timeout and fails with where the browser is.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression on the current page.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fatalf("%s: %v", what, err)
	}
	return v
}

// fatalf fails with the owner, the current URL and the page's text.
func (b *browser) fatalf(format string, args ...any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		loc = "(unknown: " + err.Error() + ")"
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		text = "(unknown: " + err.Error() + ")"
	}
	b.t.Fatalf("%s: %s\nat %s\npage text:\n%s", b.o.email, fmt.Sprintf(format, args...), loc, text)
}

// location is the current URL.
func (b *browser) location() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		b.fatalf("location: %v", err)
	}
	return loc
}

// page waits for the page that shows sel at URL prefix urlPrefix.
func (b *browser) page(name, urlPrefix, sel string) {
	b.t.Helper()
	b.do("wait for the "+name+" page ("+sel+")", chromedp.WaitVisible(chromedp.CSS(sel)))
	if loc := b.location(); !strings.HasPrefix(loc, urlPrefix) {
		b.fatalf("%s page at %s, want %s…", name, loc, urlPrefix)
	}
}

// shot saves a full-page PNG of what the browser shows.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fatalf("screenshot %s: %v", name, err)
	}
	b.shots.save(b.o.key+"-"+name, png)
}

func (b *browser) click(sel string) {
	b.t.Helper()
	b.do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
}

// texts lists an attribute (or the text, attr "") of every element sel matches.
func (b *browser) texts(sel, attr string) []string {
	b.t.Helper()
	get := "e.textContent.trim()"
	if attr != "" {
		get = fmt.Sprintf("e.getAttribute(%q)", attr)
	}
	return eval[[]string](b, "read "+sel, fmt.Sprintf(`Array.from(document.querySelectorAll(%q), e => %s)`, sel, get))
}

// linkAndCheckAccount goes from the landing page through /connect and Tesla's
// consent page to the account page and checks what it shows.
func (b *browser) linkAndCheckAccount() {
	b.t.Helper()
	b.do("open the landing page", chromedp.Navigate(b.e.URL+"/"))
	b.page("landing", b.e.URL+"/", `[data-testid=connect-link]`)
	b.shot("landing")
	b.click(`[data-testid=connect-link]`)

	b.page("connect", b.e.URL+"/connect", `[data-testid=connect-form]`)
	b.chooseScopes()
	b.shot("connect")
	b.click(`[data-testid=continue]`)

	b.page("Tesla sign-in", b.e.Sim.AuthorizeURL(), `form input[name=password]`)
	offered := b.texts(`input[type=checkbox][name=scope]`, "value")
	if !sameSet(offered, askScopes) {
		b.fatalf("Tesla's page offers %v, want the scopes asked for %v", offered, askScopes)
	}
	b.do("sign in at Tesla",
		chromedp.Clear(chromedp.CSS(`input[name=email]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=email]`), b.o.email),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), teslasim.DefaultPassword),
	)
	for _, s := range refusedScopes {
		b.click(fmt.Sprintf(`input[type=checkbox][name=scope][value=%q]`, s))
	}
	if left := b.checkedScopes(`input[type=checkbox][name=scope]:not([disabled])`); !sameSet(left, grantScopes) {
		b.fatalf("left ticked at Tesla: %v, want %v", left, grantScopes)
	}
	b.shot("tesla-consent")
	b.click(`button[name=decision][value=allow]`)

	b.page("account", b.e.URL+"/account", `[data-testid=granted-scopes]`)
	b.shot("account")
	b.checkAccount()
}

// chooseScopes ticks exactly askScopes among the offered checkboxes.
func (b *browser) chooseScopes() {
	b.t.Helper()
	for _, s := range testenv.OptionalScopes {
		sel := "#scope-" + s
		checked := eval[bool](b, "read "+sel, fmt.Sprintf(`document.querySelector(%q).checked`, sel))
		if checked != slices.Contains(askScopes, s) {
			b.click(sel)
		}
	}
	if got := b.checkedScopes(`[data-testid=connect-form] input[type=checkbox][name=scope]`); !sameSet(got, askScopes) {
		b.fatalf("ticked on /connect: %v, want %v", got, askScopes)
	}
}

func (b *browser) checkedScopes(sel string) []string {
	b.t.Helper()
	return eval[[]string](b, "read checked "+sel,
		fmt.Sprintf(`Array.from(document.querySelectorAll(%q)).filter(e => e.checked).map(e => e.value)`, sel))
}

// checkAccount checks the account page: who, status, scopes, vehicles, cookie.
func (b *browser) checkAccount() {
	b.t.Helper()
	if got := b.texts(`[data-testid=email]`, ""); !slices.Equal(got, []string{b.o.email}) {
		b.fatalf("account email %v, want %s", got, b.o.email)
	}
	if got := b.texts(`[data-testid=status]`, "data-status"); !slices.Equal(got, []string{"active"}) {
		b.fatalf("status %v, want active", got)
	}
	if got := b.texts(`[data-testid=granted-scopes] li[data-scope]`, "data-scope"); !sameSet(got, grantScopes) {
		b.fatalf("granted scopes shown %v, want exactly %v", got, grantScopes)
	}
	if got := b.texts(`[data-testid=missing-scopes] li[data-scope]`, "data-scope"); !sameSet(got, refusedScopes) {
		b.fatalf("missing scopes shown %v, want %v", got, refusedScopes)
	}
	vins := b.texts(`[data-testid=vehicles] li[data-vin]`, "data-vin")
	if b.o.vehicles != nil {
		if !sameSet(vins, b.o.vehicles) {
			b.fatalf("vehicles shown %v, want %v", vins, b.o.vehicles)
		}
	} else if len(vins) == 0 {
		b.fatalf("no vehicles shown")
	}
	for _, v := range vins {
		if !vinRe.MatchString(v) {
			b.fatalf("vehicle VIN %q is not a VIN", v)
		}
	}
	pageText := eval[string](b, "read the vehicles", `document.querySelector("[data-testid=vehicles]").innerText`)
	for _, v := range vins {
		if !strings.Contains(pageText, v) {
			b.fatalf("VIN %s not visible in the vehicle list %q", v, pageText)
		}
	}
	b.checkSessionCookie()
}

// checkSessionCookie asserts the session cookie is the __Host- one, Secure and HttpOnly.
func (b *browser) checkSessionCookie() {
	b.t.Helper()
	var cookies []*network.Cookie
	b.do("read cookies", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		r, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{b.e.URL + "/"}})
		cookies = r.Cookies
		return err
	}))
	for _, c := range cookies {
		if c.Name == sessionCookie {
			if !c.Secure || !c.HTTPOnly || c.Path != "/" {
				b.fatalf("session cookie: secure %v, httponly %v, path %q", c.Secure, c.HTTPOnly, c.Path)
			}
			return
		}
	}
	names := make([]string, 0, len(cookies))
	for _, c := range cookies {
		names = append(names, c.Name)
	}
	b.fatalf("no %s cookie after sign-in; cookies: %v", sessionCookie, names)
}

// signOut presses Sign out and checks the signed-out page.
func (b *browser) signOut() {
	b.t.Helper()
	b.click(`[data-testid=sign-out]`)
	b.page("signed-out", b.e.URL+"/", `[data-testid=sign-in-again]`)
	b.shot("signed-out")
	b.do("open the account page signed out", chromedp.Navigate(b.e.URL+"/account"))
	b.page("landing (account while signed out)", b.e.URL+"/", `[data-testid=connect-link]`)
	if loc := b.location(); strings.HasPrefix(loc, b.e.URL+"/account") {
		b.fatalf("still on the account page after signing out")
	}
}

// revoke goes from the account page to the confirm page and revokes.
func (b *browser) revoke() {
	b.t.Helper()
	b.click(`[data-testid=revoke-link]`)
	b.page("revoke confirm", b.e.URL+"/account/revoke", `[data-testid=revoke-confirm]`)
	b.shot("revoke-confirm")
	b.click(`[data-testid=revoke-confirm]`)
	b.page("revoked", b.e.URL+"/account/revoke", `[data-testid=tesla-revoke-link]`)
	b.shot("revoked")
	hrefs := b.texts(`[data-testid=tesla-revoke-link]`, "href")
	if len(hrefs) != 1 || !strings.Contains(hrefs[0], "revoke_client_id="+b.e.Sim.Config().ClientID) {
		b.fatalf("Tesla revoke link %v lacks revoke_client_id", hrefs)
	}
	b.do("open the account page after revoke", chromedp.Navigate(b.e.URL+"/account"))
	b.page("landing (account after revoke)", b.e.URL+"/", `[data-testid=connect-link]`)
	if loc := b.location(); strings.HasPrefix(loc, b.e.URL+"/account") {
		b.fatalf("still on the account page after revoking")
	}
}

// darkMode switches to prefers-color-scheme: dark, shoots the account page
// again and the change-permissions page it links to, which comes back with the
// granted scopes ticked.
func (b *browser) darkMode() {
	b.t.Helper()
	b.do("prefer dark colours", chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	if !eval[bool](b, "check dark mode", `matchMedia("(prefers-color-scheme: dark)").matches`) {
		b.fatalf("dark mode emulation did not apply")
	}
	b.shot("account-dark")
	b.click(`[data-testid=change-permissions]`)
	b.page("change permissions", b.e.URL+"/connect", `[data-testid=connect-form]`)
	if got := b.checkedScopes(`[data-testid=connect-form] input[type=checkbox][name=scope]`); !sameSet(got, grantScopes) {
		b.fatalf("change permissions ticks %v, want the granted %v", got, grantScopes)
	}
	b.shot("change-permissions-dark")
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
