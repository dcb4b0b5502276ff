package templates

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"teslalink/internal/i18n"
)

// t is the text of key in the request's language.
func t(ctx context.Context, key string, args ...string) string { return i18n.From(ctx).T(key, args...) }

// tn is the counted text of key for n in the request's language.
func tn(ctx context.Context, key string, n int64, args ...string) string {
	return i18n.From(ctx).N(key, n, args...)
}

// msg translates a text a handler wrote in English.
func msg(ctx context.Context, english string) string { return i18n.From(ctx).Msg(english) }

// langTag is the request's language for <html lang>.
func langTag(ctx context.Context) string { return i18n.From(ctx).Tag.String() }

// langCode is the request's language code (the switcher's value).
func langCode(ctx context.Context) string { return i18n.From(ctx).Code }

// scopeTitle is a scope's short name in the request's language.
func scopeTitle(ctx context.Context, s ScopeInfo) string {
	if l := i18n.From(ctx); l.Has("scope." + s.Name + ".title") {
		return l.T("scope." + s.Name + ".title")
	}
	return s.Title
}

// scopeDesc is a scope's one-line meaning in the request's language.
func scopeDesc(ctx context.Context, s ScopeInfo) string {
	l := i18n.From(ctx)
	if l.Has("scope." + s.Name + ".desc") {
		return l.T("scope." + s.Name + ".desc")
	}
	if _, known := LookupScope(s.Name); !known {
		return l.T("scope.unknown.desc")
	}
	return s.Description
}

// around splits a translated sentence at a placeholder such as "{email}",
// so the value can be marked up (bold, a link) where the language puts it.
func around(s, placeholder string) (before, after string) {
	before, after, _ = strings.Cut(s, placeholder)
	return before, after
}

// upperFirst upper-cases the first letter, for sentence starts.
func upperFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError || unicode.IsUpper(r) {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// agoIn says how long before now t was, in words, in language l.
func agoIn(l *i18n.Lang, now, t time.Time) string {
	if t.IsZero() {
		return l.T("ago.never")
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return l.T("ago.just_now")
	case d < time.Hour:
		return l.N("ago.minutes", int64(d/time.Minute))
	case d < 24*time.Hour:
		return l.N("ago.hours", int64(d/time.Hour))
	case d < 2*24*time.Hour:
		return l.T("ago.yesterday")
	case d < 30*24*time.Hour:
		return l.N("ago.days", int64(d/(24*time.Hour)))
	case d < 365*24*time.Hour:
		return l.N("ago.months", int64(d/(30*24*time.Hour)))
	default:
		return l.N("ago.years", int64(d/(365*24*time.Hour)))
	}
}

// exactTimeIn is the full UTC time in language l's conventions.
func exactTimeIn(l *i18n.Lang, t time.Time) string {
	t = t.UTC()
	months := strings.Split(l.T("date.months"), ",")
	month := t.Format("Jan")
	if len(months) == 12 {
		month = months[t.Month()-1]
	}
	return l.T("date.format", "d", t.Format("2"), "month", month, "yyyy", t.Format("2006"),
		"hh", t.Format("15"), "mm", t.Format("04"))
}

func agoCtx(ctx context.Context, now, t time.Time) string {
	return upperFirst(agoIn(i18n.From(ctx), now, t))
}

func exactCtx(ctx context.Context, t time.Time) string { return exactTimeIn(i18n.From(ctx), t) }

// joinList joins items with the language's list separator.
func joinList(ctx context.Context, items []string) string {
	return strings.Join(items, t(ctx, "common.list_sep"))
}

// languages lists the switcher's choices.
func languages() []*i18n.Lang { return i18n.Languages() }
