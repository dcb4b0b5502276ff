package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// cmdTesla runs Tesla operator commands: `register`.
func cmdTesla(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "register" {
		return &configError{"tesla", "want 'register --domain example.com [--region na|eu|cn]'"}
	}
	fs := flag.NewFlagSet("tesla register", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	domain := fs.String("domain", "", "the app's domain, serving /.well-known/appspecific/com.tesla.3p.public-key.pem")
	region := fs.String("region", "na", "Fleet API region to register in: na, eu or cn")
	if err := fs.Parse(args[1:]); err != nil {
		return &configError{"tesla register", err.Error()}
	}
	if fs.NArg() > 0 {
		return &configError{"tesla register", "unexpected argument " + fs.Arg(0)}
	}
	d := strings.ToLower(strings.TrimSpace(*domain))
	if d == "" || strings.ContainsAny(d, "/:@ ?#") {
		return &configError{"--domain", "is required: the bare host name, e.g. link.example.com"}
	}
	r := strings.ToLower(*region)
	cfg, err := loadConfig(nil, "TESLA_CLIENT_ID")
	if err != nil {
		return err
	}
	if cfg.TeslaClientSecret == "" {
		return &configError{"TESLA_CLIENT_SECRET", "is required for partner registration: it needs a partner token " +
			"(client_credentials), which Tesla issues only to apps with a client secret. A public client " +
			"(Tesla's open-source apps, no secret) cannot register and is limited to the discovery tier; " +
			"it still links owners and refreshes their tokens"}
	}
	if cfg.PublicURL == nil { // only the redirect URI needs it, and registration sends none
		cfg.PublicURL = &url.URL{Scheme: "https", Host: d}
	}
	tesla, fleetAPI := teslaClients(cfg, slog.New(slog.DiscardHandler))
	baseURL, ok := fleetAPI.RegionBaseURL(r)
	if !ok || !(r == "na" || r == "eu" || r == "cn") {
		return &configError{"--region", "must be na, eu or cn"}
	}
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := tesla.Discover(dctx); err != nil {
		return fmt.Errorf("cannot reach Tesla's OpenID metadata (check TESLA_DISCOVERY_URL and the network): %w", err)
	}
	fmt.Fprintf(stdout, "Registering %s with Tesla's Fleet API in region %s (%s)...\n", d, r, baseURL)
	rctx, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	answer, err := fleetAPI.RegisterPartner(rctx, baseURL, d)
	if err != nil {
		return fmt.Errorf("registration failed: %w\n(Tesla must be able to fetch https://%s/.well-known/appspecific/com.tesla.3p.public-key.pem; "+
			"set TESLA_PUBLIC_KEY_FILE on the running service and check TESLA_CLIENT_ID/TESLA_CLIENT_SECRET)", err, d)
	}
	var out struct {
		Response struct {
			ClientID  string `json:"client_id"`
			Domain    string `json:"domain"`
			OUCode    string `json:"ou_code"`
			CreatedAt string `json:"created_at"`
		} `json:"response"`
	}
	if json.Unmarshal(answer, &out) == nil && out.Response.Domain != "" {
		fmt.Fprintf(stdout, "Registered: domain %s, region %s, client %s (created %s).\n", out.Response.Domain,
			strings.ToLower(out.Response.OUCode), out.Response.ClientID, out.Response.CreatedAt)
	} else {
		fmt.Fprintf(stdout, "Registered. Tesla answered: %s\n", strings.TrimSpace(string(answer)))
	}
	fmt.Fprintln(stdout, "Running this again is harmless: registering a domain that is already registered changes nothing.")
	return nil
}
