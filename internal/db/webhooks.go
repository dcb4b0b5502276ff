package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// WebhookEndpoint is a URL the team's backends receive events at.
type WebhookEndpoint struct {
	ID                  int64
	URL                 string
	Secret              string   // "whsec_" + base64; signs every request
	EventTypes          []string // empty: every event
	CreatedAt           time.Time
	ConsecutiveFailures int
	FailingSince        time.Time // zero when the last attempt succeeded
	LastSuccessAt       time.Time
	LastFailureAt       time.Time
}

const endpointColumns = `id, url, secret, event_types, created_at, consecutive_failures, failing_since, last_success_at, last_failure_at`

func scanEndpoint(row pgx.Row) (WebhookEndpoint, error) {
	var e WebhookEndpoint
	var failing, success, failure *time.Time
	err := row.Scan(&e.ID, &e.URL, &e.Secret, &e.EventTypes, &e.CreatedAt, &e.ConsecutiveFailures, &failing, &success, &failure)
	e.FailingSince, e.LastSuccessAt, e.LastFailureAt = deref(failing), deref(success), deref(failure)
	return e, err
}

// CreateWebhookEndpoint registers an endpoint.
func (s *Store) CreateWebhookEndpoint(ctx context.Context, url, secret string, types []string) (*WebhookEndpoint, error) {
	e, err := scanEndpoint(s.pool.QueryRow(ctx, `INSERT INTO webhook_endpoints (url, secret, event_types)
		VALUES ($1, $2, coalesce($3, '{}'::text[])) RETURNING `+endpointColumns, url, secret, types))
	if err != nil {
		return nil, fmt.Errorf("create webhook endpoint: %w", err)
	}
	return &e, nil
}

// ListWebhookEndpoints lists the endpoints not removed, oldest first.
func (s *Store) ListWebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE removed_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookEndpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return nil, fmt.Errorf("list webhook endpoints: %w", err)
	}
	return out, nil
}

// RemoveWebhookEndpoint stops sending to an endpoint: it gets no new
// events, and its pending deliveries are cancelled. Its history is kept.
func (s *Store) RemoveWebhookEndpoint(ctx context.Context, id int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET removed_at = now() WHERE id = $1 AND removed_at IS NULL`, id)
		if err != nil {
			return fmt.Errorf("remove webhook endpoint: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'cancelled', next_attempt_at = NULL
			WHERE endpoint_id = $1 AND status = 'pending'`, id); err != nil {
			return fmt.Errorf("cancel deliveries: %w", err)
		}
		return nil
	})
}

// EventRecord is a link event ready to send: Body is the exact JSON signed.
type EventRecord struct {
	MsgID  string
	Type   string
	LinkID string
	Body   []byte
}

