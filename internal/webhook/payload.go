package webhook

import (
	"encoding/json"
	"time"

	"teslalink/internal/db"
	"teslalink/internal/link"
)

// Payload is the body of every webhook request: the event, and the link
// as the API shows it.
type Payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	// RevokedBy says who revoked the link ("owner" or "team"); link.revoked only.
	RevokedBy string    `json:"revoked_by,omitempty"`
	Data      link.View `json:"data"`
}

// Body renders an event's payload. It carries the link's public fields
// only: the view never holds a token.
func Body(ev db.LinkEvent) ([]byte, error) {
	if ev.Type == db.EventOwnerErased {
		return json.Marshal(erasedPayload{Type: ev.Type, Timestamp: ev.At.UTC(), Data: erasedData{LinkID: ev.Link.ID,
			ExternalRef: nilIfEmpty(ev.Link.ExternalRef)}})
	}
	v := link.ViewOf(ev.Link, time.Time{})
	v.LastUsedAt = nil // attribution is batched in memory; the API has the current value
	return json.Marshal(Payload{Type: ev.Type, Timestamp: ev.At.UTC(), RevokedBy: ev.RevokedBy, Data: v})
}

// erasedPayload is owner.erased: nothing about the owner, only which link
// was erased and the team's own reference for it.
type erasedPayload struct {
	Type      string     `json:"type"`
	Timestamp time.Time  `json:"timestamp"`
	Data      erasedData `json:"data"`
}

type erasedData struct {
	LinkID      string  `json:"link_id"`
	ExternalRef *string `json:"external_ref"` // null when the link was never claimed
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
