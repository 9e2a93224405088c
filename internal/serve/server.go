// Package serve runs archmirror as a service: sync on the config's schedule, never two runs at
// once, an HTTP API to trigger and watch runs, a status page, Prometheus metrics, and a run
// history that survives restarts.
//
// One goroutine runs syncs one at a time from a queue of at most one waiting run: a trigger
// while a run is queued is that queued run, not a second one. Across processes, each run takes
// a lock file named after the target, so two services (or a service and a cron job that takes
// the same lock) against one registry do not sync it at the same time.
package serve

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/serve/history"
)

// Options configure New. Only ConfigPath is required.
type Options struct {
	ConfigPath string
	Listen     string // default DefaultListen
	Token      string // bearer token POST /api/v1/runs needs; "" refuses every POST
	// AllowedHosts are the Host names (any port) the API answers besides the listen host's (and
	// loopback names when it is loopback); when listening on a wildcard address (0.0.0.0, ::),
	// every Host is answered unless AllowedHosts lists some. Other requests get 421.
	AllowedHosts []string
	HistoryPath  string        // default <cache.dir>/serve/history.db
	HistoryKeep  int           // runs kept; default history.DefaultKeep
	StopTimeout  time.Duration // how long shutdown waits for a cancelled run to wind down; default 60s
	Parallel     int           // jobs built at once in a run; default 2
	Version      string
	Log          *slog.Logger
	// HTTP bounds the API's connections; a zero field is DefaultHTTPTimeouts()' value.
	HTTP HTTPTimeouts
	// Sync runs one sync; default run.Sync through runSync. Tests replace it.
	Sync SyncFunc
}

// DefaultListen is where serve listens unless told otherwise: loopback only.
const DefaultListen = "127.0.0.1:8080"

// HTTPTimeouts bound a client's connection to the API (see http.Server's fields of the same
// names). No endpoint streams: every answer is written at once, so WriteTimeout bounds them all.
type HTTPTimeouts struct {
	ReadHeader time.Duration // to read a request's headers
	Read       time.Duration // to read a whole request, body included
	Write      time.Duration // from the end of the request's headers to the end of the answer
	Idle       time.Duration // a keep-alive connection waiting for its next request
}

// DefaultHTTPTimeouts are the API's timeouts unless Options.HTTP says otherwise.
func DefaultHTTPTimeouts() HTTPTimeouts {
	return HTTPTimeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 60 * time.Second, Idle: 2 * time.Minute}
}

