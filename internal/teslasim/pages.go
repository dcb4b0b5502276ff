package teslasim

import (
	"html/template"
	"net/http"
)

// pageData feeds the simulator's plain, server-rendered pages (no JavaScript).
type pageData struct {
	Title   string
	Message string
	Error   string
	// Consent form.
	Consent   bool
	Authz     string // the original authorize query, carried in a hidden field
	Client    string
	Email     string
	Scopes    []scopeRow
	Locked    bool
	Requested string
	// Revoke form.
	Revoke   bool
	BackURL  string
	RevokeID string
}

type scopeRow struct {
	Name, Label string
	Fixed       bool
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}} – Tesla SIMULATOR</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#171a20}
.banner{background:#fde68a;border:2px dashed #b45309;padding:.5rem;font-weight:bold;text-align:center}
.error{background:#fee2e2;border:1px solid #b91c1c;padding:.5rem}
label{display:block;margin:.5rem 0}
input[type=email],input[type=password],input[type=text]{width:100%;padding:.4rem;box-sizing:border-box}
fieldset{margin:1rem 0}
button{padding:.5rem 1rem;margin-right:.5rem}
</style>
</head>
<body>
<p class="banner">Tesla SIMULATOR – not the real Tesla. Do not enter real credentials.</p>
<h1>{{.Title}} (simulator)</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Consent}}
<form method="post" action="/oauth2/v3/authorize">
<input type="hidden" name="authz" value="{{.Authz}}">
<p>The application <strong>{{.Client}}</strong> asks to access your Tesla account.</p>
<label>Email <input type="email" name="email" value="{{.Email}}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<fieldset>
<legend>Allow {{.Client}} to:</legend>
{{range .Scopes}}{{if .Fixed}}<label><input type="checkbox" value="{{.Name}}" checked disabled> {{.Label}} <code>{{.Name}}</code></label>
<input type="hidden" name="scope" value="{{.Name}}">
{{else}}<label><input type="checkbox" name="scope" value="{{.Name}}" checked> {{.Label}} <code>{{.Name}}</code></label>
{{end}}{{end}}
{{if .Locked}}<p>This application requires every permission listed.</p>{{end}}
</fieldset>
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>
</form>
{{end}}
{{if .Revoke}}
<form method="post" action="/user/revoke/consent">
<input type="hidden" name="revoke_client_id" value="{{.RevokeID}}">
<input type="hidden" name="back_url" value="{{.BackURL}}">
<p>Remove <strong>{{.RevokeID}}</strong> from your Tesla account? All its access ends now.</p>
<label>Email <input type="email" name="email" value="{{.Email}}" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit" name="decision" value="revoke">Remove access</button>
</form>
{{end}}
</body>
</html>
`))

func writeHTML(w http.ResponseWriter, status int, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' http: https:")
	w.WriteHeader(status)
	_ = pageTmpl.Execute(w, d)
}
