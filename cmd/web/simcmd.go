package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"teslalink/internal/teslasim"
)

// cmdTeslaSim runs the Tesla simulator alone, with its admin API on a
// separate loopback-only listener.
func cmdTeslaSim(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tesla-sim", flag.ContinueOnError)
	fs.SetOutput(stdout)
	addr := fs.String("addr", "127.0.0.1:9090", "listen address of the simulator")
	adminAddr := fs.String("admin-addr", "127.0.0.1:9091", "loopback listen address of the fault/clock admin API")
	clientID := fs.String("client-id", teslasim.DefaultClientID, "client id the simulator accepts")
	clientSecret := fs.String("client-secret", teslasim.DefaultClientSecret, "client secret the simulator accepts")
	redirect := fs.String("redirect-uri", "http://127.0.0.1:8080/auth/tesla/callback", "the one redirect URI the simulator accepts")
	password := fs.String("password", teslasim.DefaultPassword, "password of every simulated owner")
	public := fs.Bool("public-client", false, "register the client as a public client (Tesla's open-source apps): no secret, PKCE required, no partner token")
	requireReg := fs.Bool("require-registration", false, "answer 412 on user endpoints until the partner domain is registered in the region")
	if err := fs.Parse(args); err != nil {
		return &configError{"tesla-sim flags", err.Error()}
	}
	host, _, err := net.SplitHostPort(*adminAddr)
	if err != nil || !loopbackHost(host) {
		return &configError{"--admin-addr", "must be a loopback host:port"}
	}
	logger := slog.New(slog.NewTextHandler(stdout, nil))
	sim, err := teslasim.New(teslasim.Config{ClientID: *clientID, ClientSecret: *clientSecret, PublicClient: *public, RedirectURIs: []string{*redirect},
		Password: *password, RequirePartnerRegistration: *requireReg, Logger: logger})
	if err != nil {
		return err
	}
	if err := sim.Start(*addr); err != nil {
		return err
	}
	defer sim.Close()
	admin := &http.Server{Addr: *adminAddr, Handler: sim.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := admin.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin listener", "error", err)
		}
	}()
	defer admin.Close()
	secretHint := "TESLA_CLIENT_SECRET=..."
	if *public {
		secretHint = "TESLA_CLIENT_SECRET=   (leave it empty: public client)"
	}
	fmt.Fprintf(stdout, "%s\nAdmin API (faults, clock, keys): http://%s\n\nPoint teslalink at it:\n"+
		"  TESLA_DISCOVERY_URL=%s TESLA_TOKEN_URL=%s TESLA_ISSUERS=%s \\\n  TESLA_FLEET_API_NA=%s TESLA_AUDIENCE=%s \\\n  TESLA_CLIENT_ID=%s %s\n",
		sim.DescribeDefaults(), *adminAddr, sim.DiscoveryURL(), sim.TokenURL(), sim.IDTokenIssuer(),
		sim.RegionBaseURL("na"), sim.RegionBaseURL("na"), *clientID, secretHint)
	<-ctx.Done()
	return nil
}
