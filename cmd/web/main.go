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

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitConfig is the exit code for bad configuration.
const exitConfig = 2

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stdout)
		return 0
	}
	if args[0] == "help" || wantsHelp(args) {
		topic := args
		if args[0] == "help" {
			topic = args[1:]
		}
		if c := helpTopic(topic); c != nil {
			printCommandHelp(stdout, c)
		} else {
			printUsage(stdout)
		}
		return 0
	}
	c := findCommand(args[0])
	if c == nil || c.run == nil {
		fmt.Fprintf(stderr, "web: unknown command %q (run 'web --help' for the list)\n", args[0])
		return exitConfig
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := c.run(ctx, args[1:], stdout, stderr)
	if err == nil {
		return 0
	}
	var ces configErrors
	if errors.As(err, &ces) {
		for _, ce := range ces {
			fmt.Fprintf(stderr, "web: configuration: %s\n", oneLine(ce.Error()))
		}
		return exitConfig
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
