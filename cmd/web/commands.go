package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"teslalink/internal/apikey"
	"teslalink/internal/db"
	"teslalink/internal/teslasim"
)

// command is one entry of the command table: what `web CMD --help` prints,
// and, for a top-level command, how to run it. A command with subcommands
// ("apiclient") has one entry of its own plus one per subcommand
// ("apiclient create"), which only carries help; the top-level run
// dispatches to the subcommand.
//
// To add a command, add an entry here (help is then automatic, and a test
// checks that every entry has a summary, a usage line and an example).
type command struct {
	name     string // "dev", or "apiclient create" for a subcommand
	args     string // synopsis after the name, e.g. "NAME [--scopes S]"
	summary  string // one line for `web --help`
	detail   string // paragraphs for `web CMD --help`
	flags    []flagDoc
	examples []string
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) error // top-level entries only
}

// flagDoc documents one flag of a command.
type flagDoc struct {
	name, value, def, usage string // value: placeholder ("" for a boolean flag); def: default shown
}

// commands is every command of the binary, in the order `web --help` lists them.
var commands []*command

func init() {
	commands = []*command{
		{name: "dev", args: "[--addr 127.0.0.1:8080] [--sim-addr 127.0.0.1:0] [--allow-remote]",
			summary: "run with embedded defaults: its own PostgreSQL, the Tesla simulator, development keys",
			detail: "Runs the whole service for development with nothing set up beforehand.\n" +
				"PostgreSQL data and development keys live in TESLALINK_DEV_DIR (default .dev).\n" +
				"Set DATABASE_URL to use your own database, or TESLA_CLIENT_ID (and the other TESLA_*\n" +
				"variables) to use a real provider instead of the simulator.\n" +
				"Prometheus metrics: http://127.0.0.1:9464/metrics (METRICS_ADDR; a free port if taken).",
			flags: []flagDoc{
				{"addr", "host:port", "127.0.0.1:8080 (or ADDR)", "listen address; loopback only, unless --allow-remote"},
				{"sim-addr", "host:port", "127.0.0.1:0 (a free port)", "listen address of the Tesla simulator; loopback only, unless --allow-remote"},
				{"allow-remote", "", "", "allow a non-loopback --addr or --sim-addr (other machines then reach development keys and a known password)"},
			},
			examples: []string{"web dev", "web dev --addr 127.0.0.1:9000 --sim-addr 127.0.0.1:9090"},
			run:      cmdDev},
		{name: "serve", args: "[--addr host:port]",
			summary: "run in production; configuration comes from the environment",
			detail: "Requires PUBLIC_URL, DATABASE_URL, TESLA_CLIENT_ID, TOKEN_ENCRYPTION_KEYS and\n" +
				"SESSION_KEYS. Without TESLA_CLIENT_SECRET it runs as a public client (PKCE only).\n" +
				"Applies pending migrations at start-up.\n" +
				"Stops gracefully on SIGTERM or Ctrl-C (SHUTDOWN_DRAIN: /readyz fails first).\n" +
				"METRICS_ADDR serves Prometheus metrics on a listener of its own.\n" +
				"Every variable is listed in README.md.",
			flags:    []flagDoc{{"addr", "host:port", "127.0.0.1:8080 (or ADDR)", "listen address"}},
			examples: []string{"web serve", "web serve --addr 0.0.0.0:8080"},
			run:      cmdServe},
		{name: "migrate",
			summary:  "apply the database migrations and report them",
			detail:   "Needs DATABASE_URL. `web serve` also applies them at start-up.",
			examples: []string{"web migrate"},
			run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				if len(args) > 0 {
					return &configError{"migrate", "takes no arguments"}
				}
				return cmdMigrate(ctx, args, stdout)
			}},
		{name: "keys", args: "SUBCOMMAND",
			summary:  "generate token and session keys, and re-seal stored tokens with the primary key",
			examples: []string{"web keys generate", "web keys rotate"},
			run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				return cmdKeys(ctx, args, stdout)
			}},
		{name: "keys generate",
			summary:  "print a new TOKEN_ENCRYPTION_KEYS entry and a new SESSION_KEYS value",
			examples: []string{"web keys generate"}},
		{name: "keys rotate", args: "[--batch 500]",
			summary: "re-seal every stored token with the primary key, online, in batches",
			detail: "Needs DATABASE_URL and TOKEN_ENCRYPTION_KEYS. Afterwards the older keys can be\n" +
				"removed from TOKEN_ENCRYPTION_KEYS, once it reports that every token uses the primary key.",
			flags:    []flagDoc{{"batch", "N", "500", "links per transaction batch"}},
			examples: []string{"web keys rotate", "web keys rotate --batch 2000"}},
		{name: "apiclient", args: "SUBCOMMAND",
			summary:  "manage the API keys of the team's backends",
			detail:   "Needs DATABASE_URL.",
			examples: []string{"web apiclient create billing", "web apiclient list", "web apiclient rotate billing", "web apiclient revoke billing"},
			run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				return cmdAPIClient(ctx, args, stdout)
			}},
		{name: "apiclient create", args: "NAME [--scopes links:read,tokens:issue] [--display-name NAME]",
			summary: "create an API client and print its key, once",
			detail: "NAME holds letters, digits, '-', '_' and '.'. Only the key's SHA-256 is stored, so\n" +
				"the key cannot be shown again.",
			flags: []flagDoc{{"scopes", "list", strings.Join(apikey.DefaultScopes, ","),
				"comma-separated API scopes: " + strings.Join(apikey.Scopes, ", ")},
				{"display-name", "name", "", "the name owners see when this client starts a link session; default: NAME"}},
			examples: []string{"web apiclient create billing", "web apiclient create crm --scopes links:read,links:delete"}},
		{name: "apiclient list",
			summary:  "list the API clients, revoked ones included, with the last use of each key; never a key",
			examples: []string{"web apiclient list"}},
		{name: "apiclient rotate", args: "NAME [--overlap 24h]",
			summary: "give a client a new key; the previous key keeps working for the overlap",
			detail: "Prints the new key once. During the overlap both keys work, so the backend can switch\n" +
				"without downtime; then the previous key is refused. A key older than the previous one\n" +
				"is refused at once. 'web apiclient list' shows both keys and the last use of each.",
			flags:    []flagDoc{{"overlap", "duration", "24h", "how long the previous key keeps working (0s: refused at once; at most 720h)"}},
			examples: []string{"web apiclient rotate billing", "web apiclient rotate billing --overlap 1h"}},
		{name: "apiclient revoke", args: "NAME",
			summary:  "revoke a client (both its keys) at once, on every instance; its name can then be used again",
			examples: []string{"web apiclient revoke billing"}},
		{name: "webhook", args: "SUBCOMMAND",
			summary: "manage the endpoints that receive signed link events (Standard Webhooks)",
			detail: "Needs DATABASE_URL. Events: " + strings.Join(db.EventTypes, ", ") + ".\n" +
				"Private and loopback targets are refused unless WEBHOOK_ALLOW_PRIVATE=true (web dev sets it).",
			examples: []string{"web webhook add https://app.example.com/hooks/tesla", "web webhook list",
				"web webhook deliveries --failed", "web webhook remove 3"},
			run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				return cmdWebhook(ctx, args, stdout)
			}},
		{name: "webhook add", args: "URL [--events link.revoked,link.reauth_required]",
			summary: "add an endpoint and print its signing secret (whsec_...), once",
			detail: "URL must be http(s). Without --events the endpoint gets every event. Each request is\n" +
				"signed as Standard Webhooks says: headers webhook-id, webhook-timestamp and\n" +
				"webhook-signature (v1,<base64 HMAC-SHA256 of id.timestamp.body>).",
			flags:    []flagDoc{{"events", "list", "", "comma-separated event types (without it: every event): " + strings.Join(db.EventTypes, ", ")}},
			examples: []string{"web webhook add https://app.example.com/hooks/tesla", "web webhook add https://ops.example.com/hook --events link.reauth_required,link.refresh_failed"}},
		{name: "webhook list",
			summary:  "list the endpoints, each with its events and whether it is failing; never a secret",
			examples: []string{"web webhook list"}},
		{name: "webhook remove", args: "ID",
			summary:  "stop sending to an endpoint; its pending deliveries are cancelled, its history kept",
			examples: []string{"web webhook remove 3"}},
		{name: "webhook deliveries", args: "[--failed] [--limit 50]",
			summary: "show recent deliveries, newest first, with their last attempt (time, HTTP status, latency, error)",
			flags: []flagDoc{{"failed", "", "", "only deliveries that gave up or whose last attempt failed"},
				{"limit", "n", "50", "how many deliveries to show (at most 1000)"}},
			examples: []string{"web webhook deliveries", "web webhook deliveries --failed"}},
		{name: "tesla", args: "SUBCOMMAND",
			summary:  "Tesla operator commands",
			examples: []string{"web tesla register --domain link.example.com --region eu"},
			run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				return cmdTesla(ctx, args, stdout)
			}},
		{name: "tesla register", args: "--domain example.com [--region na|eu|cn]",
			summary: "register the app with Tesla's Fleet API in a region (partner token + partner_accounts)",
			detail: "Needs TESLA_CLIENT_ID and TESLA_CLIENT_SECRET: Tesla issues no partner token to a\n" +
				"public client (no secret), so such an app cannot register. Tesla fetches the public key from\n" +
				"https://DOMAIN/.well-known/appspecific/com.tesla.3p.public-key.pem, so the running\n" +
				"service needs TESLA_PUBLIC_KEY_FILE. Registering again is harmless.",
			flags: []flagDoc{
				{"domain", "host", "", "the app's bare host name (required)"},
				{"region", "na|eu|cn", "na", "Fleet API region to register in"},
			},
			examples: []string{"web tesla register --domain link.example.com", "web tesla register --domain link.example.com --region eu"}},
		{name: "tesla-sim", args: "[flags]",
			summary: "run the Tesla simulator alone, with a loopback admin API for faults, the clock and keys",
			detail:  "Prints the TESLA_* variables to point `web serve` at it.\n\n" + simAdminHelp,
			flags: []flagDoc{
				{"addr", "host:port", "127.0.0.1:9090", "listen address of the simulator"},
				{"admin-addr", "host:port", "127.0.0.1:9091", "loopback listen address of the admin API"},
				{"client-id", "id", teslasim.DefaultClientID, "client id the simulator accepts"},
				{"client-secret", "secret", teslasim.DefaultClientSecret, "client secret the simulator accepts"},
				{"redirect-uri", "url", "http://127.0.0.1:8080/auth/tesla/callback", "the one redirect URI the simulator accepts"},
				{"password", "pw", teslasim.DefaultPassword, "password of every simulated owner"},
				{"require-registration", "", "false", "answer 412 on user endpoints until the partner domain is registered"},
				{"public-client", "", "false", "register the client as a public client (Tesla's open-source apps): no secret, PKCE required, no partner token"},
			},
			examples: []string{"web tesla-sim", "web tesla-sim --addr 127.0.0.1:9190 --admin-addr 127.0.0.1:9191", "web tesla-sim --public-client",
				`curl -H 'Content-Type: application/json' -d '{"fault":"http_503","count":2}' http://127.0.0.1:9091/faults`,
				`curl -H 'Content-Type: application/json' -d '{"seconds":86400}' http://127.0.0.1:9091/clock/advance`},
			run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				return cmdTeslaSim(ctx, args, stdout)
			}},
		{name: "healthcheck",
			summary:  "exit 0 when the local server's /readyz answers 200 (the container healthcheck)",
			detail:   "Asks http://ADDR/readyz; a wildcard ADDR host (0.0.0.0) means 127.0.0.1.",
			examples: []string{"web healthcheck"},
			run: func(ctx context.Context, args []string, stdout, _ io.Writer) error {
				if len(args) > 0 {
					return &configError{"healthcheck", "takes no arguments"}
				}
				return cmdHealthcheck(ctx, stdout)
			}},
	}
}

