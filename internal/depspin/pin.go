// Package depspin keeps planned dependencies in go.mod while packages are written. Removed before release.
package depspin

import (
	_ "github.com/a-h/templ"
	_ "github.com/chromedp/chromedp"
	_ "github.com/coreos/go-oidc/v3/oidc"
	_ "github.com/getkin/kin-openapi/openapi3filter"
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/gorilla/securecookie"
	_ "github.com/gorilla/sessions"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/labstack/echo/v4"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/singleflight"
	_ "golang.org/x/time/rate"
)
