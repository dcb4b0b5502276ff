package deploy

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"
)

// The repository root, seen from this package.
const root = ".."

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type service struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	EnvFile     any               `yaml:"env_file"`
	Environment map[string]string `yaml:"environment"`
	Ports       []any             `yaml:"ports"`
	Volumes     []any             `yaml:"volumes"`
}

func compose(t *testing.T) map[string]service {
	t.Helper()
	var doc struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal([]byte(read(t, "docker-compose.yml")), &doc); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"db", "app", "caddy"} {
		if _, ok := doc.Services[name]; !ok {
			t.Fatalf("docker-compose.yml has no %q service", name)
		}
	}
	return doc.Services
}

// readmeVariables lists every variable of README.md's configuration table
// ("`TESLA_FLEET_API_NA`, `_EU`" names TESLA_FLEET_API_EU too).
func readmeVariables(t *testing.T) []string {
	t.Helper()
	readme := read(t, "README.md")
	start := strings.Index(readme, "\n## Configuration")
	if start < 0 {
		t.Fatal("README.md has no Configuration section")
	}
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var vars []string
	tick := regexp.MustCompile("`([A-Z_][A-Z0-9_]*)`")
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		prev := ""
		for _, m := range tick.FindAllStringSubmatch(first, -1) {
			name := m[1]
			if strings.HasPrefix(name, "_") && prev != "" {
				name = prev[:strings.LastIndex(prev, "_")] + name
			}
			vars = append(vars, name)
			prev = name
		}
	}
	if len(vars) < 20 {
		t.Fatalf("found only %d variables in README.md's configuration table", len(vars))
	}
	return vars
}

// TestComposeHasNoDefaultPassword: the database password has no fallback;
// compose stops with a message naming the variable.
func TestComposeHasNoDefaultPassword(t *testing.T) {
	text := read(t, "docker-compose.yml")
	uses := regexp.MustCompile(`\$\{POSTGRES_PASSWORD([^}]*)\}`).FindAllStringSubmatch(text, -1)
	if len(uses) == 0 {
		t.Fatal("docker-compose.yml does not use POSTGRES_PASSWORD")
	}
	for _, u := range uses {
		if !strings.HasPrefix(u[1], ":?") || len(u[1]) < 10 {
			t.Errorf("${POSTGRES_PASSWORD%s}: want ${POSTGRES_PASSWORD:?<message saying how to set it>}", u[1])
		}
	}
	// No secret may have a default either.
	for _, secret := range []string{"TESLA_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEYS", "SESSION_KEYS", "DATABASE_URL"} {
		if regexp.MustCompile(`\$\{` + secret + `:?-`).MatchString(text) {
			t.Errorf("docker-compose.yml gives %s a default value", secret)
		}
	}
	if v := compose(t)["db"].Environment["POSTGRES_PASSWORD"]; !strings.HasPrefix(v, "${POSTGRES_PASSWORD:?") {
		t.Errorf("db POSTGRES_PASSWORD = %q", v)
	}
}

// TestComposePublishesOnlyTLS: the app and the database publish nothing on
// the host's interfaces (loopback at most); only Caddy publishes, on 80
// (ACME and the redirect) and 443.
func TestComposePublishesOnlyTLS(t *testing.T) {
	for name, svc := range compose(t) {
		for _, p := range svc.Ports {
			s, ok := p.(string)
			if !ok {
				t.Errorf("%s: use the short port syntax (\"host_ip:host:container\"), got %v", name, p)
				continue
			}
			parts := strings.Split(strings.TrimSuffix(strings.TrimSuffix(s, "/udp"), "/tcp"), ":")
			hostIP := ""
			if len(parts) == 3 {
				hostIP = parts[0]
			}
			container := parts[len(parts)-1]
			switch {
			case name == "caddy" && (container == "80" || container == "443"):
			case hostIP == "127.0.0.1" || hostIP == "[::1]":
			default:
				t.Errorf("%s publishes %q on every interface; publish on 127.0.0.1 only, or go through Caddy", name, s)
			}
		}
	}
	caddy := compose(t)["caddy"]
	mounted := false
	for _, v := range caddy.Volumes {
		if s, ok := v.(string); ok && strings.HasPrefix(s, "./deploy/Caddyfile:/etc/caddy/Caddyfile") {
			mounted = true
		}
	}
	if !mounted {
		t.Error("caddy does not mount ./deploy/Caddyfile")
	}
	cf := read(t, "deploy/Caddyfile")
	for _, want := range []string{"{$PUBLIC_URL}", "reverse_proxy", "name app", "port 8080"} {
		if !strings.Contains(cf, want) {
			t.Errorf("Caddyfile lacks %q", want)
		}
	}
	if caddy.Environment["PUBLIC_URL"] == "" {
		t.Error("caddy does not get PUBLIC_URL, its site address")
	}
}

