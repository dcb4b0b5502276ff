package main

import (
	"strings"
	"testing"

	"teslalink/internal/teslasim"
)

// TestHelpForEveryCommand: `web --help` lists every command, and
// `web CMD --help` (also -h and `web help CMD`) prints usage, flags and
// examples, exit 0, without touching the environment.
func TestHelpForEveryCommand(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	code, out, errs := runCmd("--help")
	if code != 0 || errs != "" {
		t.Fatalf("web --help: %d %q", code, errs)
	}
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("web --help does not list %q", c.name)
		}
		if c.summary == "" || len(c.examples) == 0 {
			t.Errorf("%q: needs a summary and at least one example", c.name)
		}
		words := strings.Fields(c.name)
		for _, args := range [][]string{append(words, "--help"), append(words, "-h"), append([]string{"help"}, words...),
			append(append(words, "SOMEARG"), "--help")} {
			code, out, errs := runCmd(args...)
			if code != 0 || errs != "" {
				t.Errorf("%v: exit %d, stderr %q", args, code, errs)
				continue
			}
			if !strings.HasPrefix(out, "Usage: web "+c.name) || !strings.Contains(out, "\nExamples:\n  web ") {
				t.Errorf("%v: no usage or examples:\n%s", args, out)
			}
			for _, f := range c.flags {
				if !strings.Contains(out, "--"+f.name) {
					t.Errorf("%v: flag --%s not described", args, f.name)
				}
			}
			if strings.Contains(out, "help requested") {
				t.Errorf("%v: %s", args, out)
			}
		}
	}
	// Parent commands list their subcommands.
	if _, out, _ := runCmd("apiclient", "--help"); !strings.Contains(out, "apiclient revoke NAME") {
		t.Errorf("apiclient --help lists no subcommands:\n%s", out)
	}
}

// TestBadFlagPointsToHelp: a wrong flag is exit 2 with one line naming the
// command and its help.
func TestBadFlagPointsToHelp(t *testing.T) {
	code, _, errs := runCmd("tesla-sim", "--no-such-flag")
	if code != exitConfig || !strings.Contains(errs, "'web tesla-sim --help'") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if code, _, errs := runCmd("no-such-command"); code != exitConfig || !strings.Contains(errs, "web --help") {
		t.Fatalf("unknown command: exit %d, stderr %q", code, errs)
	}
}

// TestSimHelpListsEveryFault: the admin API help names every fault the
// simulator knows, so it cannot fall behind.
func TestSimHelpListsEveryFault(t *testing.T) {
	_, out, _ := runCmd("tesla-sim", "--help")
	for _, f := range teslasim.AllFaults {
		if !strings.Contains(out, string(f)) {
			t.Errorf("tesla-sim --help does not list fault %q", f)
		}
	}
	for _, p := range []string{"POST   /faults", "/clock/advance", "/keys/rotate", "GET    /calls", "application/json"} {
		if !strings.Contains(out, p) {
			t.Errorf("tesla-sim --help does not mention %q", p)
		}
	}
}
