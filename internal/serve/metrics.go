package serve

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the service's Prometheus metrics, on a registry of its own (no global state).
type metrics struct {
	reg          *prometheus.Registry
	runs         *prometheus.CounterVec   // outcome
	jobs         *prometheus.CounterVec   // outcome, platform
	jobSeconds   *prometheus.HistogramVec // platform
	runSeconds   prometheus.Histogram
	behind       *prometheus.GaugeVec // app
	rateLimit    *prometheus.GaugeVec // host
	registryReqs *prometheus.CounterVec
	lastSuccess  prometheus.Gauge
	running      prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archmirror_runs_total", Help: "Runs finished, by outcome (succeeded, failed, cancelled).",
		}, []string{"outcome"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archmirror_jobs_total", Help: "Build jobs finished, by outcome (built, failed, skipped), platform and the BuildKit node that ran them.",
		}, []string{"outcome", "platform", "node"}),
		jobSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "archmirror_job_duration_seconds", Help: "Build job durations, by platform.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14), // 1 s … 2.3 h
		}, []string{"platform"}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "archmirror_run_duration_seconds", Help: "Run durations.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 18), // 50 ms … 1.8 h
		}),
		behind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "archmirror_versions_behind", Help: "Versions of the app's window not complete in the target, after the last inspection.",
		}, []string{"app"}),
		rateLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "archmirror_upstream_ratelimit_remaining", Help: "The last rate-limit remaining count an upstream API reported, by host.",
		}, []string{"host"}),
		registryReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "archmirror_registry_requests_total", Help: "Requests archmirror sent to the target registry (not BuildKit's pushes), by method and status code.",
		}, []string{"method", "code"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "archmirror_last_success_timestamp_seconds", Help: "When the last run that succeeded finished (Unix time).",
		}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "archmirror_run_in_progress", Help: "1 while a run is in progress.",
		}),
	}
	m.reg.MustRegister(m.runs, m.jobs, m.jobSeconds, m.runSeconds, m.behind, m.rateLimit, m.registryReqs,
		m.lastSuccess, m.running, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// finished records a run that ended.
func (m *metrics) finished(r Run) {
	m.runs.WithLabelValues(r.Status).Inc()
	if r.Started != nil && r.Finished != nil {
		m.runSeconds.Observe(r.Finished.Sub(*r.Started).Seconds())
	}
	if r.Status == Succeeded && r.Finished != nil {
		m.lastSuccess.Set(float64(r.Finished.Unix()))
	}
	for _, j := range r.Jobs {
		m.jobs.WithLabelValues(j.Status, j.Platform, j.Builder).Inc()
		if j.Status != "skipped" {
			m.jobSeconds.WithLabelValues(j.Platform).Observe(j.Seconds)
		}
	}
}

// inspected records the apps' state after an inspection.
func (m *metrics) inspected(apps []App) {
	for _, a := range apps {
		m.behind.WithLabelValues(a.Name).Set(float64(a.Behind))
	}
}

// countingTransport counts the target's registry requests by method and status (a decorator:
// the target never knows).
// countRequests wraps the target's transport in a countingTransport.
func (s *Server) countRequests(next http.RoundTripper) http.RoundTripper {
	return countingTransport{next: next, m: s.m}
}

type countingTransport struct {
	next http.RoundTripper
	m    *metrics
}

func (c countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	c.m.registryReqs.WithLabelValues(req.Method, code).Inc()
	return resp, err
}