// withDefaults is t with DefaultHTTPTimeouts()' value for each field that is not positive.
func (t HTTPTimeouts) withDefaults() HTTPTimeouts {
	d := DefaultHTTPTimeouts()
	for _, f := range []struct{ v, def *time.Duration }{{&t.ReadHeader, &d.ReadHeader}, {&t.Read, &d.Read}, {&t.Write, &d.Write}, {&t.Idle, &d.Idle}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// Server is the service. Make it with New, run it with Serve.
type Server struct {
	o    Options
	log  *slog.Logger
	m    *metrics
	hist *history.Store[Run, RunSummary]
	host hostPolicy
	ln   net.Listener
	sync SyncFunc

	mu        sync.Mutex
	cfg       *config.Config // the config in use
	cfgErr    string         // the last refused reload
	sched     cron.Schedule
	loc       *time.Location
	next      time.Time
	running   *Run
	pending   *Run
	accepting bool
	apps      []App
	lastRun   *Run

	wake       chan struct{} // a run was queued
	reschedule chan struct{} // the schedule changed
	ready      atomic.Bool
	done       chan struct{} // closed when Serve returns
}

// New loads and validates the config, opens the history and listens; it runs nothing yet. An
// invalid config or a history in use by another process is an error here.
func New(o Options) (*Server, error) {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 60 * time.Second
	}
	if o.Parallel < 1 {
		o.Parallel = 2
	}
	o.HTTP = o.HTTP.withDefaults()
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	host, err := newHostPolicy(o.Listen, o.AllowedHosts)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Load(o.ConfigPath, discover.SourceKinds())
	if err != nil {
		return nil, err
	}
	sched, loc, err := cfg.Cron()
	if err != nil {
		return nil, err
	}
	if o.HistoryPath == "" {
		o.HistoryPath = filepath.Join(cfg.Cache.Dir, "serve", "history.db")
	}
	hist, err := OpenHistory(o.HistoryPath, o.HistoryKeep)
	if err != nil {
		return nil, err
	}
	s := &Server{
		o: o, log: o.Log, m: newMetrics(), hist: hist, host: host, cfg: cfg, sched: sched, loc: loc, accepting: true,
		wake: make(chan struct{}, 1), reschedule: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.sync = o.Sync
	if s.sync == nil {
		s.sync = s.runSync
	}
	if err := s.recover(); err != nil {
		hist.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		hist.Close()
		return nil, fmt.Errorf("listen %s: %w", o.Listen, err)
	}
	s.ln = ln
	return s, nil
}

// OpenHistory opens the run history at path as the service keeps it, with at most keep runs
// (keep < 1 means history.DefaultKeep). Tools and benchmarks use it to read or fill one.
func OpenHistory(path string, keep int) (*history.Store[Run, RunSummary], error) {
	return history.Open(path, keep, 5*time.Second, func(r Run) string { return r.ID }, Summarize)
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// recover loads the last finished run, and marks runs a previous process left queued or
// running (it was killed) as cancelled: they will not finish now.
func (s *Server) recover() error {
	runs, err := s.hist.Summaries(50, "")
	if err != nil {
		return err
	}
	for _, sum := range runs {
		if sum.Status != Queued && sum.Status != Running {
			continue
		}
		r, ok, err := s.hist.Get(sum.ID)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		now := time.Now().UTC()
		r.Status, r.Finished = Cancelled, &now
		r.Error = "the service stopped before this run finished"
		if err := s.hist.Put(r); err != nil {
			return err
		}
	}
	last, ok, err := s.hist.Latest(func(r Run) bool { return r.Finished != nil })
	if err != nil {
		return err
	}
	if ok {
		s.lastRun = &last
	}
	return nil
}

// Serve runs the scheduler, the runner and the HTTP API until ctx ends, then shuts down: no new
// runs are accepted, the running one is cancelled (its builds stop; nothing is tagged that is
// not complete) and waited for up to Options.StopTimeout, the queued one is recorded as
// cancelled, and the HTTP server is closed. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context) error {
	defer close(s.done)
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()

	srv := s.httpServer()
	httpErr := make(chan error, 1)
	go func() { httpErr <- srv.Serve(s.ln) }()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.schedule(ctx) }()
	runnerDone := make(chan struct{}) // not in wg: shutdown waits for it at most StopTimeout
	go func() { defer close(runnerDone); s.runner(ctx, runCtx) }()
	go func() { defer wg.Done(); s.inspectAtStart(runCtx) }() // cancelled with the runs at shutdown

	var err error
	select {
	case <-ctx.Done():
	case err = <-httpErr:
		err = fmt.Errorf("http: %w", err)
	}

	// Shutdown.
	s.mu.Lock()
	s.accepting = false
	if s.pending != nil {
		s.finishLocked(s.pending, Cancelled, "the service stopped before this run started")
		s.pending = nil
	}
	s.mu.Unlock()
	cancelRuns()
	select {
	case <-runnerDone:
	case <-time.After(s.o.StopTimeout):
		s.log.Error("the running sync did not stop in time; exiting anyway", "timeout", s.o.StopTimeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	wg.Wait()
	select {
	case <-runnerDone:
		if cerr := s.hist.Close(); err == nil {
			err = cerr
		}
	default:
		// The runner is stuck in a sync that ignores cancellation: leave the history open
		// (bbolt flushes every committed write) rather than close it under the runner.
		if err == nil {
			err = fmt.Errorf("the running sync did not stop within %s", s.o.StopTimeout)
		}
	}
	return err
}

// httpServer is the API's server, with the options' timeouts.
func (s *Server) httpServer() *http.Server {
	t := s.o.HTTP
	return &http.Server{Handler: s.Handler(), ReadHeaderTimeout: t.ReadHeader, ReadTimeout: t.Read,
		WriteTimeout: t.Write, IdleTimeout: t.Idle}
}

// schedule queues a run at every time the cron schedule names, in the config's time zone.
func (s *Server) schedule(ctx context.Context) {
	for {
		s.mu.Lock()
		next := s.sched.Next(time.Now().In(s.loc))
		s.next = next
		s.mu.Unlock()
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.reschedule:
			t.Stop()
			continue
		case <-t.C:
		}
		if r, err := s.enqueue(TriggerSchedule, Request{}); err != nil {
			s.log.Warn("scheduled run not queued", "err", err)
		} else {
			s.log.Info("run queued", "id", r.ID, "trigger", TriggerSchedule)
		}
	}
}

// runner runs queued runs one at a time until ctx ends.
func (s *Server) runner(ctx, runCtx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for {
			r := s.take()
			if r == nil {
				break
			}
			s.execute(runCtx, r)
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// ErrConflict is what enqueue returns when another run, with another request, is queued.
var ErrConflict = errors.New("another run is queued")

// ErrStopping is what enqueue returns during shutdown.
var ErrStopping = errors.New("the service is stopping")

// enqueue queues a run, unless one is queued already: a trigger during a run is queued once,
// not stacked. The queued run is returned either way; ErrConflict when its request differs.
func (s *Server) enqueue(trigger string, req Request) (Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.accepting {
		return Run{}, ErrStopping
	}
	if p := s.pending; p != nil {
		if trigger == TriggerSchedule || p.Request.equal(req) {
			return *p, nil
		}
		return *p, ErrConflict
	}
	now := time.Now().UTC()
	r := &Run{RunSummary: RunSummary{ID: newID(now), Trigger: trigger, Request: req, Status: Queued, Queued: now}}
	s.pending = r
	s.put(*r)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return *r, nil
}

// take moves the queued run to running.
func (s *Server) take() *Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.pending
	if r == nil {
		return nil
	}
	s.pending = nil
	now := time.Now().UTC()
	r.Status, r.Started = Running, &now
	s.running = r
	s.put(*r)
	s.m.running.Set(1)
	return r
}

// finishLocked ends r with status and err (s.mu held), records it and updates the metrics.
func (s *Server) finishLocked(r *Run, status, err string) {
	now := time.Now().UTC()
	r.Status, r.Finished = status, &now
	if err != "" && r.Error == "" {
		r.Error = err
	}
	s.put(*r)
	s.m.finished(*r)
	if s.running == r {
		s.running = nil
		s.m.running.Set(0)
	}
	cp := *r
	s.lastRun = &cp
}

// put records r in the history; a failure is logged (the service goes on without history).
func (s *Server) put(r Run) {
	if err := s.hist.Put(r); err != nil {
		s.log.Error("history: run not recorded", "id", r.ID, "err", err)
	}
}

// Reload reads the config file again. A config that does not load is refused: the old one stays
// in use, and the error shows on the status page until a reload succeeds.
func (s *Server) Reload() error {
	cfg, err := config.Load(s.o.ConfigPath, discover.SourceKinds())
	var sched cron.Schedule
	var loc *time.Location
	if err == nil {
		sched, loc, err = cfg.Cron()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.cfgErr = err.Error()
		s.log.Error("config reload refused; keeping the previous config", "err", err)
		return err
	}
	s.cfg, s.sched, s.loc, s.cfgErr = cfg, sched, loc, ""
	select {
	case s.reschedule <- struct{}{}:
	default:
	}
	s.log.Info("config reloaded", "path", s.o.ConfigPath, "schedule", cfg.Schedule)
	return nil
}

func (s *Server) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// newID is a run ID that sorts by time: "20261123T133031.123Z-1a2b3c4d".
func newID(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return t.UTC().Format("20060102T150405.000Z") + "-" + hex.EncodeToString(b[:])
}

func (r Request) equal(o Request) bool {
	return fmt.Sprint(r.Apps) == fmt.Sprint(o.Apps) && r.MaxVersions == o.MaxVersions &&
		fmt.Sprint(r.Platforms) == fmt.Sprint(o.Platforms)
}
