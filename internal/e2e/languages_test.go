package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"teslalink/internal/i18n"
	"teslalink/internal/testenv"
)

// TestBrowserLanguages: a browser that prefers German gets the landing page
// in German; a linked owner on a phone then picks every other language in
// the footer's switcher (no JavaScript involved) and the account page comes
// back in it, with its activity, and keeps it on the next page.
//
// It runs alone, not beside the other browser tests (each walk has a fixed
// time budget, and several Chromiums at once share two cores).
func TestBrowserLanguages(t *testing.T) {
	execPath := findBrowser(t)
	e := testenv.New(t, testenv.Options{})
	shots := newShotSaver(t)
	dora := owner{key: "l", email: "dora@example.com", width: 360, height: 780, mobile: true}
	b := newBrowser(t, e, execPath, dora, shots)

	b.do("prefer German", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Accept-Language": "de-DE,de;q=0.9"}})
		return err
	}))
	b.do("open the landing page", chromedp.Navigate(e.URL+"/"))
	b.page("landing", e.URL+"/", `[data-testid=connect-link]`)
	de, _ := i18n.ByCode("de")
	b.checkLanguage(de, "h1", de.T("landing.heading", "service", "Test Service"))
	b.shot("landing-de")

	b.switchTo(i18n.English()) // back to English for the walk through Tesla's pages
	b.page("landing", e.URL+"/", `[data-testid=connect-link]`)
	b.checkLanguage(i18n.English(), "h1", i18n.English().T("landing.heading", "service", "Test Service"))
	b.linkAndCheckAccount()

	for _, l := range i18n.Languages() {
		if l.Code == "en" {
			continue
		}
		b.switchTo(l)
		b.page("account in "+l.Code, e.URL+"/account", `[data-testid=activity]`)
		b.checkLanguage(l, "h1", l.T("title.account"))
		b.checkLanguage(l, `[data-testid=activity] li[data-kind=linked] .row-title`, l.T("activity.linked"))
		b.checkLanguage(l, `[data-testid=revoke-link]`, l.T("account.revoke"))
		// No page may be wider than the phone: the longest words must wrap.
		if w := eval[int64](b, "page width", `document.documentElement.scrollWidth`); w > dora.width {
			b.fatalf("%s account page is %dpx wide on a %dpx phone", l.Code, w, dora.width)
		}
		b.shot("account-" + l.Code)
	}
	// The choice is kept: the next page is in the last language picked.
	b.click(`[data-testid=revoke-link]`)
	b.page("revoke confirm", e.URL+"/account/revoke", `[data-testid=revoke-confirm]`)
	zh, _ := i18n.ByCode("zh-Hans")
	b.checkLanguage(zh, `[data-testid=revoke-confirm]`, zh.T("account.revoke"))

	b.shot("revoke-confirm-zh-Hans")
	if leaks := e.Leaks(); len(leaks) > 0 {
		t.Errorf("simulator secrets in the service's logs: %v", leaks)
	}
}

// switchTo presses the language's button in the footer and waits for the
// page to come back in it.
func (b *browser) switchTo(l *i18n.Lang) {
	b.t.Helper()
	b.click(`[data-lang="` + l.Code + `"]`)
	deadline := time.Now().Add(stepTimeout)
	for {
		// Errors while the next page loads are expected: try again.
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.documentElement || {}).lang || ""`))
		cancel()
		if err == nil && lang == l.Tag.String() {
			break
		}
		if time.Now().After(deadline) {
			b.fatalf("the page did not switch to %s (lang %q, %v)", l.Code, lang, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.do("wait for the page", chromedp.WaitReady(chromedp.CSS(`footer`)))
}

// checkLanguage asserts <html lang> and the text of the first element sel matches.
func (b *browser) checkLanguage(l *i18n.Lang, sel, want string) {
	b.t.Helper()
	if got := eval[string](b, "read lang", `document.documentElement.lang`); got != l.Tag.String() {
		b.fatalf("html lang %q, want %q", got, l.Tag)
	}
	got := b.texts(sel, "")
	if len(got) == 0 || strings.Join(strings.Fields(got[0]), " ") != want {
		b.fatalf("%s: %q, want %q (%s)", sel, got, want, l.Code)
	}
}
