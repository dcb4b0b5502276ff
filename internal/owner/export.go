package owner

import (
	"context"
	"time"
)

// ExportFormat names the layout of Export, for whoever reads the file later.
const ExportFormat = "teslalink-owner-export/1"

// Export is everything stored about one owner, without any token: the file
// behind "Download my data".
type Export struct {
	Format     string           `json:"format"`
	ExportedAt time.Time        `json:"exported_at"`
	Owner      ExportOwner      `json:"owner"`
	Links      []ExportLink     `json:"links"`
	Activity   []ExportActivity `json:"activity"`
	APIClients []ExportClient   `json:"api_clients"`
}

// ExportOwner is the owner row.
type ExportOwner struct {
	Sub       string    `json:"tesla_account_id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ExportLink is one link, without its sealed tokens.
type ExportLink struct {
	ID                   string     `json:"id"`
	Status               string     `json:"status"`
	StatusReason         string     `json:"status_reason"`
	StatusChangedAt      time.Time  `json:"status_changed_at"`
	Region               string     `json:"region"`
	RequestedScopes      []string   `json:"requested_scopes"`
	GrantedScopes        []string   `json:"granted_scopes"`
	LinkedAt             time.Time  `json:"linked_at"`
	RefreshedAt          *time.Time `json:"refreshed_at"`
	AccessTokenExpiresAt *time.Time `json:"access_token_expires_at"`
	RevokedAt            *time.Time `json:"revoked_at"`
	HoldsTokens          bool       `json:"holds_tokens"`
}

// ExportActivity is one activity entry.
type ExportActivity struct {
	At        time.Time      `json:"at"`
	LinkID    string         `json:"link_id,omitempty"`
	Action    string         `json:"action"`
	Actor     string         `json:"actor"`
	APIClient string         `json:"api_client,omitempty"`
	Day       string         `json:"day,omitempty"`
	Detail    map[string]any `json:"detail"`
}

// ExportClient is one API client that obtained a token for a link.
type ExportClient struct {
	Name       string    `json:"name"`
	LinkID     string    `json:"link_id"`
	LastUsedAt time.Time `json:"last_used_at"` // accurate to the hour (link.UsageWindow)
}

// allActivity bounds the export's activity (retention keeps far fewer).
const allActivity = 1_000_000

// Export gathers everything stored about the owner.
func (s *Service) Export(ctx context.Context, ownerID int64) (*Export, error) {
	o, err := s.store.GetOwner(ctx, ownerID)
	if err != nil {
		return nil, err
	}
	out := &Export{Format: ExportFormat, ExportedAt: s.now().UTC(), Links: []ExportLink{}, Activity: []ExportActivity{},
		APIClients: []ExportClient{},
		Owner:      ExportOwner{Sub: o.Sub, Email: o.Email, Name: o.Name, CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC()}}
	links, err := s.store.OwnerLinks(ctx, ownerID)
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		out.Links = append(out.Links, ExportLink{ID: l.ID, Status: l.Status, StatusReason: l.StatusReason,
			StatusChangedAt: l.StatusChangedAt.UTC(), Region: l.Region, RequestedScopes: nonNil(l.RequestedScopes),
			GrantedScopes: nonNil(l.GrantedScopes), LinkedAt: l.LinkedAt.UTC(), RefreshedAt: timePtr(l.RefreshedAt),
			AccessTokenExpiresAt: timePtr(l.AccessTokenExpiresAt), RevokedAt: timePtr(l.RevokedAt),
			HoldsTokens: l.RefreshTokenSealed != nil || l.AccessTokenSealed != nil})
		usage, err := s.store.LinkUsage(ctx, l.ID)
		if err != nil {
			return nil, err
		}
		for _, u := range usage {
			out.APIClients = append(out.APIClients, ExportClient{Name: u.ClientName, LinkID: l.ID, LastUsedAt: u.LastUsedAt.UTC()})
		}
	}
	evs, _, err := s.store.OwnerActivity(ctx, ownerID, 0, allActivity)
	if err != nil {
		return nil, err
	}
	for _, ev := range evs {
		e := ExportActivity{At: ev.At.UTC(), LinkID: ev.LinkID, Action: ev.Action, Actor: ev.Actor, APIClient: ev.ClientName, Detail: ev.Detail}
		if !ev.Day.IsZero() {
			e.Day = ev.Day.Format(time.DateOnly)
		}
		if e.Detail == nil {
			e.Detail = map[string]any{}
		}
		out.Activity = append(out.Activity, e)
	}
	return out, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
