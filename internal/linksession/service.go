// Package linksession lets a team's backend start a link for one of its
// users: it creates a session with an allowlisted return URL, takes the
// owner through consent and Tesla, sends them back with a single-use code,
// and binds the link to the team's user only when the backend claims that
// code for the same external_ref.
package linksession

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"teslalink/internal/apperr"
	"teslalink/internal/db"
)

// Defaults.
const (
	DefaultTTL = 30 * time.Minute // a session URL's life (LINK_SESSION_TTL)
	CodeTTL    = 10 * time.Minute // a claim code's life
	idPrefix   = "ls_"
	idBytes    = 24 // 192 bits
	codeBytes  = 32
	maxState   = 500
	maxRef     = 200
)

// Errors callers see. Each is an *apperr.Error; the owner's pages get
// the LinkSession* codes, the API the claim codes.
var (
	errUnknown       = apperr.New(apperr.LinkSessionUnknown, errors.New("no such link session"))
	errExpired       = apperr.New(apperr.LinkSessionExpired, errors.New("link session expired"))
	errUsed          = apperr.New(apperr.LinkSessionUsed, errors.New("link session already used"))
	errClaimUnknown  = apperr.Newf(apperr.NotFound, "No such link session.", errors.New("no such link session for this client"))
	errNotLinked     = apperr.New(apperr.LinkSessionNotLinked, errors.New("link session did not end with a link"))
	errCodeInvalid   = apperr.New(apperr.ClaimCodeInvalid, errors.New("claim code does not match"))
	errCodeUsed      = apperr.New(apperr.ClaimCodeUsed, errors.New("claim code already used"))
	errCodeExpired   = apperr.New(apperr.ClaimCodeExpired, errors.New("claim code expired"))
	errClaimMismatch = apperr.New(apperr.ClaimMismatch, errors.New("external_ref differs from the session's"))
	errLinkRevoked   = apperr.Newf(apperr.LinkRevoked, "The owner revoked the link before it was claimed. Nothing was bound.",
		errors.New("link revoked before the claim"))
)

func invalid(field, reason string) error {
	return apperr.Newf(apperr.InvalidRequest, field+" "+reason+".", errors.New(field+" "+reason))
}

// Config holds the Service's dependencies.
type Config struct {
	Store         *db.Store
	Allowlist     *Allowlist
	TTL           time.Duration // default DefaultTTL
	OfferedScopes []string      // scopes a session may ask for
	DefaultScopes []string      // asked for when a session names none
	Now           func() time.Time
	Logger        *slog.Logger
	// OnClaim runs inside the claim's transaction after the link was bound
	// (the event mechanism writes link.created / link.updated there).
	OnClaim db.ClaimHook
}

// Service creates, runs and claims link sessions.
type Service struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
}

// New builds a Service.
func New(cfg Config) *Service {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	s := &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// TTL is how long a new session URL works.
func (s *Service) TTL() time.Duration { return s.cfg.TTL }

// CreateRequest is the body of POST /api/v1/link-sessions.
type CreateRequest struct {
	ExternalRef string
	ReturnURL   string
	Scopes      []string // nil: the default scopes
	State       string
}

// Created is a new session: ID goes into the owner's URL, once.
type Created struct {
	ID        string
	ExpiresAt time.Time
}

// Create validates the request and stores a pending session for client.
func (s *Service) Create(ctx context.Context, clientID int64, in CreateRequest) (*Created, error) {
	if err := ValidExternalRef(in.ExternalRef); err != nil {
		return nil, err
	}
	if utf8.RuneCountInString(in.State) > maxState || !printable(in.State) {
		return nil, invalid("state", fmt.Sprintf("must be at most %d printable characters", maxState))
	}
	if in.ReturnURL == "" {
		return nil, invalid("return_url", "is required")
	}
	u, err := s.cfg.Allowlist.Check(in.ReturnURL)
	if err != nil {
		return nil, apperr.Newf(apperr.ReturnURLNotAllowed,
			"return_url "+strings.TrimPrefix(err.Error(), ErrNotAllowed.Error()+": ")+".", err)
	}
	scopes := in.Scopes
	if scopes == nil {
		scopes = s.cfg.DefaultScopes
	}
	var clean []string
	for _, sc := range scopes {
		if !slices.Contains(s.cfg.OfferedScopes, sc) {
			return nil, invalid("scopes", fmt.Sprintf("names %q, which this service does not offer (offered: %s)",
				sc, strings.Join(s.cfg.OfferedScopes, ", ")))
		}
		if !slices.Contains(clean, sc) {
			clean = append(clean, sc)
		}
	}
	if len(clean) == 0 {
		return nil, invalid("scopes", "must name at least one scope")
	}
	id := idPrefix + random(idBytes)
	now := s.now()
	ls, err := s.cfg.Store.CreateLinkSession(ctx, db.NewLinkSession{IDHash: hashID(id), APIClientID: clientID,
		ExternalRef: in.ExternalRef, ReturnURL: u.String(), Scopes: clean, State: in.State, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.TTL)})
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "link session created", "link_session", ls.ID, "api_client", ls.APIClientName)
	return &Created{ID: id, ExpiresAt: ls.ExpiresAt}, nil
}