// simAdminHelp documents the simulator's admin API (also in README.md).
const simAdminHelp = `Admin API (JSON, on --admin-addr, loopback only). Writes need
Content-Type: application/json; requests from another origin are refused.
  POST   /faults        {"fault":"http_503","count":2,"endpoint":"","latency_ms":0,"retry_after_s":0}
                        the next COUNT matching answers misbehave (count 0: until cleared)
  GET    /faults        active faults with remaining counts (-1: until cleared), and every known fault
  DELETE /faults        clear every fault
  POST   /clock/advance {"seconds":86400}  make time pass at once (8h: access tokens expire;
                        24h: the refresh grace ends; 90 days: refresh tokens expire)
  POST   /keys/rotate   {"drop_old":false}  publish a new signing key (drop_old: drop the old ones)
  GET    /calls         calls per endpoint
  DELETE /calls         reset the counters
  GET    /refresh-reuse {"accepted":0,"refused":0}  refresh tokens presented again after their
                        first use (accepted within the 24h grace, or refused)
Faults: id_token_bad_signature, id_token_unknown_kid, id_token_alg_none, id_token_wrong_iss,
  id_token_wrong_aud, id_token_missing_aud, id_token_wrong_nonce, id_token_missing_nonce,
  id_token_missing_sub, id_token_missing_iat, id_token_expired, userinfo_sub_mismatch,
  refresh_login_required, unauthorized_client, http_500, http_502, http_503, http_429,
  latency, drop_after_refresh.
"endpoint" limits 5xx, 429 and latency faults to one endpoint (a name from GET /calls,
"token", "fleet" or "*").`

