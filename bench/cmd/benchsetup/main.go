// Command benchsetup prepares the token endpoint benchmark (bench/run.sh):
// a throwaway PostgreSQL with the schema, N linked accounts whose sealed
// access tokens are valid for a day, an API client, and the Tesla simulator.
// It writes DIR/bench.env (the service's environment), DIR/ids.txt (one link
// id per line), then DIR/ready, and keeps PostgreSQL and the simulator
// running until it receives SIGINT or SIGTERM. The simulator's admin API
// listens on loopback too (BENCH_SIM_ADMIN_URL in bench.env); with
// -sim-tokens N, the first N links hold refresh tokens the simulator accepts.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/pgcluster"
	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
)

func main() {
	dir := flag.String("dir", "", "work directory (created)")
	n := flag.Int("links", 100000, "linked accounts to seed")
	publicURL := flag.String("public-url", "http://127.0.0.1:18080", "the service's PUBLIC_URL")
	buffers := flag.String("shared-buffers", "256MB", "PostgreSQL's shared_buffers")
	flag.Parse()
	if *dir == "" {
		log.Fatal("benchsetup: -dir is required")
	}
	if err := run(*dir, *n, *publicURL, *buffers); err != nil {
		log.Fatalf("benchsetup: %v", err)
	}
}

func run(dir string, n int, publicURL, buffers string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	os.Chmod(dir, 0o755) // the server runs as the postgres user when we are root
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dir, "pgdata"), Fast: true,
		SocketDir: filepath.Join(dir, "sock"), Settings: []string{"max_connections=200", "shared_buffers=" + buffers}})
	if err != nil {
		return err
	}
	defer cluster.Stop()
	conn, err := pgx.Connect(ctx, cluster.URL("postgres"))
	if err != nil {
		return err
	}
	for _, name := range []string{"teslalink", "pgbench"} {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
			return err
		}
	}
	conn.Close(ctx)
	dbURL := cluster.URL("teslalink")
	store, err := db.Open(ctx, dbURL, 4)
	if err != nil {
		return err
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		return err
	}

	keySpec, err := seal.GenerateKey("bench1")
	if err != nil {
		return err
	}
	keys, err := seal.ParseKeys(keySpec)
	if err != nil {
		return err
	}
	key, err := apikey.New()
	if err != nil {
		return err
	}
	client, err := store.CreateAPIClient(ctx, "bench", key.Display, key.Hash, apikey.Scopes)
	if err != nil {
		return err
	}
	start := time.Now()
	ids, err := seed(ctx, dbURL, keys, n, client.ID)
	if err != nil {
		return err
	}
	log.Printf("seeded %d linked accounts in %s", n, time.Since(start).Round(time.Millisecond))

	sim, err := teslasim.New(teslasim.Config{RedirectURIs: []string{publicURL + "/auth/tesla/callback"}})
	if err != nil {
		return err
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		return err
	}
	defer sim.Close()
	if *simTokens > 0 {
		if err := issueSimTokens(ctx, dbURL, keys, sim, ids[:min(*simTokens, len(ids))]); err != nil {
			return err
		}
	}
	adminURL, err := serveSimAdmin(ctx, sim)
	if err != nil {
		return err
	}

	sessKey := make([]byte, 32)
	rand.Read(sessKey)
	env := map[string]string{
		"DATABASE_URL": dbURL, "PUBLIC_URL": publicURL, "TOKEN_ENCRYPTION_KEYS": keySpec,
		"SESSION_KEYS":    base64.StdEncoding.EncodeToString(sessKey),
		"TESLA_CLIENT_ID": sim.Config().ClientID, "TESLA_CLIENT_SECRET": sim.Config().ClientSecret,
		"TESLA_DISCOVERY_URL": sim.DiscoveryURL(), "TESLA_TOKEN_URL": sim.TokenURL(), "TESLA_ISSUERS": sim.IDTokenIssuer(),
		"TESLA_AUDIENCE":     sim.RegionBaseURL("na"),
		"TESLA_FLEET_API_NA": sim.RegionBaseURL("na"), "TESLA_FLEET_API_EU": sim.RegionBaseURL("eu"),
		"TESLA_FLEET_API_CN": sim.RegionBaseURL("cn"),
		"BENCH_KEY":          key.Secret, "PGBENCH_URL": cluster.URL("pgbench"), "BENCH_IDS": filepath.Join(dir, "ids.txt"),
	}
	env["BENCH_SIM_ADMIN_URL"] = adminURL // the simulator's admin API: faults, counters (bench/soak.sh)
	var b strings.Builder
	for k, v := range env {
		fmt.Fprintf(&b, "export %s='%s'\n", k, v)
	}
	if err := os.WriteFile(filepath.Join(dir, "bench.env"), []byte(b.String()), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ids.txt"), []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644); err != nil {
		return err
	}
	log.Printf("ready: %s", filepath.Join(dir, "bench.env"))
	<-ctx.Done()
	return nil
}

