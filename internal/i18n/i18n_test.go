package i18n_test

import (
	"regexp"
	"slices"
	"testing"

	"teslalink/internal/i18n"
)

var placeholderRe = regexp.MustCompile(`\{(\w+)\}`)

func placeholders(s string) []string {
	var out []string
	for _, m := range placeholderRe.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Every key exists in every catalog, with the same placeholders, and no
// text is empty.
func TestCatalogsComplete(t *testing.T) {
	t.Parallel()
	en := i18n.English()
	if len(i18n.Languages()) != 7 {
		t.Fatalf("%d languages, want 7", len(i18n.Languages()))
	}
	for _, l := range i18n.Languages() {
		if l.Name == "" {
			t.Errorf("%s has no language.name", l.Code)
		}
		if !slices.Equal(l.Keys(), en.Keys()) {
			for _, k := range en.Keys() {
				if !l.Has(k) {
					t.Errorf("%s lacks %s", l.Code, k)
				}
			}
			for _, k := range l.Keys() {
				if !en.Has(k) {
					t.Errorf("%s has %s, which English lacks", l.Code, k)
				}
			}
		}
		for _, k := range en.Keys() {
			got := l.T(k)
			if got == "" || got == "["+k+"]" {
				t.Errorf("%s %s is empty", l.Code, k)
			}
			if !slices.Equal(placeholders(got), placeholders(en.T(k))) {
				t.Errorf("%s %s has placeholders %v, English %v", l.Code, k, placeholders(got), placeholders(en.T(k)))
			}
		}
	}
}

func TestChoose(t *testing.T) {
	t.Parallel()
	cases := []struct{ cookie, accept, want string }{
		{"", "", "en"},
		{"", "de-DE,de;q=0.9,en;q=0.8", "de"},
		{"", "fr-CA", "fr"},
		{"", "es-MX,es;q=0.9", "es"},
		{"", "nl-BE", "nl"},
		{"", "nb-NO", "nb"},
		{"", "no", "nb"},
		{"", "zh-CN,zh;q=0.9", "zh-Hans"},
		{"", "zh-Hans", "zh-Hans"},
		{"", "ja-JP", "en"},
		{"", "en-GB,de;q=0.5", "en"},
		{"", ";;;not a header", "en"},
		{"es", "de", "es"},         // the switcher's choice wins
		{"xx", "fr", "fr"},         // an unknown cookie value is ignored
		{"zh-Hans", "", "zh-Hans"}, // codes, not tags, in the cookie
		{"de-DE", "nl", "nl"},      // only exact codes
	}
	for _, c := range cases {
		if got := i18n.Choose(c.cookie, c.accept).Code; got != c.want {
			t.Errorf("Choose(%q, %q) = %s, want %s", c.cookie, c.accept, got, c.want)
		}
	}
}

func TestLookups(t *testing.T) {
	t.Parallel()
	de, _ := i18n.ByCode("de")
	if got := de.T("landing.heading", "service", "Acme"); got != "Verbinden Sie Ihren Tesla mit Acme" {
		t.Errorf("T = %q", got)
	}
	if got := de.N("ago.days", 1); got != "vor 1 Tag" {
		t.Errorf("N(1) = %q", got)
	}
	if got := de.N("ago.days", 3); got != "vor 3 Tagen" {
		t.Errorf("N(3) = %q", got)
	}
	// A text a handler wrote in English is found by its English wording.
	if got := de.Msg("You did not allow access"); got != "Sie haben den Zugriff nicht erlaubt" {
		t.Errorf("Msg = %q", got)
	}
	if got := de.Msg("Some text no catalog has"); got != "Some text no catalog has" {
		t.Errorf("Msg of an unknown text = %q", got)
	}
	if got := de.T("no.such.key"); got != "[no.such.key]" {
		t.Errorf("missing key = %q", got)
	}
}
