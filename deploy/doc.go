// Package deploy holds the deployment files (docker-compose.yml at the
// repository root, the Caddyfile, the example environment file and the
// Grafana dashboard). It has no code; its tests check those files.
package deploy
