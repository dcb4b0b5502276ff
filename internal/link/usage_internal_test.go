package link

import (
	"testing"
	"time"
)

func TestUseDue(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 10, 15, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		by     int64
		usedAt time.Time
		now    time.Time
		want   bool
	}{
		{"never recorded", 0, time.Time{}, at, true},
		{"same client within the hour", 7, at, at.Add(59 * time.Minute), false},
		{"same client an hour later", 7, at, at.Add(time.Hour), true},
		{"another client", 8, at, at.Add(time.Minute), true},
		{"a new UTC day within the hour", 7, at.Add(13*time.Hour + 30*time.Minute), at.Add(14*time.Hour + 5*time.Minute), true},
		{"a clock that went back", 7, at, at.Add(-time.Minute), true},
	} {
		if got := useDue(7, tc.by, tc.usedAt, tc.now); got != tc.want {
			t.Errorf("%s: useDue = %v, want %v", tc.name, got, tc.want)
		}
	}
}
