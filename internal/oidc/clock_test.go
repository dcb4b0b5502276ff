package oidc

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestRefreshTrustsProviderClockForIat: a provider whose clock runs ahead
// (the simulator after its clock was advanced) issues ID tokens whose `iat`
// is ahead of ours; the refresh is accepted when the provider's Date header
// agrees with that `iat`, and still refused when it does not.
func TestRefreshTrustsProviderClockForIat(t *testing.T) {
	t.Parallel()
	ahead := testNow.Add(48 * time.Hour)
	body := okRefreshBody(t, func(c map[string]any) {
		c["iat"] = ahead.Unix()
		c["exp"] = ahead.Add(8 * time.Hour).Unix()
	})
	for _, tc := range []struct {
		name string
		date time.Time
		ok   bool
	}{
		{"provider clock ahead", ahead, true},
		{"provider clock ahead, a little past the iat", ahead.Add(time.Second), true},
		{"provider clock agrees with ours", testNow, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newProvider(t)
			tokenSequence(t, p, reply{200, map[string]string{"Date": tc.date.UTC().Format(http.TimeFormat)}, body})
			c, _, _ := newClient(t, p, nil)
			_, err := c.Refresh(context.Background(), "NA_rt-old", testIDIssuer, "owner-sub-1")
			if tc.ok && err != nil {
				t.Fatalf("refresh refused: %v", err)
			}
			if !tc.ok && KindOf(err) != KindInvalid {
				t.Fatalf("refresh with iat 48h ahead of both clocks: %v", err)
			}
		})
	}
}
