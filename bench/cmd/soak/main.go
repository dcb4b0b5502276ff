// Command soak is the driver of bench/soak.sh. Against a running `web serve`
// (and the PostgreSQL and Tesla simulator of bench/cmd/benchsetup) it runs,
// for -duration, mixed traffic: token requests at a steady rate on random
// links, owners linking through the real browser flow and revoking (on the
// account page, or through the API), forced refreshes, while the service's
// keep-alive refreshes links in the background and simulator faults are
// switched on and off. Then it checks, and prints the figures:
//
//   - no link lost: every seeded or newly linked link that was not revoked
//     still exists and is active; needs_reauth only for as many links as
//     refresh_login_required faults were consumed; revoked ones are revoked;
//   - no refresh token presented twice at the simulator;
//   - no 5xx answer except 503 during (or -grace after) a fault window, no
//     transport error, no login failing outside a fault window, and 4xx
//     token answers only for links that ended revoked or needs_reauth;
//   - RSS of web serve at the end at most 20% above RSS after warm-up;
//   - goroutines at the end at most max(20, 20%) above those after warm-up.
//
// It exits 1 when a check fails. Everything it talks to is on loopback.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"teslalink/internal/teslasim"
)

type config struct {
	url, metrics, simAdmin, dbURL, key, idsFile, password string
	pid                                                   int
	duration, baseline, faultEvery, faultFor, grace       time.Duration
	linkEvery, revokeEvery                                time.Duration
	rate, forceRate                                       float64
	conc                                                  int
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", os.Getenv("PUBLIC_URL"), "the service's base URL (loopback)")
	flag.StringVar(&c.metrics, "metrics", "", "the service's METRICS_ADDR base URL, e.g. http://127.0.0.1:18092")
	flag.StringVar(&c.simAdmin, "sim-admin", os.Getenv("BENCH_SIM_ADMIN_URL"), "the simulator's admin API")
	flag.StringVar(&c.dbURL, "db", os.Getenv("DATABASE_URL"), "the service's database")
	flag.StringVar(&c.key, "key", os.Getenv("BENCH_KEY"), "API key (every scope)")
	flag.StringVar(&c.idsFile, "ids", os.Getenv("BENCH_IDS"), "seeded link ids, one a line")
	flag.StringVar(&c.password, "password", teslasim.DefaultPassword, "the simulator's owner password")
	flag.IntVar(&c.pid, "pid", 0, "process id of web serve (for VmRSS)")
	flag.DurationVar(&c.duration, "duration", 10*time.Minute, "how long the mixed traffic runs")
	flag.DurationVar(&c.baseline, "baseline", 0, "when RSS and goroutines are first measured, after the traffic starts (0: a tenth of -duration, at least 30s, at most half)")
	flag.Float64Var(&c.rate, "rate", 300, "token requests per second")
	flag.Float64Var(&c.forceRate, "force-rate", 1, "forced refreshes per second")
	flag.DurationVar(&c.linkEvery, "link-every", 2*time.Second, "a new owner links this often")
	flag.DurationVar(&c.revokeEvery, "revoke-every", 3*time.Second, "a link is revoked this often (by its owner or by the API, in turn)")
	flag.DurationVar(&c.faultEvery, "fault-every", time.Minute, "a fault window starts this often")
	flag.DurationVar(&c.faultFor, "fault-for", 15*time.Second, "how long a fault window lasts")
	flag.DurationVar(&c.grace, "grace", 5*time.Second, "503s this long after a fault window still count as the fault's")
	flag.IntVar(&c.conc, "concurrency", 256, "at most this many requests in flight")
	plan := flag.String("fault-plan", "", `faults for the windows, in turn, as a JSON array of the simulator's POST /faults bodies (default: every fault that should make the service answer 503, and refresh_login_required for two refreshes), e.g. [{"fault":"http_503"}]`)
	flag.Parse()
	if *plan != "" {
		var list []json.RawMessage
		if err := json.Unmarshal([]byte(*plan), &list); err != nil || len(list) == 0 {
			log.Fatal("soak: -fault-plan must be a non-empty JSON array of objects")
		}
		faultPlan = faultPlan[:0]
		for _, f := range list {
			faultPlan = append(faultPlan, string(f))
		}
	}
	if c.baseline == 0 {
		c.baseline = min(max(c.duration/10, 30*time.Second), c.duration/2)
	}
	for name, v := range map[string]string{"url": c.url, "metrics": c.metrics, "sim-admin": c.simAdmin, "db": c.dbURL, "key": c.key, "ids": c.idsFile} {
		if v == "" {
			log.Fatalf("soak: -%s is required", name)
		}
	}
	for _, u := range []string{c.url, c.metrics, c.simAdmin} {
		if !loopback(u) {
			log.Fatalf("soak: %s is not a loopback URL", u)
		}
	}
	if c.pid <= 0 {
		log.Fatal("soak: -pid is required")
	}
	ok, err := run(c)
	if err != nil {
		log.Fatalf("soak: %v", err)
	}
	if !ok {
		os.Exit(1)
	}
}

