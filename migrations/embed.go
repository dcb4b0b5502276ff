// Package migrations holds the numbered SQL migrations, embedded into the binary.
package migrations

import "embed"

// FS holds every NNNN_name.sql file; internal/db applies them in name order.
//
//go:embed *.sql
var FS embed.FS
