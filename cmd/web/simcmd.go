package main

import (
	"context"
	"errors"
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
	fs, err := findCommand("tesla-sim").parseFlags(args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &configError{"web tesla-sim", "unexpected argument " + fs.Arg(0) + " (see 'web tesla-sim --help')"}
	}
	addr, adminAddr := flagString(fs, "addr"), flagString(fs, "admin-addr")
	clientID, clientSecret := flagString(fs, "client-id"), flagString(fs, "client-secret")
	redirect, password := flagString(fs, "redirect-uri"), flagString(fs, "password")
	requireReg, public := flagBool(fs, "require-registration"), flagBool(fs, "public-client")
	host, _, err := net.SplitHostPort(adminAddr)
	if err != nil || !loopbackHost(host) {
		return &configError{"--admin-addr", "must be a loopback host:port"}
	}
	logger := slog.New(slog.NewTextHandler(stdout, nil))
	sim, err := teslasim.New(teslasim.Config{ClientID: clientID, ClientSecret: clientSecret, PublicClient: public, RedirectURIs: []string{redirect},
		Password: password, RequirePartnerRegistration: requireReg, Logger: logger, Clock: teslasim.NewRunningClock()})
	if err != nil {
		return err
	}
	if err := sim.Start(addr); err != nil {
		return err
	}
	defer sim.Close()
	admin := &http.Server{Addr: adminAddr, Handler: sim.AdminHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := admin.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("admin listener", "error", err)
		}
	}()
	defer admin.Close()
	secretHint := "TESLA_CLIENT_SECRET=..."
	if public {
		secretHint = "TESLA_CLIENT_SECRET=   (leave it empty: public client)"
	}
	fmt.Fprintf(stdout, "%s\nAdmin API (faults, clock, keys): http://%s\n\nPoint teslalink at it:\n"+
		"  TESLA_DISCOVERY_URL=%s TESLA_TOKEN_URL=%s TESLA_ISSUERS=%s \\\n  TESLA_FLEET_API_NA=%s TESLA_AUDIENCE=%s \\\n  TESLA_CLIENT_ID=%s %s\n",
		sim.DescribeDefaults(), adminAddr, sim.DiscoveryURL(), sim.TokenURL(), sim.IDTokenIssuer(),
		sim.RegionBaseURL("na"), sim.RegionBaseURL("na"), clientID, secretHint)
	<-ctx.Done()
	return nil
}
