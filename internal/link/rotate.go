package link

import (
	"context"
	"errors"

	"teslalink/internal/db"
	"teslalink/internal/seal"
)

// RotateResult counts what RotateKeys did.
type RotateResult struct {
	Resealed int // re-sealed with the primary key
	Current  int // already on the primary key afterwards
	Failed   int // could not be opened with any configured key (left as they are)
	// Failures names the first failed links (at most maxRotateFailures).
	Failures []RotateFailure
}

// RotateFailure is one link RotateKeys could not re-seal.
type RotateFailure struct {
	LinkID string
	KeyID  string // the key id its tokens carry
	// MissingKey is true when that key is not configured; otherwise the
	// ciphertext did not open under it (damaged data or different key material).
	MissingKey bool
}

const maxRotateFailures = 100

// RotateKeys re-seals every stored token with the primary key, batch by
// batch, each link under its row lock so it runs safely while serving.
// progress is called after each batch with the running count.
func (s *Service) RotateKeys(ctx context.Context, batch int, progress func(done int)) (RotateResult, error) {
	var res RotateResult
	if batch <= 0 {
		batch = 500
	}
	primary := s.keys.PrimaryID()
	after := ""
	for {
		ids, err := s.store.LinksSealedWithOtherKeys(ctx, primary, after, batch)
		if err != nil {
			return res, err
		}
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			err := s.store.ResealLink(ctx, id, func(l *db.Link) (*db.SealedTokens, error) {
				if l.TokenKeyID == primary || l.RefreshTokenSealed == nil {
					return nil, nil
				}
				rt, err := s.openToken(l, "refresh_token")
				if err != nil {
					return nil, err
				}
				at, err := s.openToken(l, "access_token")
				if err != nil {
					return nil, err
				}
				sealed, err := s.sealTokens(l.ID, rt, at)
				return &sealed, err
			})
			if err != nil {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				s.log.Error("cannot re-seal link", "link_id", id, "error", err)
				res.Failed++
				if len(res.Failures) < maxRotateFailures {
					f := RotateFailure{LinkID: id, MissingKey: errors.Is(err, seal.ErrUnknownKey)}
					if l, gerr := s.store.GetLink(ctx, id); gerr == nil {
						f.KeyID = l.TokenKeyID
					}
					res.Failures = append(res.Failures, f)
				}
				continue
			}
			res.Resealed++
		}
		after = ids[len(ids)-1]
		if progress != nil {
			progress(res.Resealed)
		}
	}
	n, err := s.store.CountLinksSealedWith(ctx, primary)
	if err != nil {
		return res, err
	}
	res.Current = n - res.Resealed
	return res, nil
}