// ValidExternalRef checks a team user id: 1 to 200 printable characters.
func ValidExternalRef(ref string) error {
	if ref == "" || utf8.RuneCountInString(ref) > maxRef || !printable(ref) {
		return invalid("external_ref", fmt.Sprintf("must be 1 to %d printable characters", maxRef))
	}
	return nil
}

func printable(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// ValidID reports whether id has the shape of a session id (cheap check
// before any lookup).
func ValidID(id string) bool {
	if !strings.HasPrefix(id, idPrefix) || len(id) != len(idPrefix)+base64.RawURLEncoding.EncodedLen(idBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id[len(idPrefix):])
	return err == nil
}

// Open finds a session the owner may still use: pending and unexpired.
func (s *Service) Open(ctx context.Context, id string) (*db.LinkSession, error) {
	ls, err := s.lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	return ls, s.usable(ls)
}

func (s *Service) lookup(ctx context.Context, id string) (*db.LinkSession, error) {
	if !ValidID(id) {
		return nil, errUnknown
	}
	ls, err := s.cfg.Store.GetLinkSession(ctx, hashID(id))
	if errors.Is(err, db.ErrNotFound) {
		return nil, errUnknown
	}
	return ls, err
}

func (s *Service) usable(ls *db.LinkSession) error {
	if ls.Status != db.SessionPending {
		return errUsed
	}
	if !s.now().Before(ls.ExpiresAt) {
		return errExpired
	}
	return nil
}

// Start spends the session URL: the owner goes on to Tesla now. Of two
// concurrent starts, one gets errUsed.
func (s *Service) Start(ctx context.Context, id string) (*db.LinkSession, error) {
	if !ValidID(id) {
		return nil, errUnknown
	}
	ls, err := s.cfg.Store.StartLinkSession(ctx, hashID(id), s.now())
	if errors.Is(err, db.ErrSessionNotPending) {
		if ls, err = s.lookup(ctx, id); err != nil {
			return nil, err
		}
		if err := s.usable(ls); err != nil {
			return nil, err
		}
		return nil, errUsed
	}
	return ls, err
}

// Scopes is what to ask Tesla for: the session's scopes the owner left
// ticked, plus what the owner's existing link already holds (so relinking
// never loses a scope). A ticked scope the session did not ask for is refused.
func (s *Service) Scopes(ls *db.LinkSession, ticked, existing []string) ([]string, error) {
	var out []string
	for _, sc := range ticked {
		if !slices.Contains(ls.Scopes, sc) {
			return nil, invalid("scope", "was not asked for by this session")
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	for _, sc := range existing {
		if slices.Contains(s.cfg.OfferedScopes, sc) && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// ExistingLink is the link an owner opening the session already has, as
// far as we can tell before Tesla: the signed-in owner's link, else the one
// link this API client already bound to the session's external_ref. nil
// when there is none (or no single one).
func (s *Service) ExistingLink(ctx context.Context, ls *db.LinkSession, signedIn *db.Link) (*db.Link, error) {
	if signedIn != nil {
		if signedIn.Status == db.StatusRevoked {
			return nil, nil //nolint:nilnil // no live link
		}
		return signedIn, nil
	}
	rows, err := s.cfg.Store.ListLinks(ctx, db.LinkFilter{ExternalRef: ls.ExternalRef, Limit: 10})
	if err != nil {
		return nil, err
	}
	var found *db.Link
	for i := range rows {
		l := &rows[i].Link
		if l.APIClient != ls.APIClientName || l.Status == db.StatusRevoked {
			continue
		}
		if found != nil {
			return nil, nil //nolint:nilnil // several: we cannot tell which
		}
		found = l
	}
	return found, nil
}

// Outcome is how the owner's trip through Tesla ended for a session.
type Outcome struct {
	Status string // db.SessionLinked, db.SessionDenied or db.SessionError
	LinkID string // with db.SessionLinked
}

// Finish records the outcome of a started session and returns where to
// send the owner: the return URL with session_id, status, state and, when
// linked, a single-use code that expires after CodeTTL.
func (s *Service) Finish(ctx context.Context, id string, o Outcome) (string, error) {
	if !ValidID(id) {
		return "", errUnknown
	}
	ls, err := s.cfg.Store.GetLinkSession(ctx, hashID(id))
	if errors.Is(err, db.ErrNotFound) {
		return "", errUnknown
	}
	if err != nil {
		return "", err
	}
	now := s.now()
	out := db.SessionOutcome{Status: o.Status, At: now}
	code := ""
	if o.Status == db.SessionLinked {
		if o.LinkID == "" {
			return "", errors.New("finish link session: linked without a link")
		}
		code = random(codeBytes)
		out.LinkID, out.CodeHash, out.CodeExpiresAt = o.LinkID, hashCode(code), now.Add(CodeTTL)
	}
	if ls, err = s.cfg.Store.CompleteLinkSession(ctx, ls.ID, out); errors.Is(err, db.ErrSessionNotPending) {
		return "", errUsed
	} else if err != nil {
		return "", err
	}
	u, err := url.Parse(ls.ReturnURL)
	if err != nil {
		return "", fmt.Errorf("finish link session: stored return URL: %w", err)
	}
	q := u.Query()
	q.Set("session_id", id)
	q.Set("status", o.Status)
	q.Set("state", ls.State)
	q.Del("code")
	if code != "" {
		q.Set("code", code)
	}
	u.RawQuery = q.Encode()
	s.log.InfoContext(ctx, "link session finished", "link_session", ls.ID, "status", o.Status, "link_id", o.LinkID)
	return u.String(), nil
}

// Claim binds the session's link to externalRef for the API client that
// created the session, with the single-use code from the return URL. A
// different externalRef spends the code and binds nothing.
func (s *Service) Claim(ctx context.Context, clientID int64, id, code, externalRef string) (*db.Claim, error) {
	if err := ValidExternalRef(externalRef); err != nil {
		return nil, err
	}
	if code == "" {
		return nil, invalid("code", "is required")
	}
	if !ValidID(id) {
		return nil, errClaimUnknown
	}
	now := s.now()
	c, err := s.cfg.Store.ClaimLinkSession(ctx, hashID(id), now, func(ls *db.LinkSession, l *db.Link) (db.ClaimDecision, error) {
		switch {
		case ls.APIClientID != clientID:
			return db.ClaimDecision{}, errClaimUnknown // another client's session does not exist for this one
		case ls.Status != db.SessionLinked || ls.CodeHash == nil:
			return db.ClaimDecision{}, errNotLinked
		case subtle.ConstantTimeCompare(hashCode(code), ls.CodeHash) != 1:
			return db.ClaimDecision{}, errCodeInvalid
		case !ls.CodeSpentAt.IsZero():
			return db.ClaimDecision{}, errCodeUsed
		case !now.Before(ls.CodeExpiresAt):
			return db.ClaimDecision{}, errCodeExpired
		case subtle.ConstantTimeCompare([]byte(externalRef), []byte(ls.ExternalRef)) != 1:
			return db.ClaimDecision{Spend: true}, errClaimMismatch
		case l == nil || l.Status == db.StatusRevoked:
			return db.ClaimDecision{Spend: true}, errLinkRevoked
		}
		return db.ClaimDecision{Spend: true, Bind: true}, nil
	}, s.cfg.OnClaim)
	if errors.Is(err, db.ErrNotFound) {
		return nil, errClaimUnknown
	}
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "link session claimed", "link_id", c.Link.ID, "api_client", c.Link.APIClient,
		"external_ref_changed", c.PreviousExternalRef != "" && c.PreviousExternalRef != c.Link.ExternalRef)
	return c, nil
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte("link-session:" + id))
	return h[:]
}

func hashCode(code string) []byte {
	h := sha256.Sum256([]byte("link-session-code:" + code))
	return h[:]
}
