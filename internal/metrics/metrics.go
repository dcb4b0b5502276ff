// Package metrics collects teslalink's Prometheus metrics: token requests
// by outcome and API client, the token cache, refreshes at Tesla with their
// latency, links by status, the database pool and the Go runtime. It is
// served on its own listener (METRICS_ADDR), never on the public port.
//
// The token endpoint is the hot path: recording a request there is a map
// lookup in an immutable map and an atomic add, with no allocation once the
// client's counter exists.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"teslalink/internal/db"
	"teslalink/internal/ratelimit"
)

// OutcomeOK is the outcome label of a token request that got a token;
// failures carry their problem type (e.g. "reauth-required").
const OutcomeOK = "ok"

// unknownClient labels requests whose API key was not accepted.
const unknownClient = "unknown"

// CacheStats reports the token cache's lookups (tokencache.Cache).
type CacheStats interface {
	Stats() (hits, misses uint64)
}

// Metrics is one instance's registry. It is safe for concurrent use.
type Metrics struct {
	reg     *prometheus.Registry
	store   *db.Store
	log     *slog.Logger
	tokens  *prometheus.CounterVec
	refresh *prometheus.HistogramVec
	links   *prometheus.GaugeVec
	// webhooks counts delivery attempts by result; queue is the number of
	// deliveries still pending (counted with the links).
	webhooks *prometheus.CounterVec
	queue    prometheus.Gauge

	// byClient maps an API client's name to its token counters. It is
	// replaced, never changed, so readers need no lock.
	byClient atomic.Pointer[map[string]*clientCounters]
	mu       sync.Mutex // serialises writers of byClient
}

// clientCounters are one API client's token request counters, resolved
// once: ok is the hot one; failures are rarer and looked up by outcome.
type clientCounters struct {
	ok     prometheus.Counter
	failed atomic.Pointer[map[string]prometheus.Counter]
}

// New builds the registry with the Go runtime and process collectors, the
// database pool of store and, when cache is not nil, the token cache.
func New(store *db.Store, cache CacheStats, logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{reg: prometheus.NewRegistry(), store: store, log: logger}
	empty := map[string]*clientCounters{}
	m.byClient.Store(&empty)
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teslalink_token_requests_total",
		Help: "Token requests (POST /api/v1/links/{id}/token) by API client and outcome: ok, or the problem type.",
	}, []string{"client", "outcome"})
	m.refresh = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "teslalink_tesla_refresh_duration_seconds",
		Help: "Refresh calls to Tesla's token endpoint (retries included) by result: ok, reauth, config, transient, invalid, error.",
		// Tesla usually answers in well under a second; retries and timeouts reach 20 s.
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20},
	}, []string{"result"})
	m.links = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "teslalink_links",
		Help: "Links by status, counted every LinkCountInterval (the same value on every instance).",
	}, []string{"status"})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "teslalink_webhook_deliveries_total",
		Help: "Webhook delivery attempts by result: ok (2xx), failed (will be retried), gave_up (retries ran out; the event is kept).",
	}, []string{"result"})
	m.queue = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "teslalink_webhook_queue_depth",
		Help: "Webhook deliveries not yet accepted by their endpoint, counted every LinkCountInterval (the same value on every instance).",
	})
	m.reg.MustRegister(m.tokens, m.refresh, m.links, m.webhooks, m.queue,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if store != nil {
		m.reg.MustRegister(poolCollector{store})
	}
	if cache != nil {
		m.reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "teslalink_token_cache_hits_total",
				Help: "Token requests answered from the in-memory cache (no database round trip)."},
				func() float64 { h, _ := cache.Stats(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "teslalink_token_cache_misses_total",
				Help: "Token requests the cache could not answer (not cached, expired, or cache bypassed)."},
				func() float64 { _, mi := cache.Stats(); return float64(mi) }))
	}
	return m
}

// WatchTokenBudget exports the use of the budget of calls to Tesla's token
// endpoint (TESLA_TOKEN_RPS): calls allowed and refused, the rate, and the
// calls available right now. A nil budget exports nothing.
func (m *Metrics) WatchTokenBudget(b *ratelimit.Bucket) {
	if b == nil {
		return
	}
	calls := func(result string, pick func(ratelimit.BucketStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "teslalink_tesla_token_budget_calls_total",
			Help:        "Calls to Tesla's token endpoint the budget allowed, and those it refused (answered 503 at once).",
			ConstLabels: prometheus.Labels{"result": result}},
			func() float64 { return float64(pick(b.Stats())) })
	}
	m.reg.MustRegister(
		calls("allowed", func(s ratelimit.BucketStats) uint64 { return s.Allowed }),
		calls("refused", func(s ratelimit.BucketStats) uint64 { return s.Refused }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "teslalink_tesla_token_budget_rate",
			Help: "The budget: calls per second to Tesla's token endpoint (TESLA_TOKEN_RPS)."},
			func() float64 { return b.Stats().Rate }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "teslalink_tesla_token_budget_available",
			Help: "Calls to Tesla's token endpoint the budget would allow right now."},
			func() float64 { return b.Stats().Available }))
}