func loopback(u string) bool {
	p, err := url.Parse(u)
	if err != nil {
		return false
	}
	ip := net.ParseIP(p.Hostname())
	return p.Hostname() == "localhost" || (ip != nil && ip.IsLoopback())
}

// window is a fault switched on at the simulator.
type window struct {
	fault    string
	on, off  time.Time
	consumed int // refresh_login_required: how many refreshes it refused
}

// event is one answer (or transport error, status 0) worth classifying later.
type event struct {
	kind, link string
	status     int
	start, end time.Time
	err        string
}

type soak struct {
	c      config
	api    *http.Client
	start  time.Time
	inflt  sync.WaitGroup
	sem    chan struct{}
	skips  atomic.Int64
	emails atomic.Int64
	runID  string

	mu       sync.Mutex
	live     []string       // links to ask tokens for
	pos      map[string]int // index in live
	seeded   []string
	newLinks []string
	revoked  map[string]string // link id -> how ("owner", "api")
	owners   []*owner          // linked by this run, not yet revoked
	counts   map[string]map[int]int
	events   []event // 5xx, transport errors, failed logins
	bad4xx   map[string]int
	windows  []window
	samples  []sample
}

type owner struct {
	email, link string
	client      *http.Client
}

type sample struct {
	at         time.Duration
	rssKB      int64
	goroutines int
}

func run(c config) (bool, error) {
	ids, err := readIDs(c.idsFile)
	if err != nil {
		return false, err
	}
	s := &soak{c: c, sem: make(chan struct{}, c.conc), pos: map[string]int{}, revoked: map[string]string{},
		counts: map[string]map[int]int{}, bad4xx: map[string]int{}, seeded: ids,
		runID: strconv.FormatInt(time.Now().Unix(), 36)}
	s.api = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConns: c.conc, MaxIdleConnsPerHost: c.conc,
		IdleConnTimeout: 90 * time.Second}}
	for i, id := range ids {
		s.live = append(s.live, id)
		s.pos[id] = i
	}
	ctx := context.Background()
	if _, err := s.adminDo(ctx, http.MethodDelete, "/faults", ""); err != nil {
		return false, fmt.Errorf("simulator admin API: %w", err)
	}
	before, err := s.reuse(ctx)
	if err != nil {
		return false, err
	}

	fmt.Printf("== warm-up: every one of the %d seeded links asked for once\n", len(ids))
	t0 := time.Now()
	warmBad := s.warm(ctx, ids)
	fmt.Printf("   %s, %d answers other than 200\n", time.Since(t0).Round(time.Millisecond), warmBad)

	fmt.Printf("== mixed traffic for %s: %.0f token requests/s, %.2g forced refreshes/s, a login every %s, a revocation every %s, a fault window of %s every %s\n",
		c.duration, c.rate, c.forceRate, c.linkEvery, c.revokeEvery, c.faultFor, c.faultEvery)
	s.start = time.Now()
	tctx, stop := context.WithTimeout(ctx, c.duration)
	defer stop()
	var loops sync.WaitGroup
	for _, f := range []func(context.Context){s.tokens, s.forced, s.linking, s.revoking, s.faults, s.sampling} {
		loops.Add(1)
		go func() { defer loops.Done(); f(tctx) }()
	}
	loops.Wait()
	s.inflt.Wait()
	if _, err := s.adminDo(ctx, http.MethodDelete, "/faults", ""); err != nil {
		return false, err
	}
	after, err := s.reuse(ctx)
	if err != nil {
		return false, err
	}
	return s.report(ctx, warmBad, teslasim.RefreshReuse{Accepted: after.Accepted - before.Accepted, Refused: after.Refused - before.Refused})
}

