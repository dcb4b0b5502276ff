package db

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CountLinksByStatus counts links per status: one aggregate over the
// status index, meant for a gauge refreshed now and then, not per scrape.
func (s *Store) CountLinksByStatus(ctx context.Context) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, "SELECT status, count(*) FROM links GROUP BY status")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, err
		}
		out[status] = n
	}
	return out, rows.Err()
}

// CountPendingWebhookDeliveries is the webhook queue's depth: deliveries
// not yet accepted by their endpoint and not given up (a partial index
// covers them).
func (s *Store) CountPendingWebhookDeliveries(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM webhook_deliveries WHERE status = $1", DeliveryPending).Scan(&n)
	return n, err
}

// PoolStat returns the connection pool's statistics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }
