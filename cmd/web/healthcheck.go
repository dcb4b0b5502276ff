package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// cmdHealthcheck asks the local server's /readyz; containers without a
// shell use it as their healthcheck.
func cmdHealthcheck(ctx context.Context, stdout io.Writer) error {
	cfg, err := loadConfig(nil)
	if err != nil {
		return err
	}
	if err := addrFlag("healthcheck", nil, cfg); err != nil { // validates ADDR
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+localAddr(cfg.Addr)+"/readyz", nil)
	res, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: /readyz answered %d", res.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