func readIDs(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ids := strings.Fields(string(b))
	if len(ids) == 0 {
		return nil, errors.New("no link ids in " + path)
	}
	return ids, nil
}

// warm asks for every link once, 32 at a time, and returns how many answers
// were not 200.
func (s *soak) warm(ctx context.Context, ids []string) int {
	var next, bad atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				st := s.token(ctx, "warm-up", ids[i], false)
				if st != http.StatusOK {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(bad.Load())
}

// paced calls f rate times a second (spread evenly, in 10 ms steps) until
// ctx ends; each call runs in its own goroutine, at most -concurrency at once.
func (s *soak) paced(ctx context.Context, rate float64, f func()) {
	if rate <= 0 {
		return
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	begun := time.Now()
	sent := 0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			due := int(now.Sub(begun).Seconds() * rate)
			for ; sent < due; sent++ {
				select {
				case s.sem <- struct{}{}:
				default:
					s.skips.Add(1) // the service is too slow to keep the rate with -concurrency in flight
					continue
				}
				s.inflt.Add(1)
				go func() {
					defer func() { <-s.sem; s.inflt.Done() }()
					f()
				}()
			}
		}
	}
}

func every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

func (s *soak) randomLive() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[rand.IntN(len(s.live))]
}

func (s *soak) tokens(ctx context.Context) {
	s.paced(ctx, s.c.rate, func() { s.token(context.Background(), "token", s.randomLive(), false) })
}

func (s *soak) forced(ctx context.Context) {
	s.paced(ctx, s.c.forceRate, func() { s.token(context.Background(), "forced refresh", s.randomLive(), true) })
}

// token asks for a link's token and records the answer.
func (s *soak) token(ctx context.Context, kind, id string, force bool) int {
	var body io.Reader
	if force {
		body = strings.NewReader(`{"force_refresh": true}`)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url+"/api/v1/links/"+id+"/token", body)
	req.Header.Set("Authorization", "Bearer "+s.c.key)
	if force {
		req.Header.Set("Content-Type", "application/json")
	}
	st := s.send(s.api, req, kind, id)
	if st >= 400 && st < 500 {
		s.mu.Lock()
		s.bad4xx[id] = st
		s.mu.Unlock()
	}
	return st
}

// send sends req, drains the answer and records its status under kind.
func (s *soak) send(client *http.Client, req *http.Request, kind, link string) int {
	st, _, _ := s.sendBody(client, req, kind, link, false)
	return st
}

// sendBody is send that also returns the answer's header and, with keep,
// its body (up to 1 MiB).
func (s *soak) sendBody(client *http.Client, req *http.Request, kind, link string, keep bool) (int, http.Header, []byte) {
	start := time.Now()
	res, err := client.Do(req)
	var body []byte
	var hdr http.Header
	st := 0
	if err == nil {
		st, hdr = res.StatusCode, res.Header
		if keep {
			body, err = io.ReadAll(io.LimitReader(res.Body, 1<<20))
		} else {
			_, err = io.Copy(io.Discard, res.Body)
		}
		res.Body.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts[kind] == nil {
		s.counts[kind] = map[int]int{}
	}
	s.counts[kind][st]++
	if err != nil || st >= 500 {
		e := event{kind: kind, link: link, status: st, start: start, end: time.Now()}
		if err != nil {
			e.err = err.Error()
		}
		s.events = append(s.events, e)
	}
	return st, hdr, body
}

// browser is an owner's browser: a cookie jar, redirects not followed.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (s *soak) form(ctx context.Context, path string, vals url.Values) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url+path, strings.NewReader(vals.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.c.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return req
}

func (s *soak) get(ctx context.Context, u string) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return req
}

// loginFailed records a login that did not end with a link.
func (s *soak) loginFailed(start time.Time, step string, st int, err error) {
	e := event{kind: "login", status: st, start: start, end: time.Now(), err: step}
	if err != nil {
		e.err += ": " + err.Error()
	}
	s.mu.Lock()
	s.events = append(s.events, e)
	s.counts["login"][-1]++
	s.mu.Unlock()
}

