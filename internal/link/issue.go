package link

import (
	"context"
	"errors"
	"slices"
	"time"

	"teslalink/internal/apikey"
	"teslalink/internal/apperr"
	"teslalink/internal/db"
	"teslalink/internal/tokencache"
)

// IssueRequest asks for a link's access token on behalf of an API client.
type IssueRequest struct {
	KeyHash [32]byte // apikey.Hash of the caller's key
	LinkID  string
	// Admit, when set, is called as soon as the key is known, before its
	// scope or the link is checked (rate limits); its error is returned.
	Admit func(clientID int64) error
	// Read returns the request's options. It is called only once the key
	// and the link are authorised, so nobody else's input is ever read;
	// its error is returned as is. nil means the defaults.
	Read func() (TokenRequest, error)
}

// Issued is a token handed out, and to whom. ClientID is set as soon as
// the key is authorised, also when an error follows.
type Issued struct {
	Token
	ClientID   int64
	ClientName string
	// RecordUse is true for the client's first token for the link in a
	// UsageWindow: only that use needs recording (usage.Recorder).
	RecordUse bool
}

// UsageWindow is how often a client's use of a link is recorded: once per
// hour and UTC day at most, so the writes do not grow with traffic or with
// the number of links. "Last used" is accurate to this window.
const UsageWindow = time.Hour

// useDue reports whether clientID's use at now must be recorded, given the
// last recorded one (by usedBy at usedAt).
func useDue(clientID, usedBy int64, usedAt, now time.Time) bool {
	if usedBy != clientID || usedAt.IsZero() || now.Sub(usedAt) >= UsageWindow || now.Before(usedAt) {
		return true
	}
	y1, m1, d1 := usedAt.UTC().Date()
	y2, m2, d2 := now.UTC().Date()
	return y1 != y2 || m1 != m2 || d1 != d2 // a new day's activity entry
}

// IssueToken authorises the API key (it must hold tokens:issue) and the
// link, and returns a valid access token. While the token cache is live,
// a token that needs no refresh costs no database round trip: the key and
// the link's sealed access token come from memory. A miss costs one round
// trip: the link alone (one primary-key lookup) when the key is cached,
// else the key and the link together; what was read is cached. Refreshing
// reads the whole row under its lock, as AccessToken does.
func (s *Service) IssueToken(ctx context.Context, in IssueRequest) (Issued, error) {
	var out Issued
	id, idOK := db.ParseLinkID(in.LinkID) // canonical: the edge lower-cases ids
	client, known := tokencache.Client{}, false
	if s.cache != nil {
		client, known = s.cache.Client(in.KeyHash)
	}
	var row *db.Link // the whole link, when it was read
	var usedBy int64 // the last recorded use of the link: by whom, when
	var usedAt time.Time
	if !known {
		var gen uint64
		if s.cache != nil {
			gen = s.cache.Gen()
		}
		c, l, err := s.store.AuthenticateWithLink(ctx, in.KeyHash[:], in.LinkID)
		if errors.Is(err, db.ErrUnknownKey) {
			return out, apperr.New(apperr.Unauthenticated, err)
		}
		if err != nil {
			return out, translate(err)
		}
		client = tokencache.Client{ID: c.ID, Name: c.Name, Scopes: c.Scopes}
		// An old key after a rotation is never cached: its overlap ends
		// without a change notification.
		if s.cache != nil && !c.UsedOldKey {
			s.cache.PutClient(gen, in.KeyHash, client)
			if l != nil && idOK {
				s.cache.PutLink(gen, id, l.Status, entryOf(l))
			}
		}
		row = l
		if l != nil {
			usedBy, usedAt = l.UsedBy, l.UsedAt
		}
	}
	if in.Admit != nil {
		if err := in.Admit(client.ID); err != nil {
			return out, err
		}
	}
	if !slices.Contains(client.Scopes, apikey.ScopeTokensIssue) {
		return out, apperr.Newf(apperr.InsufficientScope, "This API key does not hold the scope "+apikey.ScopeTokensIssue+".",
			errors.New("api client "+client.Name+" lacks "+apikey.ScopeTokensIssue))
	}
	out.ClientID, out.ClientName = client.ID, client.Name
	var entry tokencache.Entry
	cached := false // entry holds an active link's token
	if known {
		if !idOK {
			return out, errNoSuchLink()
		}
		if entry, cached = s.cache.Link(id); !cached {
			gen := s.cache.Gen()
			t, err := s.store.GetLinkToken(ctx, id)
			if errors.Is(err, db.ErrNotFound) {
				return out, errNoSuchLink()
			}
			if err != nil {
				return out, translate(err)
			}
			entry = tokencache.Entry{Region: t.Region, GrantedScopes: t.GrantedScopes, AccessTokenSealed: t.AccessTokenSealed,
				AccessTokenExpiresAt: t.AccessTokenExpiresAt, TokenKeyID: t.TokenKeyID, UsedBy: t.UsedBy, UsedAt: t.UsedAt}
			s.cache.PutLink(gen, id, t.Status, entry)
			cached = t.Status == db.StatusActive // anything else takes the full path, which says why
		}
		usedBy, usedAt = entry.UsedBy, entry.UsedAt
	} else if row == nil {
		return out, errNoSuchLink()
	}
	var req TokenRequest
	if in.Read != nil {
		var err error
		if req, err = in.Read(); err != nil {
			return out, err
		}
	}
	if row == nil {
		// An active link's token, from the cache or just read: serve it
		// while valid; anything else (refresh due, forced, a scope missing,
		// not active) takes the full path.
		if cached && !req.ForceRefresh && entry.AccessTokenExpiresAt.After(s.now().Add(s.margin)) && hasScopes(entry.GrantedScopes, req.Scopes) {
			tok, err := s.cachedToken(in.LinkID, &entry)
			if err != nil {
				s.forget(in.LinkID)
				return out, translate(err)
			}
			out.Token = tok
			s.noteUse(&out, id, usedBy, usedAt)
			return out, nil
		}
		l, err := s.store.GetLink(ctx, in.LinkID)
		if err != nil {
			return out, translate(err)
		}
		row = l
	}
	tok, err := s.accessToken(ctx, row, req)
	if err != nil {
		s.forget(in.LinkID) // revoked, flagged or failing: nothing cached about it stays
		return out, translate(err)
	}
	out.Token = *tok
	s.noteUse(&out, id, usedBy, usedAt)
	return out, nil
}

