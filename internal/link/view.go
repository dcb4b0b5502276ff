package link

import (
	"time"

	"teslalink/internal/db"
)

// View is a link as the team's backends see it, in API responses and in
// webhook payloads alike: never any token.
type View struct {
	ID              string     `json:"id"`
	OwnerSub        string     `json:"owner_sub"`
	OwnerEmail      string     `json:"owner_email"`
	Status          string     `json:"status"`
	StatusReason    string     `json:"status_reason"`
	StatusChangedAt time.Time  `json:"status_changed_at"`
	Region          string     `json:"region"`
	GrantedScopes   []string   `json:"granted_scopes"`
	RequestedScopes []string   `json:"requested_scopes"`
	LinkedAt        time.Time  `json:"linked_at"`
	RefreshedAt     *time.Time `json:"refreshed_at"`
	LastUsedAt      *time.Time `json:"last_used_at"`
	RevokedAt       *time.Time `json:"revoked_at"`
	ExternalRef     *string    `json:"external_ref"` // the team's user id, set by a claim
	APIClient       *string    `json:"api_client"`   // the API client whose link session was claimed
}

// ViewOf shows a link; lastUsed is zero when unknown or never.
func ViewOf(l *db.Link, lastUsed time.Time) View {
	nonNil := func(s []string) []string {
		if s == nil {
			return []string{}
		}
		return s
	}
	return View{ID: l.ID, OwnerSub: l.OwnerSub, OwnerEmail: l.OwnerEmail, Status: l.Status, StatusReason: l.StatusReason,
		StatusChangedAt: l.StatusChangedAt.UTC(), Region: l.Region, GrantedScopes: nonNil(l.GrantedScopes),
		RequestedScopes: nonNil(l.RequestedScopes), LinkedAt: l.LinkedAt.UTC(), RefreshedAt: timePtr(l.RefreshedAt),
		LastUsedAt: timePtr(lastUsed), RevokedAt: timePtr(l.RevokedAt), ExternalRef: strPtr(l.ExternalRef),
		APIClient: strPtr(l.APIClient)}
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