func (s *soak) linking(ctx context.Context) {
	s.mu.Lock()
	s.counts["login"] = map[int]int{}
	s.mu.Unlock()
	every(ctx, s.c.linkEvery, func() {
		s.inflt.Add(1)
		go func() { defer s.inflt.Done(); s.link(context.Background()) }()
	})
}

var linkScopes = []string{"user_data", "vehicle_device_data"}

// link signs a new owner in through the whole flow: POST /connect, the
// simulator's sign-in and consent pages, the callback; then reads the new
// link's id from the owner's data download.
func (s *soak) link(ctx context.Context) {
	start := time.Now()
	email := fmt.Sprintf("soak-%s-%d@example.com", s.runID, s.emails.Add(1))
	b := browser()
	st, hdr, _ := s.sendBody(b, s.form(ctx, "/connect", url.Values{"scope": linkScopes}), "login: POST /connect", "", false)
	if st != http.StatusSeeOther {
		s.loginFailed(start, "POST /connect", st, nil)
		return
	}
	cb, err := teslasim.ConsentOverHTTP(ctx, b, hdr.Get("Location"), email, s.c.password, linkScopes, true)
	if err != nil {
		s.loginFailed(start, "sign-in at the simulator", 0, err)
		return
	}
	back := s.get(ctx, cb.String())
	back.Header.Set("Sec-Fetch-Site", "cross-site") // a browser coming back from Tesla's page
	if st := s.send(b, back, "login: callback", ""); st != http.StatusSeeOther {
		s.loginFailed(start, "callback", st, nil)
		return
	}
	st, _, body := s.sendBody(b, s.get(ctx, s.c.url+"/account/data"), "login: GET /account/data", "", true)
	var data struct {
		Links []struct {
			ID string `json:"id"`
		} `json:"links"`
	}
	if st != http.StatusOK || json.Unmarshal(body, &data) != nil || len(data.Links) != 1 {
		s.loginFailed(start, "GET /account/data", st, nil)
		return
	}
	id := data.Links[0].ID
	s.mu.Lock()
	s.counts["login"][http.StatusOK]++
	s.newLinks = append(s.newLinks, id)
	s.pos[id] = len(s.live)
	s.live = append(s.live, id)
	s.owners = append(s.owners, &owner{email: email, link: id, client: b})
	s.mu.Unlock()
}

