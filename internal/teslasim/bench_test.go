package teslasim

import (
	"net/http"
	"net/url"
	"testing"
)

// BenchmarkRefreshAndFleetParallel hammers the token and Fleet endpoints from
// many goroutines, as the service benchmark will.
func BenchmarkRefreshAndFleetParallel(b *testing.B) {
	s, err := New(Config{RedirectURIs: []string{testRedirect}, SigningKey: testKey()})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		a := linked(b, s, "bench"+randHex(4)+"@example.com")
		rt := a.str("refresh_token")
		for pb.Next() {
			r := postForm(b, s.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "client_id": {s.cfg.ClientID}, "refresh_token": {rt}})
			if r.status != http.StatusOK {
				b.Errorf("refresh: %d", r.status)
				return
			}
			rt = r.str("refresh_token")
			if st, _ := fleetGet(b, s, "na", "/api/1/vehicles", r.str("access_token")); st != 200 {
				b.Errorf("vehicles: %d", st)
				return
			}
		}
	})
}
