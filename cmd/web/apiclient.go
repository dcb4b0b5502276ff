package main

import (
	"context"
	"errors"
	"io"
)

// cmdAPIClient manages the team's API keys.
func cmdAPIClient(ctx context.Context, args []string, stdout io.Writer) error {
	return errors.New("apiclient: not implemented yet")
}

// cmdTesla runs Tesla operator commands.
func cmdTesla(ctx context.Context, args []string, stdout io.Writer) error {
	return errors.New("tesla: not implemented yet")
}
