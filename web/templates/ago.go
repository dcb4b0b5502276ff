package templates

import (
	"time"

	"teslalink/internal/i18n"
)

// Ago says how long before now t was, in English words: "never" for the
// zero time, "just now" under a minute (and for times in the future, which
// only clock skew produces), then minutes, hours, days, months and years.
func Ago(now, t time.Time) string { return agoIn(i18n.English(), now, t) }

// machineTime is the RFC 3339 value for a <time datetime> attribute.
func machineTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// capitalize upper-cases the first ASCII letter, for sentence starts.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