// findCommand returns the entry for a name such as "apiclient create".
func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// helpTopic returns the most specific command that args name (e.g.
// "apiclient create" for `apiclient create billing --help`), or nil.
func helpTopic(args []string) *command {
	var words []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
	}
	for n := len(words); n > 0; n-- {
		if c := findCommand(strings.Join(words[:n], " ")); c != nil {
			return c
		}
	}
	return nil
}

// wantsHelp reports whether args ask for help (-h, -help or --help anywhere
// before a "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, "teslalink: link Tesla accounts and broker their access tokens.\n\nUsage: web COMMAND [flags]\n\nCommands:\n")
	width := 0
	for _, c := range commands {
		width = max(width, len(c.name))
	}
	for _, c := range commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun 'web COMMAND --help' for a command's flags and examples.\n"+
		"Configuration comes from the environment; README.md lists every variable.\n")
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: web %s", c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s.\n", capitalize(c.summary))
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", c.detail)
	}
	var subs []*command
	for _, s := range commands {
		if strings.HasPrefix(s.name, c.name+" ") {
			subs = append(subs, s)
		}
	}
	if len(subs) > 0 {
		fmt.Fprint(w, "\nSubcommands:\n")
		for _, s := range subs {
			fmt.Fprintf(w, "  %s\n      %s\n", strings.TrimSpace(s.name+" "+s.args), s.summary)
		}
	}
	if len(c.flags) > 0 {
		fmt.Fprint(w, "\nFlags:\n")
		for _, f := range c.flags {
			head := "--" + f.name
			if f.value != "" {
				head += " " + f.value
			}
			fmt.Fprintf(w, "  %s\n      %s", head, f.usage)
			if f.def != "" {
				fmt.Fprintf(w, " (default %s)", f.def)
			}
			fmt.Fprintln(w)
		}
	}
	if len(c.examples) > 0 {
		fmt.Fprint(w, "\nExamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// flagSet returns a FlagSet holding the documented flags (a string flag
// each, a bool flag where value is empty), so help and parsing cannot drift.
// Read values with flagString and flagBool. Parse errors name the command
// and point to its help.
func (c *command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, f := range c.flags {
		if f.value == "" {
			fs.Bool(f.name, f.def == "true", f.usage)
		} else {
			fs.String(f.name, f.flagDefault(), f.usage)
		}
	}
	return fs
}

// flagDefault is the default value proper: def up to " (", so that
// "127.0.0.1:8080 (or ADDR)" defaults to 127.0.0.1:8080.
func (f flagDoc) flagDefault() string {
	d, _, _ := strings.Cut(f.def, " (")
	return d
}

// parseFlags parses args with the command's documented flags; a bad flag is
// a configuration error that points to the command's help.
func (c *command) parseFlags(args []string) (*flag.FlagSet, error) {
	fs := c.flagSet()
	if err := fs.Parse(args); err != nil {
		return nil, &configError{"web " + c.name, err.Error() + " (see 'web " + c.name + " --help')"}
	}
	return fs, nil
}

func flagString(fs *flag.FlagSet, name string) string { return fs.Lookup(name).Value.String() }

func flagBool(fs *flag.FlagSet, name string) bool { return fs.Lookup(name).Value.String() == "true" }

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
