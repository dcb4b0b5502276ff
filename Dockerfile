# Build stage: a static binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
# Only the sources the binary is built from: never .env, keys or .dev
# (also listed in .dockerignore).
COPY cmd ./cmd
COPY internal ./internal
COPY migrations ./migrations
COPY web ./web
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/web ./cmd/web

# Run stage: no shell, no package manager, not root.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/web /usr/local/bin/web
EXPOSE 8080
ENV ADDR=0.0.0.0:8080
# No ENTRYPOINT, so operator commands read as they do elsewhere:
#   docker compose run --rm app web keys rotate
CMD ["web", "serve"]