// revokeLocked takes id out of the token traffic and records how it was revoked.
func (s *soak) revokeLocked(id, how string) {
	i, ok := s.pos[id]
	if !ok {
		return
	}
	last := len(s.live) - 1
	s.live[i] = s.live[last]
	s.pos[s.live[i]] = i
	s.live = s.live[:last]
	delete(s.pos, id)
	s.revoked[id] = how
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// revoking revokes, in turn, the link of an owner who linked during the run
// (on the account page, as the owner) and a random seeded link (through
// DELETE /api/v1/links/{id}, as a backend).
func (s *soak) revoking(ctx context.Context) {
	n := 0
	every(ctx, s.c.revokeEvery, func() {
		n++
		s.mu.Lock()
		var o *owner
		if n%2 == 1 && len(s.owners) > 0 {
			o = s.owners[0]
			s.owners = s.owners[1:]
			s.revokeLocked(o.link, "owner")
		}
		var id string
		if o == nil {
			for range 100 {
				if c := s.seeded[rand.IntN(len(s.seeded))]; s.revoked[c] == "" {
					id = c
					break
				}
			}
			if id == "" {
				s.mu.Unlock()
				return
			}
			s.revokeLocked(id, "api")
		}
		s.mu.Unlock()
		s.inflt.Add(1)
		go func() {
			defer s.inflt.Done()
			ctx := context.Background()
			if o != nil {
				st, _, page := s.sendBody(o.client, s.get(ctx, s.c.url+"/account/revoke"), "revoke: GET /account/revoke", o.link, true)
				m := csrfRE.FindSubmatch(page)
				if st != http.StatusOK || m == nil {
					return // recorded; the end check finds the link still active
				}
				s.send(o.client, s.form(ctx, "/account/revoke", url.Values{"csrf": {string(m[1])}}), "revoke: POST /account/revoke", o.link)
				return
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, s.c.url+"/api/v1/links/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+s.c.key)
			s.send(s.api, req, "revoke: DELETE /api/v1/links/{id}", id)
		}()
	})
}

// faultPlan is the order in which faults are switched on, one per window.
// Each makes the service answer 503 (or nothing worse) while it lasts;
// refresh_login_required, limited to two refreshes, flags two links
// needs_reauth, which the end check allows for. Faults whose right answer
// is 502 (ID token faults, unauthorized_client) or that make Tesla rotate
// a token the service never receives (drop_after_refresh) are left out.
var faultPlan = []string{
	`{"fault":"http_503"}`,
	`{"fault":"latency","latency_ms":1500}`,
	`{"fault":"http_500"}`,
	`{"fault":"refresh_login_required","count":2}`,
	`{"fault":"http_429","retry_after_s":1}`,
	`{"fault":"http_502"}`,
}

func (s *soak) faults(ctx context.Context) {
	first := time.NewTimer(s.c.faultEvery / 2)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return
	case <-first.C:
	}
	for i := 0; ; i++ {
		body := faultPlan[i%len(faultPlan)]
		var f struct {
			Fault string `json:"fault"`
			Count int    `json:"count"`
		}
		_ = json.Unmarshal([]byte(body), &f)
		w := window{fault: f.Fault, on: time.Now()}
		if _, err := s.adminDo(context.Background(), http.MethodPost, "/faults", body); err != nil {
			log.Printf("soak: fault on: %v", err)
		}
		t := time.NewTimer(s.c.faultFor)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		if f.Count > 0 {
			w.consumed = f.Count
			var active struct {
				Active map[string]int `json:"active"`
			}
			if b, err := s.adminDo(context.Background(), http.MethodGet, "/faults", ""); err == nil && json.Unmarshal(b, &active) == nil {
				if left, ok := active.Active[f.Fault]; ok {
					w.consumed = f.Count - left
				}
			}
		}
		if _, err := s.adminDo(context.Background(), http.MethodDelete, "/faults", ""); err != nil {
			log.Printf("soak: fault off: %v", err)
		}
		w.off = time.Now()
		s.mu.Lock()
		s.windows = append(s.windows, w)
		s.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		gap := time.NewTimer(s.c.faultEvery - s.c.faultFor)
		select {
		case <-ctx.Done():
			gap.Stop()
			return
		case <-gap.C:
		}
	}
}

func (s *soak) adminDo(ctx context.Context, method, path, body string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.c.simAdmin+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.api.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	return b, err
}

func (s *soak) reuse(ctx context.Context) (teslasim.RefreshReuse, error) {
	var r teslasim.RefreshReuse
	b, err := s.adminDo(ctx, http.MethodGet, "/refresh-reuse", "")
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	return r, err
}

// sampling records RSS and goroutines at the baseline, every 30 seconds,
// and just before the traffic ends.
func (s *soak) sampling(ctx context.Context) {
	take := func() {
		rss, err1 := rssKB(s.c.pid)
		g, err2 := s.goroutines()
		if err := errors.Join(err1, err2); err != nil {
			log.Printf("soak: sample: %v", err)
			return
		}
		s.mu.Lock()
		s.samples = append(s.samples, sample{at: time.Since(s.start), rssKB: rss, goroutines: g})
		s.mu.Unlock()
	}
	end := time.NewTimer(s.c.duration - time.Second)
	defer end.Stop()
	base := time.NewTimer(s.c.baseline)
	defer base.Stop()
	select {
	case <-base.C:
		take()
	case <-end.C:
		return
	}
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			take()
		case <-end.C:
			take()
			return
		case <-ctx.Done():
			return
		}
	}
}

func rssKB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no VmRSS")
}

func (s *soak) goroutines() (int, error) {
	v, err := s.metric("go_goroutines ")
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(strings.TrimPrefix(v, "go_goroutines "), 64)
	return int(f), err
}

// metric returns the lines of the service's /metrics that start with
// prefix, joined by ", ".
func (s *soak) metric(prefix string) (string, error) {
	res, err := s.api.Get(s.c.metrics + "/metrics")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	if len(out) == 0 {
		return "", fmt.Errorf("no %s in /metrics", strings.TrimSpace(prefix))
	}
	return strings.Join(out, ", "), nil
}

// inWindow reports whether an answer overlapping [start, end] may be a
// fault's: the fault was on during it, or went off at most -grace before.
func (s *soak) inWindow(start, end time.Time) bool {
	for _, w := range s.windows {
		if start.Before(w.off.Add(s.c.grace)) && end.After(w.on) {
			return true
		}
	}
	return false
}

