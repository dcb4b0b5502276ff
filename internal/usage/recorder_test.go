package usage_test

import (
	"context"
	"testing"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/pgtest"
	"teslalink/internal/usage"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestBatchedAttributionSurvivesAFailedFlush(t *testing.T) {
	t.Parallel()
	store := pgtest.Store(t)
	ctx := context.Background()
	l, err := store.SaveLink(ctx, db.LinkGrant{Sub: "s1", Region: "na"}, func(string) (db.SealedTokens, error) {
		return db.SealedTokens{KeyID: "k", Refresh: []byte("r"), Access: []byte("a")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	key, err := apikey.New()
	if err != nil {
		t.Fatal(err)
	}
	client, err := store.CreateAPIClient(ctx, "crm", key.Display, key.Hash, []string{apikey.ScopeTokensIssue})
	if err != nil {
		t.Fatal(err)
	}
	rec := usage.New(store, time.Hour, nil)
	t0 := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		rec.Record(l.ID, client.ID, t0.Add(time.Duration(i)*time.Second))
	}
	if got, _ := store.LinkUsage(ctx, l.ID); len(got) != 0 {
		t.Fatal("written before a flush: a database write per request")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := rec.Flush(cancelled); err == nil {
		t.Fatal("flush with a cancelled context succeeded")
	}
	rec.Record(l.ID, client.ID, t0.Add(10*time.Second))
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := store.LinkUsage(ctx, l.ID)
	if err != nil || len(got) != 1 {
		t.Fatalf("usage = %+v, %v", got, err)
	}
	if !got[0].LastUsedAt.Equal(t0.Add(10*time.Second)) || got[0].ClientName != "crm" {
		t.Fatalf("usage = %+v (want last at +10s, by crm)", got[0])
	}
}