// recentlyUsed stamps every seeded link as used by the bench client at
// seeding time: the steady state of a service whose links are each asked
// for within the hour, where the token endpoint records no use (uses are
// recorded once per client, link and hour). Without it, the warm-up
// records a use for every link: a cold start.
var recentlyUsed = flag.Bool("recently-used", true, "stamp the links as used by the bench client just now (steady state)")

// seed inserts n owners and links with sealed tokens (valid for 24 hours)
// through COPY.
func seed(ctx context.Context, dbURL string, keys *seal.Keyring, n int, clientID int64) ([]string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	owners := make([][]any, n)
	for i := range n {
		sub := fmt.Sprintf("bench-sub-%06d", i)
		owners[i] = []any{sub, sub + "@example.com", "Owner " + sub}
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"owners"}, []string{"sub", "email", "name"}, pgx.CopyFromRows(owners)); err != nil {
		return nil, fmt.Errorf("copy owners: %w", err)
	}
	rows, err := conn.Query(ctx, "SELECT id FROM owners ORDER BY id")
	if err != nil {
		return nil, err
	}
	ownerIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	expires := time.Now().Add(24 * time.Hour)
	scopes := []string{"openid", "offline_access", "user_data", "vehicle_device_data"}
	links := make([][]any, len(ownerIDs))
	ids := make([]string, len(ownerIDs))
	for i, oid := range ownerIDs {
		id := uuid()
		ids[i] = id
		at, err := keys.Seal([]byte("bench-access-"+randHex(48)), []byte("teslalink/link/"+id+"/access_token"))
		if err != nil {
			return nil, err
		}
		rt, err := keys.Seal([]byte("NA_"+randHex(32)), []byte("teslalink/link/"+id+"/refresh_token"))
		if err != nil {
			return nil, err
		}
		var usedBy, usedAt any // NULL: never used
		if *recentlyUsed {
			usedBy, usedAt = clientID, time.Now()
		}
		links[i] = []any{id, oid, "active", "na", "https://auth.tesla.com/oauth2/v3/nts", scopes, scopes, keys.PrimaryID(), rt, at, expires,
			time.Now(), usedBy, usedAt}
	}
	// Two COPYs at once: the index updates run on both cores.
	cols := []string{"id", "owner_id", "status", "region", "id_token_issuer",
		"requested_scopes", "granted_scopes", "token_key_id", "refresh_token_sealed", "access_token_sealed",
		"access_token_expires_at", "refreshed_at", "used_by", "used_at"}
	half := len(links) / 2
	errs := make(chan error, 2)
	for _, part := range [][][]any{links[:half], links[half:]} {
		go func() {
			c, err := pgx.Connect(ctx, dbURL)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(ctx)
			_, err = c.CopyFrom(ctx, pgx.Identifier{"links"}, cols, pgx.CopyFromRows(part))
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			return nil, fmt.Errorf("copy links: %w", err)
		}
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		return nil, err
	}
	return ids, nil
}

func uuid() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func randHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