// TestComposePassesEveryVariable: the app reads .env whole (env_file), so
// every documented variable reaches it; the few compose sets itself are
// documented ones; the public key file is mounted where
// TESLA_PUBLIC_KEY_FILE points.
func TestComposePassesEveryVariable(t *testing.T) {
	app := compose(t)["app"]
	var files []string
	switch v := app.EnvFile.(type) {
	case string:
		files = []string{v}
	case []any:
		for _, f := range v {
			switch f := f.(type) {
			case string:
				files = append(files, f)
			case map[string]any:
				if p, ok := f["path"].(string); ok {
					files = append(files, p)
				}
			}
		}
	}
	if !slices.Contains(files, ".env") {
		t.Errorf("app env_file = %v, want .env", app.EnvFile)
	}
	documented := readmeVariables(t)
	for k := range app.Environment {
		if !slices.Contains(documented, k) {
			t.Errorf("docker-compose.yml sets %s, which README.md's configuration table does not list", k)
		}
	}
	keyPath := app.Environment["TESLA_PUBLIC_KEY_FILE"]
	if keyPath == "" {
		t.Fatal("app: TESLA_PUBLIC_KEY_FILE is not set")
	}
	found := false
	for _, v := range app.Volumes {
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		if m["target"] == keyPath && m["read_only"] == true && m["source"] == "./deploy/public-key.pem" {
			found = true
		}
	}
	if !found {
		t.Errorf("no read-only bind mount of ./deploy/public-key.pem at %s", keyPath)
	}
}

// TestEnvExampleListsEveryVariable: each variable of README.md's
// configuration table appears in deploy/teslalink.env.example (set, or
// commented out with its default), and no secret has a value there.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	example := read(t, "deploy/teslalink.env.example")
	values := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(example))
	line := regexp.MustCompile(`^(#\s*)?([A-Z_][A-Z0-9_]*)=(.*)$`)
	for sc.Scan() {
		if m := line.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
			values[m[2]] = m[3]
			if m[1] == "" {
				values[m[2]+"#set"] = "yes"
			}
		}
	}
	for _, v := range readmeVariables(t) {
		if _, ok := values[v]; !ok {
			t.Errorf("README.md documents %s, but deploy/teslalink.env.example does not list it "+
				"(add it, commented out with its default, so docker compose users find it)", v)
		}
	}
	for _, secret := range []string{"POSTGRES_PASSWORD", "TESLA_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEYS", "SESSION_KEYS"} {
		if values[secret+"#set"] != "yes" || values[secret] != "" {
			t.Errorf("%s must be listed empty (to fill in), got %q", secret, values[secret])
		}
	}
}

// TestSecretsStayOutOfGitAndImages: .env is ignored by git and docker, and
// the Dockerfile copies only the sources, never the whole context.
func TestSecretsStayOutOfGitAndImages(t *testing.T) {
	for _, f := range []string{".gitignore", ".dockerignore"} {
		lines := strings.Split(read(t, f), "\n")
		if !slices.Contains(lines, ".env") && !slices.Contains(lines, "/.env") {
			t.Errorf("%s does not list .env", f)
		}
	}
	if !slices.Contains(strings.Split(read(t, ".dockerignore"), "\n"), "*.pem") {
		t.Error(".dockerignore does not list *.pem")
	}
	for _, l := range strings.Split(read(t, "Dockerfile"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "COPY" || f[0] == "ADD") && !strings.HasPrefix(f[1], "--from") && slices.Contains(f[1:len(f)-1], ".") {
			t.Errorf("Dockerfile copies the whole build context: %q", l)
		}
	}
}

// TestReadmeDocumentsComposeOperatorCommands: operator commands are shown as
// they run in the compose deployment.
func TestReadmeDocumentsComposeOperatorCommands(t *testing.T) {
	readme := read(t, "README.md")
	for _, want := range []string{"docker compose run --rm app web keys rotate", "docker compose run --rm app web apiclient create",
		"cp deploy/teslalink.env.example .env"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
	if !strings.Contains(read(t, "Dockerfile"), `CMD ["web", "serve"]`) {
		t.Error(`the image must run "web serve" by default with "web" on PATH, so "docker compose run --rm app web ..." works`)
	}
}