func (s *soak) report(ctx context.Context, warmBad int, reuse teslasim.RefreshReuse) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := true
	check := func(pass bool, format string, args ...any) {
		mark := "ok  "
		if !pass {
			mark, ok = "FAIL", false
		}
		fmt.Printf("%s %s\n", mark, fmt.Sprintf(format, args...))
	}
	elapsed := time.Since(s.start)

	fmt.Printf("\n================ soak results (%s of mixed traffic)\n", elapsed.Round(time.Second))
	fmt.Println("answers by kind and status (-1: a login that did not finish, 0: transport error):")
	kinds := make([]string, 0, len(s.counts))
	for k := range s.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		var parts []string
		sts := make([]int, 0, len(s.counts[k]))
		for st := range s.counts[k] {
			sts = append(sts, st)
		}
		sort.Ints(sts)
		total := 0
		for _, st := range sts {
			parts = append(parts, fmt.Sprintf("%d: %d", st, s.counts[k][st]))
			total += s.counts[k][st]
		}
		fmt.Printf("  %-36s %7d  (%s)\n", k, total, strings.Join(parts, ", "))
	}
	tok := 0
	for _, n := range s.counts["token"] {
		tok += n
	}
	fmt.Printf("token requests: %.0f/s achieved (asked %.0f/s); %d not sent because %d were in flight\n",
		float64(tok)/elapsed.Seconds(), s.c.rate, s.skips.Load(), s.c.conc)
	fmt.Println("fault windows:")
	consumed := 0
	for _, w := range s.windows {
		extra := ""
		if w.fault == "refresh_login_required" {
			consumed += w.consumed
			extra = fmt.Sprintf(", refused %d refreshes", w.consumed)
		}
		fmt.Printf("  %-24s from %6.1fs to %6.1fs%s\n", w.fault, w.on.Sub(s.start).Seconds(), w.off.Sub(s.start).Seconds(), extra)
	}

	// 5xx, transport errors, failed logins.
	var in503, outside, loginsInFault int
	var examples []string
	for _, e := range s.events {
		justified := s.inWindow(e.start, e.end)
		switch {
		case e.kind == "login" && justified:
			loginsInFault++
			continue
		case e.kind == "login":
		case e.status == http.StatusServiceUnavailable && justified:
			in503++
			continue
		}
		outside++
		if len(examples) < 10 {
			examples = append(examples, fmt.Sprintf("%s at %.1fs: status %d %s", e.kind, e.start.Sub(s.start).Seconds(), e.status, e.err))
		}
	}
	fmt.Printf("503s during fault windows: %d; logins that failed during fault windows: %d\n", in503, loginsInFault)
	check(warmBad == 0, "warm-up: %d answers other than 200", warmBad)
	check(outside == 0, "no 5xx other than 503 in fault windows, no transport error, no failed login outside them: %d", outside)
	for _, e := range examples {
		fmt.Println("       " + e)
	}

	// Links in the database.
	conn, err := pgx.Connect(ctx, s.c.dbURL)
	if err != nil {
		return false, err
	}
	defer conn.Close(ctx)
	var expect, revoked []string
	for _, id := range append(slices.Clone(s.seeded), s.newLinks...) {
		if s.revoked[id] != "" {
			revoked = append(revoked, id)
		} else {
			expect = append(expect, id)
		}
	}
	byStatus, err := statuses(ctx, conn, expect)
	if err != nil {
		return false, err
	}
	found := 0
	for _, n := range byStatus {
		found += n
	}
	fmt.Printf("links: %d seeded, %d linked during the run, %d revoked during the run (%d by their owner, %d by the API)\n",
		len(s.seeded), len(s.newLinks), len(revoked), countHow(s.revoked, "owner"), countHow(s.revoked, "api"))
	check(found == len(expect) && byStatus["active"]+byStatus["needs_reauth"] == len(expect),
		"no link lost: %d of %d not revoked are in the database; active %d, needs_reauth %d, other %d",
		found, len(expect), byStatus["active"], byStatus["needs_reauth"], found-byStatus["active"]-byStatus["needs_reauth"])
	check(byStatus["needs_reauth"] <= consumed, "needs_reauth only where a fault refused a refresh: %d links, %d refreshes refused by refresh_login_required",
		byStatus["needs_reauth"], consumed)
	rs, err := statuses(ctx, conn, revoked)
	if err != nil {
		return false, err
	}
	check(rs["revoked"] == len(revoked), "revocations took effect: %d of %d revoked", rs["revoked"], len(revoked))

	// 4xx token answers: only for links that ended revoked or needs_reauth.
	var ids4xx []string
	for id := range s.bad4xx {
		ids4xx = append(ids4xx, id)
	}
	st4xx, err := linkStatus(ctx, conn, ids4xx)
	if err != nil {
		return false, err
	}
	unexplained := 0
	for _, id := range ids4xx {
		if st := st4xx[id]; st != "revoked" && st != "needs_reauth" {
			unexplained++
			if unexplained <= 5 {
				fmt.Printf("       4xx (%d) for link %s, which is %q\n", s.bad4xx[id], id, st)
			}
		}
	}
	check(unexplained == 0, "4xx token answers only for revoked or needs_reauth links: %d links got one, %d unexplained", len(ids4xx), unexplained)

	var refreshed, backingOff int
	if err := conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE refreshed_at >= $1 AND linked_at < $1),
		count(*) FILTER (WHERE keepalive_attempts > 0) FROM links`, s.start).Scan(&refreshed, &backingOff); err != nil {
		return false, err
	}
	fmt.Printf("links linked before the run and refreshed during it (forced or by keep-alive): %d; links whose keep-alive is backing off after a failure: %d\n",
		refreshed, backingOff)
	if m, err := s.metric("teslalink_tesla_refresh_duration_seconds_count{"); err == nil {
		fmt.Printf("the service's refreshes at Tesla by result: %s\n", m)
	}
	calls := map[string]int{}
	if b, err := s.adminDo(ctx, http.MethodGet, "/calls", ""); err == nil {
		_ = json.Unmarshal(b, &calls)
	}
	fmt.Printf("at the simulator: %d refresh grants, %d code exchanges (the simulator's counters, faulted calls included)\n",
		calls["token.refresh_token"], calls["token.authorization_code"])
	check(reuse.Accepted+reuse.Refused == 0, "no refresh token used twice at the simulator: %d accepted again, %d refused again",
		reuse.Accepted, reuse.Refused)

	// Memory and goroutines.
	if len(s.samples) < 2 {
		check(false, "RSS and goroutines: %d samples (the run was too short)", len(s.samples))
		return ok, nil
	}
	fmt.Println("web serve over time:")
	for _, sm := range s.samples {
		fmt.Printf("  %6.0fs  RSS %6.1f MB  goroutines %d\n", sm.at.Seconds(), float64(sm.rssKB)/1024, sm.goroutines)
	}
	b, e := s.samples[0], s.samples[len(s.samples)-1]
	check(float64(e.rssKB) <= 1.2*float64(b.rssKB), "RSS at the end %.1f MB, after warm-up %.1f MB: %+.1f%% (limit +20%%)",
		float64(e.rssKB)/1024, float64(b.rssKB)/1024, 100*(float64(e.rssKB)/float64(b.rssKB)-1))
	tol := max(20, b.goroutines/5)
	check(e.goroutines <= b.goroutines+tol, "goroutines at the end %d, after warm-up %d (limit +%d)", e.goroutines, b.goroutines, tol)
	if ok {
		fmt.Println("soak PASSED")
	} else {
		fmt.Println("soak FAILED")
	}
	return ok, nil
}

func countHow(m map[string]string, how string) int {
	n := 0
	for _, v := range m {
		if v == how {
			n++
		}
	}
	return n
}

func statuses(ctx context.Context, conn *pgx.Conn, ids []string) (map[string]int, error) {
	out := map[string]int{}
	rows, err := conn.Query(ctx, "SELECT status, count(*) FROM links WHERE id = ANY($1::uuid[]) GROUP BY status", ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

func linkStatus(ctx context.Context, conn *pgx.Conn, ids []string) (map[string]string, error) {
	out := map[string]string{}
	rows, err := conn.Query(ctx, "SELECT id::text, status FROM links WHERE id = ANY($1::uuid[])", ids)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		out[id] = st
	}
	return out, rows.Err()
}
