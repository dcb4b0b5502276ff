package handlers_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/testenv"
)

// BenchmarkTokenCacheHit is the token endpoint served from the token
// cache, in process (no sockets): it reports the allocations of one
// request through the whole middleware chain, access log included. Speed
// targets live in bench/ (bench/run.sh); run this with -benchmem to see
// what a change costs per request:
//
//	go test -run '^$' -bench TokenCacheHit -benchmem ./internal/handlers/
func BenchmarkTokenCacheHit(b *testing.B) {
	b.Run("access log on", func(b *testing.B) { benchmarkTokenCacheHit(b, slog.LevelInfo) })
	b.Run("access log off", func(b *testing.B) { benchmarkTokenCacheHit(b, slog.LevelWarn) })
}

// BenchmarkTokenCacheMiss is the same request when the link is not cached
// (the common case at a million links): one database round trip.
func BenchmarkTokenCacheMiss(b *testing.B) {
	benchmarkToken(b, slog.LevelInfo, true)
}

func benchmarkTokenCacheHit(b *testing.B, level slog.Level) { benchmarkToken(b, level, false) }

func benchmarkToken(b *testing.B, level slog.Level, miss bool) {
	e := testenv.New(b, testenv.Options{LogLevel: level})
	ctx := context.Background()
	k, err := apikey.New()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.Store.CreateAPIClient(ctx, "bench", k.Display, k.Hash, apikey.Scopes); err != nil {
		b.Fatal(err)
	}
	link := linkOwner(b, e, "bench@example.com")
	for deadline := time.Now().Add(10 * time.Second); !e.Cache.Live(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("token cache never went live")
		}
	}
	h := e.App.Handler()
	do := func() int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/links/"+link.ID+"/token", nil)
		req.Header.Set("Authorization", "Bearer "+k.Secret)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := do(); code != http.StatusOK {
		b.Fatalf("token: %d", code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if miss {
			e.Cache.InvalidateLink(link.ID)
		}
		if do() != http.StatusOK {
			b.Fatal("token request failed")
		}
	}
}
