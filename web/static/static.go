// Package static holds the embedded stylesheet and icons served under /static/.
package static

import "embed"

// FS holds the stylesheet and icons. Serve it with cache-busting paths
// (for example "/static/app.css?v=<hash>") and a long max-age.
//
//go:embed *.css *.svg
var FS embed.FS
