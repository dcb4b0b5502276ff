// Package i18n holds the owner pages' languages: one catalog file per
// language (catalogs/<code>.json, key → text), the choice of language from
// a cookie or Accept-Language (golang.org/x/text/language matching), and
// the lookups the templates use, carried in the request's context.
//
// Texts may hold {name} placeholders. A key ending in ".one" or ".other" is
// one form of a counted text (see N). Texts the handlers produce in English
// (error wording, notes) are translated by Msg, which finds the key whose
// English text they are.
package i18n

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/text/language"
)

//go:embed catalogs/*.json
var files embed.FS

// Lang is one language the pages are offered in.
type Lang struct {
	// Code is the catalog's file name and the switcher's value, e.g. "de".
	Code string
	// Tag is the BCP 47 tag, for <html lang> and Content-Language.
	Tag language.Tag
	// Name is the language's own name, e.g. "Deutsch".
	Name string
	cat  map[string]string
}

// The offered languages, English first (the fallback).
var (
	langs    []*Lang
	byCode   = map[string]*Lang{}
	english  *Lang
	matcher  language.Matcher
	fromText map[string]string // English text → key
)

var offered = []struct {
	code string
	tag  language.Tag
}{
	{"en", language.English},
	{"de", language.German},
	{"fr", language.French},
	{"es", language.Spanish},
	{"nl", language.Dutch},
	{"nb", language.Norwegian},
	{"zh-Hans", language.SimplifiedChinese},
}

func init() {
	tags := make([]language.Tag, 0, len(offered))
	for _, o := range offered {
		b, err := files.ReadFile("catalogs/" + o.code + ".json")
		if err != nil {
			panic(fmt.Sprintf("i18n: catalog %s: %v", o.code, err))
		}
		l := &Lang{Code: o.code, Tag: o.tag}
		if err := json.Unmarshal(b, &l.cat); err != nil {
			panic(fmt.Sprintf("i18n: catalog %s: %v", o.code, err))
		}
		l.Name = l.cat["language.name"]
		langs = append(langs, l)
		byCode[o.code] = l
		tags = append(tags, o.tag)
	}
	english = langs[0]
	matcher = language.NewMatcher(tags)
	fromText = make(map[string]string, len(english.cat))
	for k, v := range english.cat {
		if _, dup := fromText[v]; !dup || k < fromText[v] {
			fromText[v] = k
		}
	}
}

// Languages lists the offered languages, English first.
func Languages() []*Lang { return langs }

// English is the fallback language.
func English() *Lang { return english }

// ByCode returns the language with this Code.
func ByCode(code string) (*Lang, bool) {
	l, ok := byCode[code]
	return l, ok
}

// Choose picks the language: a valid cookie choice wins, then the best
// match for the Accept-Language header, then English.
func Choose(cookie, acceptLanguage string) *Lang {
	if l, ok := byCode[cookie]; ok {
		return l
	}
	if acceptLanguage == "" {
		return english
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil || len(tags) == 0 {
		return english
	}
	_, i, conf := matcher.Match(tags...)
	if conf == language.No {
		return english
	}
	return langs[i]
}

// Keys lists the catalog's keys, sorted (for tests).
func (l *Lang) Keys() []string {
	keys := make([]string, 0, len(l.cat))
	for k := range l.cat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Has reports whether the catalog has key.
func (l *Lang) Has(key string) bool { _, ok := l.cat[key]; return ok }

// T is the text of key with its {name} placeholders filled from args
// (name, value, name, value...). A key missing here falls back to English;
// a key missing there too comes back as "[key]" so a test can spot it.
func (l *Lang) T(key string, args ...string) string {
	s, ok := l.cat[key]
	if !ok {
		if s, ok = english.cat[key]; !ok {
			return "[" + key + "]"
		}
	}
	return fill(s, args)
}

// N is the counted text key for n: key.one when n is 1 (in languages that
// have that form), else key.other; {n} is filled with n.
func (l *Lang) N(key string, n int64, args ...string) string {
	form := key + ".other"
	if n == 1 && l.Has(key+".one") {
		form = key + ".one"
	}
	return l.T(form, append([]string{"n", fmt.Sprint(n)}, args...)...)
}

// Msg translates a text the handlers wrote in English by finding the key
// whose English text it is; unknown texts are returned unchanged.
func (l *Lang) Msg(english string, args ...string) string {
	if key, ok := fromText[english]; ok {
		return l.T(key, args...)
	}
	return fill(english, args)
}

func fill(s string, args []string) string {
	if len(args) < 2 || !strings.Contains(s, "{") {
		return s
	}
	pairs := make([]string, 0, len(args))
	for i := 0; i+1 < len(args); i += 2 {
		pairs = append(pairs, "{"+args[i]+"}", args[i+1])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

type ctxKey struct{}

// With returns ctx carrying l.
func With(ctx context.Context, l *Lang) context.Context { return context.WithValue(ctx, ctxKey{}, l) }

// From is the language ctx carries, English when none.
func From(ctx context.Context) *Lang {
	if l, ok := ctx.Value(ctxKey{}).(*Lang); ok && l != nil {
		return l
	}
	return english
}
