package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
)

var simTokens = flag.Int("sim-tokens", 0,
	"give the first N seeded links refresh tokens the simulator accepts (their owners become the sim's owners), so they refresh for real")

// issueSimTokens replaces the random refresh tokens of the links ids (and
// their owners' subs) with grants issued by the simulator, as if each owner
// had signed in: those links refresh, and the refreshed ID token names the
// owner the link belongs to.
func issueSimTokens(ctx context.Context, dbURL string, keys *seal.Keyring, sim *teslasim.Sim, ids []string) error {
	start := time.Now()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT l.id::text, o.id, o.email, l.granted_scopes FROM links l JOIN owners o ON o.id = l.owner_id
		WHERE l.id = ANY($1::uuid[])`, ids)
	if err != nil {
		return err
	}
	type row struct {
		link   string
		owner  int64
		email  string
		scopes []string
	}
	links, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.link, &x.owner, &x.email, &x.scopes)
	})
	if err != nil {
		return err
	}
	if len(links) != len(ids) {
		return fmt.Errorf("sim tokens: %d of %d links found", len(links), len(ids))
	}
	out := make([][]any, len(links))
	for i, l := range links {
		sub, rt, err := sim.IssueRefreshToken(l.email, l.scopes)
		if err != nil {
			return err
		}
		sealed, err := keys.Seal([]byte(rt), []byte("teslalink/link/"+l.link+"/refresh_token"))
		if err != nil {
			return err
		}
		out[i] = []any{l.link, l.owner, sub, sealed}
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE sim_tokens (link_id uuid, owner_id bigint, sub text, rt bytea) ON COMMIT DROP"); err != nil {
		return err
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sim_tokens"}, []string{"link_id", "owner_id", "sub", "rt"}, pgx.CopyFromRows(out)); err != nil {
		return fmt.Errorf("copy sim tokens: %w", err)
	}
	if _, err := tx.Exec(ctx, "UPDATE owners o SET sub = t.sub FROM sim_tokens t WHERE o.id = t.owner_id"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE links l SET refresh_token_sealed = t.rt, token_key_id = $1 FROM sim_tokens t
		WHERE l.id = t.link_id`, keys.PrimaryID()); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE owners, links"); err != nil {
		return err
	}
	log.Printf("gave %d links refresh tokens the simulator accepts in %s", len(links), time.Since(start).Round(time.Millisecond))
	return nil
}

// serveSimAdmin serves the simulator's admin API (faults, clock, counters)
// on a free loopback port until ctx ends, and returns its URL.
func serveSimAdmin(ctx context.Context, sim *teslasim.Sim) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: sim.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("sim admin: %v", err)
		}
	}()
	context.AfterFunc(ctx, func() { srv.Close() })
	return "http://" + ln.Addr().String(), nil
}
