package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"teslalink/internal/db"
	"teslalink/internal/pgcluster"
	"teslalink/internal/seal"
	"teslalink/internal/teslasim"
)

// cmdDev runs the service with embedded defaults: its own PostgreSQL under
// .dev/ (unless DATABASE_URL is set), the Tesla simulator in-process (unless
// TESLA_CLIENT_ID is set), and development keys generated once into .dev/.
func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	lookup := os.LookupEnv
	if _, ok := lookup("LOG_FORMAT"); !ok {
		lookup = withDefault(lookup, "LOG_FORMAT", "text")
	}
	if _, ok := lookup("WEBHOOK_ALLOW_PRIVATE"); !ok {
		// A receiver on this machine is the usual way to try webhooks.
		lookup = withDefault(lookup, "WEBHOOK_ALLOW_PRIVATE", "true")
	}
	cfg, err := loadConfig(lookup)
	if err != nil {
		return err
	}
	simAddr, err := devFlags(args, cfg, stderr)
	if err != nil {
		return err
	}
	if cfg.PublicURL == nil {
		cfg.PublicURL = &url.URL{Scheme: "http", Host: localAddr(cfg.Addr)}
	}
	cfg.InsecureCookie = cfg.PublicURL.Scheme != "https"
	cfg.CanonicalHost = true
	cfg.ReturnLoopback = true
	if cfg.MetricsAddr == "" {
		cfg.MetricsAddr, cfg.MetricsDevDefault = "127.0.0.1:9464", true
	}
	logger := newLogger(cfg, stdout)
	devDir := devDir()
	if err := os.MkdirAll(devDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", devDir, err)
	}
	if err := devKeys(devDir, cfg); err != nil {
		return err
	}

	if cfg.DatabaseURL == "" {
		cluster, err := startDevPostgres(ctx, devDir, logger)
		if err != nil {
			return err
		}
		defer cluster.Stop()
		cfg.DatabaseURL = cluster.URL("teslalink")
		fmt.Fprintf(stdout, "PostgreSQL: data in %s (kept between runs); psql: psql %q\n", cluster.DataDir(), cfg.DatabaseURL)
		removeRecord, err := writeDevRecord(devDir, cfg.DatabaseURL)
		if err != nil {
			return err
		}
		defer removeRecord()
		fmt.Fprintf(stdout, "Operator commands in this checkout (web apiclient, web keys, web webhook) use this database while web dev runs.\n")
	}
	if err := devAPIKey(ctx, cfg, stdout); err != nil {
		return err
	}

	simNote := ""
	if cfg.TeslaClientID == "" {
		sim, err := teslasim.New(teslasim.Config{
			RedirectURIs: []string{cfg.PublicURL.String() + "/auth/tesla/callback"},
			Logger:       logger.With("component", "teslasim"),
			Clock:        teslasim.NewRunningClock(), // tokens expire as real time passes
			// Links made yesterday still refresh today.
			StateFile: filepath.Join(devDir, "teslasim.json"),
		})
		if err != nil {
			return fmt.Errorf("tesla simulator: %w", err)
		}
		if err := sim.Start(simAddr); err != nil {
			return fmt.Errorf("tesla simulator: %w", err)
		}
		defer sim.Close()
		sc := sim.Config()
		cfg.TeslaClientID, cfg.TeslaClientSecret = sc.ClientID, sc.ClientSecret
		cfg.TeslaDiscoveryURL, cfg.TeslaTokenURL = sim.DiscoveryURL(), sim.TokenURL()
		cfg.TeslaIssuers = []string{sim.IDTokenIssuer()}
		for _, r := range []string{"na", "eu", "cn"} {
			cfg.TeslaRegionURLs[r] = sim.RegionBaseURL(r)
		}
		cfg.TeslaAudience = sim.RegionBaseURL("na")
		simNote = fmt.Sprintf("Tesla simulator: %s (sign in with any email, password %q)\n", sim.URL(), sc.Password)
	}
	return runServer(ctx, cfg, logger, func(addr string) {
		fmt.Fprintf(stdout, "\n%steslalink dev is ready: open %s\nPress Ctrl-C to stop.\n\n", simNote, cfg.PublicURL)
	})
}

func envOr(name, def string) string {
	if v := strings.TrimSpace(os.Getenv(name)); v != "" {
		return v
	}
	return def
}

func withDefault(e env, name, def string) env {
	return func(k string) (string, bool) {
		if k == name {
			return def, true
		}
		return e(k)
	}
}

// startDevPostgres starts (initialising once) the dev cluster and makes sure
// the "teslalink" database exists.
func startDevPostgres(ctx context.Context, devDir string, logger *slog.Logger) (*pgcluster.Cluster, error) {
	if _, err := pgcluster.FindBinDir(); err != nil {
		return nil, errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found. " +
			"Install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16) " +
			"or set DATABASE_URL to an existing database")
	}
	dataDir := filepath.Join(devDir, "pgdata")
	if !pgcluster.Reachable(dataDir) {
		// Running as root, the server runs as the postgres user, which cannot
		// enter this checkout: keep the data in a per-checkout folder it can
		// reach, private to it, that nobody else can have planted.
		abs, _ := filepath.Abs(dataDir)
		sum := sha256.Sum256([]byte(abs))
		parent := filepath.Join(os.TempDir(), "teslalink-dev-"+hex.EncodeToString(sum[:6]))
		if err := pgcluster.PrivateDir(parent); err != nil {
			return nil, fmt.Errorf("dev PostgreSQL data: %w", err)
		}
		dataDir = filepath.Join(parent, "pgdata")
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dataDir, Logger: logger.With("component", "postgres")})
	if err != nil {
		return nil, fmt.Errorf("start PostgreSQL: %w", err)
	}
	if err := db.CreateDatabaseIfMissing(ctx, cluster.URL("postgres"), "teslalink"); err != nil {
		cluster.Stop()
		return nil, fmt.Errorf("dev database: %w", err)
	}
	return cluster, nil
}

// devKeys fills missing keys from .dev/keys.env, generating it once.
func devKeys(devDir string, cfg *Config) error {
	path := filepath.Join(devDir, "keys.env")
	vals, err := readEnvFile(path)
	if errors.Is(err, os.ErrNotExist) {
		tok, err := seal.GenerateKey("dev1")
		if err != nil {
			return err
		}
		sk, err := newSessionKey()
		if err != nil {
			return err
		}
		vals = map[string]string{"TOKEN_ENCRYPTION_KEYS": tok, "SESSION_KEYS": sk}
		content := "# Development keys generated by `web dev`. Never use them in production.\n" +
			"TOKEN_ENCRYPTION_KEYS=" + vals["TOKEN_ENCRYPTION_KEYS"] + "\nSESSION_KEYS=" + vals["SESSION_KEYS"] + "\n"
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	} else if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if cfg.TokenKeys == nil {
		if cfg.TokenKeys, err = seal.ParseKeys(vals["TOKEN_ENCRYPTION_KEYS"]); err != nil {
			return &configError{"TOKEN_ENCRYPTION_KEYS (in " + path + ")", err.Error()}
		}
	}
	if cfg.SessionKeys == nil {
		if cfg.SessionKeys, err = parseSessionKeys(vals["SESSION_KEYS"]); err != nil {
			return &configError{"SESSION_KEYS (in " + path + ")", err.Error()}
		}
	}
	return nil
}

func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vals := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			vals[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return vals, sc.Err()
}
