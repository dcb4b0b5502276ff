package handlers

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendTokenJSONMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	odd := "a\"b\\c\n\r\t\x01<>&\u2028\u2029é€\xff😀"
	for _, r := range []tokenResponse{
		{AccessToken: "eyJhbGciOiJSUzI1NiJ9.e30.sig", TokenType: "Bearer", ExpiresAt: time.Date(2026, 11, 26, 10, 0, 0, 123456789, time.UTC),
			Scopes: []string{"openid", "user_data"}, Region: "na", FleetAPIBaseURL: "https://fleet-api.prd.na.vn.cloud.tesla.com", LinkID: "5f0c"},
		{AccessToken: odd, TokenType: odd, ExpiresAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Scopes: []string{}, Region: odd, FleetAPIBaseURL: odd, LinkID: odd},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got := appendTokenJSON(nil, &r)
		if string(got) != string(want)+"\n" {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