// InsertEvent writes an event in tx and one pending delivery for each
// endpoint that subscribes to its type, and returns the deliveries' ids.
func InsertEvent(ctx context.Context, tx pgx.Tx, ev EventRecord) ([]int64, error) {
	var linkID *string
	if ev.LinkID != "" {
		linkID = &ev.LinkID
	}
	rows, err := tx.Query(ctx, `WITH e AS (
			INSERT INTO webhook_events (msg_id, type, link_id, body) VALUES ($1, $2, $3, $4) RETURNING id)
		INSERT INTO webhook_deliveries (event_id, endpoint_id, link_id)
		SELECT e.id, w.id, $3::uuid FROM e, webhook_endpoints w
		WHERE w.removed_at IS NULL AND (w.event_types = '{}' OR $2 = ANY (w.event_types))
		ORDER BY w.id
		RETURNING id`, ev.MsgID, ev.Type, linkID, string(ev.Body))
	if err != nil {
		return nil, fmt.Errorf("insert event: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("insert event: %w", err)
	}
	return ids, nil
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySucceeded = "succeeded"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// WebhookDelivery is one event on its way to one endpoint.
type WebhookDelivery struct {
	ID         int64
	Status     string
	Attempts   int
	EndpointID int64
	URL        string
	Secret     string
	MsgID      string
	Type       string
	LinkID     string
	Body       []byte
	CreatedAt  time.Time
}

// GetWebhookDelivery reads a delivery with its event and endpoint.
func (s *Store) GetWebhookDelivery(ctx context.Context, id int64) (*WebhookDelivery, error) {
	var d WebhookDelivery
	var body string
	err := s.pool.QueryRow(ctx, `SELECT d.id, d.status, d.attempts, w.id, w.url, w.secret, e.msg_id, e.type,
			coalesce(e.link_id::text, ''), e.body, e.created_at
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id
		WHERE d.id = $1`, id).Scan(&d.ID, &d.Status, &d.Attempts, &d.EndpointID, &d.URL, &d.Secret, &d.MsgID, &d.Type,
		&d.LinkID, &body, &d.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("get webhook delivery: %w", notFound(err))
	}
	d.Body = []byte(body)
	return &d, nil
}

// EarlierPendingDelivery reports whether an older delivery to the same
// endpoint about the same link is still pending (so this one waits, to keep
// a link's events in order), and when that one is tried next (zero: now).
func (s *Store) EarlierPendingDelivery(ctx context.Context, d *WebhookDelivery) (bool, time.Time, error) {
	if d.LinkID == "" {
		return false, time.Time{}, nil
	}
	var next *time.Time
	err := s.pool.QueryRow(ctx, `SELECT next_attempt_at FROM webhook_deliveries
		WHERE endpoint_id = $1 AND link_id = $2 AND id < $3 AND status = 'pending' ORDER BY id LIMIT 1`,
		d.EndpointID, d.LinkID, d.ID).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, time.Time{}, nil
	}
	if err != nil {
		return false, time.Time{}, fmt.Errorf("check earlier deliveries: %w", err)
	}
	return true, deref(next), nil
}

// WebhookAttempt is the outcome of one delivery attempt.
type WebhookAttempt struct {
	At         time.Time
	StatusCode int // 0: no HTTP response
	Latency    time.Duration
	Error      string
}

// RecordWebhookAttempt stores an attempt and its consequences in one
// transaction: the delivery's status (succeeded; failed when final; else
// pending until next) and the endpoint's health.
func (s *Store) RecordWebhookAttempt(ctx context.Context, deliveryID int64, a WebhookAttempt, ok, final bool, next time.Time) error {
	status := DeliveryPending
	switch {
	case ok:
		status = DeliverySucceeded
	case final:
		status = DeliveryFailed
	}
	var code *int
	if a.StatusCode != 0 {
		code = &a.StatusCode
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var endpointID int64
		err := tx.QueryRow(ctx, `UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = $2,
				status = CASE WHEN status = 'pending' THEN $3 ELSE status END, next_attempt_at = $4
			WHERE id = $1 RETURNING endpoint_id`, deliveryID, a.At, status, nullTime(next)).Scan(&endpointID)
		if err != nil {
			return fmt.Errorf("record attempt: %w", notFound(err))
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status_code, latency_ms, error)
			VALUES ($1, $2, $3, $4, $5)`, deliveryID, a.At, code, a.Latency.Milliseconds(), a.Error); err != nil {
			return fmt.Errorf("record attempt: %w", err)
		}
		if ok {
			_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET consecutive_failures = 0, failing_since = NULL,
				last_success_at = $2 WHERE id = $1`, endpointID, a.At)
		} else {
			_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1,
				failing_since = coalesce(failing_since, $2), last_failure_at = $2 WHERE id = $1`, endpointID, a.At)
		}
		if err != nil {
			return fmt.Errorf("record endpoint health: %w", err)
		}
		return nil
	})
}

// DeliveryRow is a delivery as `web webhook deliveries` lists it.
type DeliveryRow struct {
	ID          int64
	EndpointID  int64
	URL         string
	MsgID       string
	Type        string
	LinkID      string
	Status      string
	Attempts    int
	CreatedAt   time.Time
	NextAttempt time.Time // zero when none is planned
	Last        *WebhookAttempt
}

// ListWebhookDeliveries lists the newest deliveries first, with their last
// attempt; failedOnly keeps those that gave up or whose last attempt failed.
func (s *Store) ListWebhookDeliveries(ctx context.Context, failedOnly bool, limit int) ([]DeliveryRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT d.id, w.id, w.url, e.msg_id, e.type, coalesce(e.link_id::text, ''), d.status,
			d.attempts, d.created_at, d.next_attempt_at, a.at, a.status_code, a.latency_ms, a.error
		FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id JOIN webhook_endpoints w ON w.id = d.endpoint_id
		LEFT JOIN LATERAL (SELECT at, status_code, latency_ms, error FROM webhook_attempts
			WHERE delivery_id = d.id ORDER BY id DESC LIMIT 1) a ON true
		WHERE NOT $1 OR d.status = 'failed' OR (d.status = 'pending' AND d.attempts > 0)
		ORDER BY d.id DESC LIMIT $2`, failedOnly, limit)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DeliveryRow, error) {
		var d DeliveryRow
		var next, at *time.Time
		var code, latency *int
		var msg *string
		err := r.Scan(&d.ID, &d.EndpointID, &d.URL, &d.MsgID, &d.Type, &d.LinkID, &d.Status, &d.Attempts, &d.CreatedAt,
			&next, &at, &code, &latency, &msg)
		d.NextAttempt = deref(next)
		if at != nil {
			a := WebhookAttempt{At: *at}
			if code != nil {
				a.StatusCode = *code
			}
			if latency != nil {
				a.Latency = time.Duration(*latency) * time.Millisecond
			}
			if msg != nil {
				a.Error = *msg
			}
			d.Last = &a
		}
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// WebhookAttempts lists a delivery's attempts, oldest first.
func (s *Store) WebhookAttempts(ctx context.Context, deliveryID int64) ([]WebhookAttempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, coalesce(status_code, 0), latency_ms, error FROM webhook_attempts
		WHERE delivery_id = $1 ORDER BY id`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("list attempts: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (WebhookAttempt, error) {
		var a WebhookAttempt
		var ms int
		err := r.Scan(&a.At, &a.StatusCode, &ms, &a.Error)
		a.Latency = time.Duration(ms) * time.Millisecond
		return a, err
	})
}

// LinkEventTypes lists the types of a link's recorded events, oldest first.
func (s *Store) LinkEventTypes(ctx context.Context, linkID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT type FROM webhook_events WHERE link_id = $1 ORDER BY id`, linkID)
	if err != nil {
		return nil, fmt.Errorf("list link events: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
