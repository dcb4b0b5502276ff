// Package owner serves an owner's rights over their own data: the activity
// of their link, a machine-readable copy of everything stored about them
// (GDPR Art. 20), and erasing all of it (GDPR Art. 17). It also deletes
// activity older than the retention period.
package owner

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/link"
)

// Retention is how long activity is kept: a number of calendar months, or
// a duration when Months is zero.
type Retention struct {
	Months   int
	Duration time.Duration
}

// DefaultRetention keeps activity for 13 months.
var DefaultRetention = Retention{Months: 13}

// Cutoff is the oldest time kept at now.
func (r Retention) Cutoff(now time.Time) time.Time {
	if r.Months > 0 {
		return now.AddDate(0, -r.Months, 0)
	}
	return now.Add(-r.Duration)
}

func (r Retention) String() string {
	if r.Months > 0 {
		return strconv.Itoa(r.Months) + "mo"
	}
	return r.Duration.String()
}

// ParseRetention reads "13mo" (calendar months), "400d" (days) or a Go
// duration such as "2160h".
func ParseRetention(v string) (Retention, error) {
	bad := errors.New("must be a positive number of months (13mo), days (400d) or a duration (2160h)")
	switch {
	case strings.HasSuffix(v, "mo"):
		n, err := strconv.Atoi(strings.TrimSuffix(v, "mo"))
		if err != nil || n < 1 || n > 1200 {
			return Retention{}, bad
		}
		return Retention{Months: n}, nil
	case strings.HasSuffix(v, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(v, "d"))
		if err != nil || n < 1 || n > 36500 {
			return Retention{}, bad
		}
		return Retention{Duration: time.Duration(n) * 24 * time.Hour}, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return Retention{}, bad
	}
	return Retention{Duration: d}, nil
}

// PageSize is how many activity entries one page shows.
const PageSize = 20

// Config holds the Service's dependencies.
type Config struct {
	Store *db.Store
	// Links drops an erased owner's links from this instance's caches; nil
	// in tests of this package alone.
	Links     *link.Service
	Retention Retention // activity older than this is deleted; zero: DefaultRetention
	Logger    *slog.Logger
	Now       func() time.Time
}

// Service implements the owner's data rights.
type Service struct {
	store     *db.Store
	links     *link.Service
	retention Retention
	log       *slog.Logger
	now       func() time.Time
}

// New builds a Service.
func New(cfg Config) *Service {
	s := &Service{store: cfg.Store, links: cfg.Links, retention: cfg.Retention, log: cfg.Logger, now: cfg.Now}
	if s.retention == (Retention{}) {
		s.retention = DefaultRetention
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// ActivityPage is one page of an owner's activity, newest first.
type ActivityPage struct {
	Entries []db.AuditEvent
	Page    int  // 1-based
	More    bool // an older page exists
}

// Activity returns page (1-based) of the owner's activity.
func (s *Service) Activity(ctx context.Context, ownerID int64, page int) (*ActivityPage, error) {
	if page < 1 {
		page = 1
	}
	evs, more, err := s.store.OwnerActivity(ctx, ownerID, (page-1)*PageSize, PageSize)
	if err != nil {
		return nil, err
	}
	return &ActivityPage{Entries: evs, Page: page, More: more}, nil
}

// Erase deletes the owner and everything stored about them.
func (s *Service) Erase(ctx context.Context, ownerID int64, actor string) (*db.Erased, error) {
	erased, err := s.store.EraseOwner(ctx, ownerID)
	if err != nil {
		return nil, err
	}
	// Through the link service, which owns the token cache and the
	// vehicle lists (the database's change notification tells the other
	// instances).
	if s.links != nil {
		s.links.Erased(erased.LinkIDs)
	}
	// The owner's sub is personal data: the log names only the links.
	s.log.InfoContext(ctx, "owner erased", "by", actor, "link_ids", erased.LinkIDs, "tokens", erased.Tokens,
		"sessions", erased.Sessions, "activity", erased.Activity)
	return erased, nil
}

// EraseBySub is Erase for the owner with this Tesla subject.
func (s *Service) EraseBySub(ctx context.Context, sub, actor string) (*db.Erased, error) {
	o, err := s.store.GetOwnerBySub(ctx, sub)
	if err != nil {
		return nil, err
	}
	return s.Erase(ctx, o.ID, actor)
}

// CleanupActivity deletes activity older than the retention period.
func (s *Service) CleanupActivity(ctx context.Context) (int64, error) {
	return s.store.DeleteActivityBefore(ctx, s.retention.Cutoff(s.now()), 5000)
}
