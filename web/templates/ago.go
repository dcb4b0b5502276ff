package templates

import (
	"fmt"
	"time"
)

// Ago says how long before now t was, in words: "never" for the zero time,
// "just now" under a minute (and for times in the future, which only clock
// skew produces), then minutes, hours, days, months and years.
func Ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 24*time.Hour:
		return plural(int(d/time.Hour), "hour")
	case d < 2*24*time.Hour:
		return "yesterday"
	case d < 30*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case d < 365*24*time.Hour:
		return plural(int(d/(30*24*time.Hour)), "month")
	default:
		return plural(int(d/(365*24*time.Hour)), "year")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit + " ago"
	}
	return fmt.Sprintf("%d %ss ago", n, unit)
}

// exactTime is the full UTC time shown as a tooltip and in datetime attributes' titles.
func exactTime(t time.Time) string {
	return t.UTC().Format("2 Jan 2006, 15:04 UTC")
}

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