// noteUse decides whether the token just issued is a use to record, and
// marks the cached link so the next ones in the window are not.
func (s *Service) noteUse(out *Issued, id [16]byte, usedBy int64, usedAt time.Time) {
	now := s.now()
	if !useDue(out.ClientID, usedBy, usedAt, now) {
		return
	}
	out.RecordUse = true
	if s.cache != nil {
		s.cache.MarkUsed(id, out.ClientID, now)
	}
}

func errNoSuchLink() error { return apperr.Newf(apperr.NotFound, "No such link.", db.ErrNotFound) }

// entryOf is what the token cache keeps of a link.
func entryOf(l *db.Link) tokencache.Entry {
	return tokencache.Entry{Region: l.Region, GrantedScopes: l.GrantedScopes, AccessTokenSealed: l.AccessTokenSealed,
		AccessTokenExpiresAt: l.AccessTokenExpiresAt, TokenKeyID: l.TokenKeyID, UsedBy: l.UsedBy, UsedAt: l.UsedAt}
}

func hasScopes(granted, want []string) bool {
	for _, sc := range want {
		if !slices.Contains(granted, sc) {
			return false
		}
	}
	return true
}

// cachedToken opens a cached entry's access token.
func (s *Service) cachedToken(linkID string, e *tokencache.Entry) (Token, error) {
	at, err := s.open(linkID, e.TokenKeyID, "access_token", e.AccessTokenSealed)
	if err != nil {
		return Token{}, err
	}
	base, _ := s.fleet.RegionBaseURL(e.Region)
	return Token{AccessToken: at, ExpiresAt: e.AccessTokenExpiresAt, Scopes: e.GrantedScopes, Region: e.Region,
		FleetAPIBaseURL: base, LinkID: linkID}, nil
}

// Erased drops what this instance holds about links that no longer exist
// (an owner's erase), like a revoke does; the database's change
// notification tells the other instances.
func (s *Service) Erased(linkIDs []string) {
	for _, id := range linkIDs {
		s.forget(id)
	}
}

// forget drops a link this instance changed from the token cache (the
// database's change notification tells the other instances) and from the
// vehicle lists.
func (s *Service) forget(linkID string) {
	s.vehicles.forget(linkID)
	if s.cache != nil {
		s.cache.InvalidateLink(linkID)
	}
}
