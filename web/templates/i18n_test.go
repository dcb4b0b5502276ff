package templates

import (
	"bytes"
	"context"
	"html"
	"regexp"
	"strings"
	"testing"

	"teslalink/internal/i18n"
)

var rawKeyRe = regexp.MustCompile(`\[[a-z_]+(\.[a-z_]+)+\]`)

// Every page in every language: the page is in that language (lang
// attribute, no raw key, no English sentence from the catalog left
// untranslated), dates follow it, and it stays small.
func TestEveryPageInEveryLanguage(t *testing.T) {
	t.Parallel()
	en := i18n.English()
	for _, l := range i18n.Languages() {
		for name, page := range samplePages() {
			var buf bytes.Buffer
			if err := page.Render(i18n.With(context.Background(), l), &buf); err != nil {
				t.Fatalf("%s %s: %v", l.Code, name, err)
			}
			out := buf.String()
			text := html.UnescapeString(out)
			if !strings.Contains(out, `<html lang="`+l.Tag.String()+`">`) {
				t.Errorf("%s %s: no lang attribute %s", l.Code, name, l.Tag)
			}
			if m := rawKeyRe.FindString(text); m != "" {
				t.Errorf("%s %s shows a raw key %s", l.Code, name, m)
			}
			if len(out) > 40*1024 {
				t.Errorf("%s %s is %d bytes", l.Code, name, len(out))
			}
			if l == en {
				continue
			}
			for _, k := range en.Keys() {
				english := en.T(k)
				if english == l.T(k) || !strings.Contains(english, " ") || len(english) < 12 || strings.Contains(english, "{") {
					continue
				}
				if strings.Contains(text, english) {
					t.Errorf("%s %s shows the English %q (%s)", l.Code, name, english, k)
				}
			}
		}
	}
}

func TestDatesFollowTheLanguage(t *testing.T) {
	t.Parallel()
	at := sampleNow.Add(-3 * 24 * 3600e9)
	want := map[string][2]string{
		"en":      {"3 days ago", "11 Mar 2025, 12:00 UTC"},
		"de":      {"vor 3 Tagen", "11. März 2025, 12:00 UTC"},
		"fr":      {"il y a 3 jours", "11 mars 2025 à 12:00 UTC"},
		"es":      {"hace 3 días", "11 mar 2025, 12:00 UTC"},
		"nl":      {"3 dagen geleden", "11 mrt 2025, 12:00 UTC"},
		"nb":      {"for 3 dager siden", "11. mars 2025, 12:00 UTC"},
		"zh-Hans": {"3 天前", "2025年3月11日 12:00 UTC"},
	}
	for _, l := range i18n.Languages() {
		w := want[l.Code]
		if got := agoIn(l, sampleNow, at); got != w[0] {
			t.Errorf("%s ago = %q, want %q", l.Code, got, w[0])
		}
		if got := exactTimeIn(l, at); got != w[1] {
			t.Errorf("%s exact = %q, want %q", l.Code, got, w[1])
		}
	}
}
