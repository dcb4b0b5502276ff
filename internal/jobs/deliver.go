package jobs

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"

	"teslalink/internal/db"
)

type deliveryArgs struct {
	DeliveryID int64 `json:"delivery_id"`
}

func (deliveryArgs) Kind() string { return "webhook_delivery" }

func (deliveryArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: queueWebhooks} }

// deliveryWorker sends one event to one endpoint, records the attempt, and
// fails (so River retries, on our schedule) until the endpoint answers 2xx.
type deliveryWorker struct {
	river.WorkerDefaults[deliveryArgs]
	r *Runner
}

// orderWait bounds how long a delivery sleeps at a time while an older one
// about the same link is still pending.
const orderWait = time.Minute

func (w *deliveryWorker) Work(ctx context.Context, job *river.Job[deliveryArgs]) error {
	store := w.r.cfg.Store
	d, err := store.GetWebhookDelivery(ctx, job.Args.DeliveryID)
	if errors.Is(err, db.ErrNotFound) {
		return river.JobCancel(err) // its event was cleaned up
	}
	if err != nil {
		return err
	}
	if d.Status != db.DeliveryPending {
		return nil // delivered, given up, or its endpoint removed
	}
	// A link's events reach an endpoint in order: wait while an older one
	// is still being retried (it succeeds or gives up eventually).
	waiting, next, err := store.EarlierPendingDelivery(ctx, d)
	if err != nil {
		return err
	}
	if waiting {
		return river.JobSnooze(min(max(time.Until(next), time.Second), orderWait))
	}
	res := w.r.cfg.Sender.Send(ctx, d.URL, d.Secret, d.MsgID, d.Body)
	ok := res.Err == nil
	final := !ok && job.Attempt >= job.MaxAttempts
	var nextAt time.Time
	if !ok && !final {
		nextAt = time.Now().Add(w.backoff(job.Attempt))
	}
	a := db.WebhookAttempt{At: res.At, StatusCode: res.StatusCode, Latency: res.Latency}
	if res.Err != nil {
		a.Error = res.Err.Error()
	}
	if err := store.RecordWebhookAttempt(context.WithoutCancel(ctx), d.ID, a, ok, final, nextAt); err != nil {
		return err
	}
	if on := w.r.cfg.OnDelivery; on != nil {
		switch {
		case ok:
			on("ok")
		case final:
			on("gave_up")
		default:
			on("failed")
		}
	}
	if ok {
		return nil
	}
	w.r.log.Warn("webhook delivery failed", "delivery_id", d.ID, "endpoint_id", d.EndpointID, "event", d.Type,
		"attempt", job.Attempt, "status", res.StatusCode, "error", a.Error, "final", final)
	return res.Err
}

// NextRetry follows the retry schedule, with jitter.
func (w *deliveryWorker) NextRetry(job *river.Job[deliveryArgs]) time.Time {
	return time.Now().Add(w.backoff(job.Attempt))
}

// backoff is the wait after the attempt-th attempt failed: the schedule's
// entry with ±20% jitter.
func (w *deliveryWorker) backoff(attempt int) time.Duration {
	s := w.r.cfg.RetrySchedule
	if len(s) == 0 {
		return time.Second
	}
	d := s[min(max(attempt-1, 0), len(s)-1)]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func (w *deliveryWorker) Timeout(*river.Job[deliveryArgs]) time.Duration { return time.Minute }