// Registry is the registry, for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)})
}

// TokenRequest counts one token request of client (its name; "" when the
// key was not accepted) with outcome (OutcomeOK or a problem type).
func (m *Metrics) TokenRequest(client, outcome string) {
	if client == "" {
		client = unknownClient
	}
	cc := (*m.byClient.Load())[client]
	if cc == nil {
		cc = m.addClient(client)
	}
	if outcome == OutcomeOK {
		cc.ok.Inc()
		return
	}
	c := (*cc.failed.Load())[outcome]
	if c == nil {
		c = m.addOutcome(cc, client, outcome)
	}
	c.Inc()
}

func (m *Metrics) addClient(client string) *clientCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *m.byClient.Load()
	if cc := cur[client]; cc != nil {
		return cc
	}
	cc := &clientCounters{ok: m.tokens.WithLabelValues(client, OutcomeOK)}
	none := map[string]prometheus.Counter{}
	cc.failed.Store(&none)
	next := make(map[string]*clientCounters, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[client] = cc
	m.byClient.Store(&next)
	return cc
}

func (m *Metrics) addOutcome(cc *clientCounters, client, outcome string) prometheus.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := *cc.failed.Load()
	if c := cur[outcome]; c != nil {
		return c
	}
	c := m.tokens.WithLabelValues(client, outcome)
	next := make(map[string]prometheus.Counter, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[outcome] = c
	cc.failed.Store(&next)
	return c
}

// Refresh records one refresh call to Tesla: its result and how long it
// took, retries included.
func (m *Metrics) Refresh(result string, took time.Duration) {
	m.refresh.WithLabelValues(result).Observe(took.Seconds())
}

// Webhook delivery results.
const (
	WebhookOK     = "ok"
	WebhookFailed = "failed"
	WebhookGaveUp = "gave_up"
)

// WebhookDelivery records one delivery attempt's result.
func (m *Metrics) WebhookDelivery(result string) {
	m.webhooks.WithLabelValues(result).Inc()
}

// UpdateLinkCounts counts links by status into the teslalink_links gauge,
// and the pending webhook deliveries into teslalink_webhook_queue_depth.
func (m *Metrics) UpdateLinkCounts(ctx context.Context) error {
	counts, err := m.store.CountLinksByStatus(ctx)
	if err != nil {
		return err
	}
	for _, status := range []string{db.StatusActive, db.StatusNeedsReauth, db.StatusRevoked} {
		m.links.WithLabelValues(status).Set(float64(counts[status]))
	}
	pending, err := m.store.CountPendingWebhookDeliveries(ctx)
	if err != nil {
		return err
	}
	m.queue.Set(float64(pending))
	return nil
}

// RunLinkCounts updates the links gauge every interval until ctx ends: one
// aggregate query per interval, however often Prometheus scrapes.
func (m *Metrics) RunLinkCounts(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := m.UpdateLinkCounts(qctx); err != nil && ctx.Err() == nil {
			m.log.Warn("counting links for metrics failed", "error", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// poolCollector reads the pgx pool's statistics at scrape time (no query).
type poolCollector struct{ store *db.Store }

var (
	poolAcquired = prometheus.NewDesc("teslalink_db_pool_acquired_conns", "Connections in use.", nil, nil)
	poolIdle     = prometheus.NewDesc("teslalink_db_pool_idle_conns", "Idle connections.", nil, nil)
	poolTotal    = prometheus.NewDesc("teslalink_db_pool_total_conns", "Open connections (in use, idle and being opened).", nil, nil)
	poolMax      = prometheus.NewDesc("teslalink_db_pool_max_conns", "The pool's size (DB_MAX_CONNS).", nil, nil)
	poolAcquires = prometheus.NewDesc("teslalink_db_pool_acquires_total", "Successful connection acquisitions.", nil, nil)
	poolEmpty    = prometheus.NewDesc("teslalink_db_pool_empty_acquires_total",
		"Acquisitions that had to wait because no connection was idle.", nil, nil)
	poolCanceled = prometheus.NewDesc("teslalink_db_pool_canceled_acquires_total",
		"Acquisitions abandoned because the request's context ended.", nil, nil)
	poolWait = prometheus.NewDesc("teslalink_db_pool_acquire_seconds_total",
		"Total time spent acquiring connections.", nil, nil)
)

func (p poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquired, poolIdle, poolTotal, poolMax, poolAcquires, poolEmpty, poolCanceled, poolWait} {
		ch <- d
	}
}

func (p poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := p.store.PoolStat()
	ch <- prometheus.MustNewConstMetric(poolAcquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(poolTotal, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmpty, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolCanceled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.AcquireDuration().Seconds())
}
