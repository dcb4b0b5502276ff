package main

import (
	"flag"
	"fmt"
	"io"
	"net"
)

// devFlags applies `web dev`'s flags to cfg and returns the simulator's
// listen address. Both addresses must be loopback unless --allow-remote:
// `web dev` runs with development keys and a simulator whose password is
// public, so reaching it from another machine must be a deliberate choice,
// and it is announced on stderr.
func devFlags(args []string, cfg *Config, stderr io.Writer) (simAddr string, err error) {
	c := findCommand("dev")
	fs, err := c.parseFlags(args)
	if err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", &configError{"web dev", "unexpected argument " + fs.Arg(0) + " (see 'web dev --help')"}
	}
	addrSet := false
	fs.Visit(func(f *flag.Flag) { addrSet = addrSet || f.Name == "addr" })
	if addrSet {
		cfg.Addr = flagString(fs, "addr")
	}
	simAddr = flagString(fs, "sim-addr")
	remote := flagBool(fs, "allow-remote")
	for _, a := range []struct{ name, addr string }{{"--addr (or ADDR)", cfg.Addr}, {"--sim-addr", simAddr}} {
		host, _, err := net.SplitHostPort(a.addr)
		if err != nil {
			return "", &configError{a.name, "must be host:port, e.g. 127.0.0.1:8080"}
		}
		if loopbackHost(host) {
			continue
		}
		if !remote {
			return "", &configError{a.name, fmt.Sprintf("%s is not a loopback address; web dev uses development keys and a "+
				"simulator with a known password, so it listens on loopback only (add --allow-remote if you really mean it)", a.addr)}
		}
		fmt.Fprintf(stderr, "web dev: WARNING: %s %s is reachable from other machines, with development keys and a "+
			"simulator whose password everybody knows (--allow-remote)\n", a.name, a.addr)
	}
	return simAddr, nil
}
