// Command web is teslalink's one binary: `serve` in production, `dev` with
// embedded defaults, and the operator commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

const usageText = `teslalink: link Tesla accounts and broker their access tokens.

Usage:
  web dev [--addr 127.0.0.1:8080]     run with embedded defaults (throwaway PostgreSQL, Tesla simulator)
  web serve [--addr host:port]        run in production (configuration from the environment)
  web migrate                         apply database migrations and report them
  web keys rotate [--batch 500]       re-seal every stored token with the primary TOKEN_ENCRYPTION_KEYS key
  web keys generate                   print a new TOKEN_ENCRYPTION_KEYS entry and a SESSION_KEYS value
  web apiclient create NAME [--scopes links:read,tokens:issue,links:delete]
  web apiclient list | revoke NAME    manage the team's API keys
  web tesla register --domain example.com [--region na|eu|cn]
  web healthcheck                     exit 0 when the local server's /readyz answers 200 (for containers)
  web tesla-sim [--addr 127.0.0.1:9090 --client-id ID --client-secret S | --public-client --redirect-uri URL]

Configuration: see README.md.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitConfig is the exit code for bad configuration.
const exitConfig = 2

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usageText)
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "dev":
		err = cmdDev(ctx, args[1:], stdout, stderr)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], stdout)
	case "keys":
		err = cmdKeys(ctx, args[1:], stdout)
	case "apiclient":
		err = cmdAPIClient(ctx, args[1:], stdout)
	case "tesla":
		err = cmdTesla(ctx, args[1:], stdout)
	case "tesla-sim":
		err = cmdTeslaSim(ctx, args[1:], stdout)
	case "healthcheck":
		err = cmdHealthcheck(ctx, stdout)
	default:
		fmt.Fprintf(stderr, "web: unknown command %q\n\n%s", args[0], usageText)
		return exitConfig
	}
	if err == nil {
		return 0
	}
	var ce *configError
	if errors.As(err, &ce) {
		fmt.Fprintf(stderr, "web: configuration: %s\n", oneLine(ce.Error()))
		return exitConfig
	}
	fmt.Fprintf(stderr, "web: %s\n", oneLine(err.Error()))
	return 1
}

// oneLine folds a multi-line error (pgx lists each address it tried) into
// the one line an operator reads first.
func oneLine(s string) string {
	s = strings.ReplaceAll(strings.ReplaceAll(s, ":\n", ": "), "\n", "; ")
	return strings.Join(strings.Fields(s), " ")
}
