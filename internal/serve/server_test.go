package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/run"
)

// These tests run the service with a fake sync (the real one is in cmd/archmirror's end-to-end
// test): they are about scheduling, the queue, the API, the history and the lifecycle.

const token = "test-token-0123456789"

// fakeSync records the runs it is asked for; each blocks until released (or its ctx ends).
type fakeSync struct {
	mu       sync.Mutex
	calls    []*config.Config
	active   atomic.Int32
	overlap  atomic.Bool
	release  chan struct{} // nil: return at once
	started  chan struct{}
	failWith error
}

func (f *fakeSync) sync(ctx context.Context, cfg *config.Config) (run.Report, error) {
	if f.active.Add(1) > 1 {
		f.overlap.Store(true)
	}
	defer f.active.Add(-1)
	f.mu.Lock()
	f.calls = append(f.calls, cfg)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return run.Report{}, ctx.Err()
		}
	}
	rep := run.Report{Jobs: []run.JobResult{}}
	return rep, f.failWith
}

func (f *fakeSync) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// world writes a fixture config (an OCI layout target, the fake upstream) with schedule.
func world(t *testing.T, schedule string) string {
	t.Helper()
	up := httptest.NewServer(fakeupstream.New(fixture.Fixture()))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	cfg := fixture.Config(fixture.Params{Upstream: up.URL, Registry: "oci:" + filepath.Join(dir, "mirror"), CacheDir: filepath.Join(dir, "cache")})
	cfg = append(cfg, []byte("schedule: '"+schedule+"'\n")...)
	path := filepath.Join(dir, "mirror.yaml")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type harness struct {
	s      *Server
	url    string
	cancel context.CancelFunc
	done   chan error
	fake   *fakeSync
}

func start(t *testing.T, path string, f *fakeSync, mod ...func(*Options)) *harness {
	t.Helper()
	o := Options{ConfigPath: path, Listen: "127.0.0.1:0", Token: token, Sync: f.sync, StopTimeout: 5 * time.Second}
	for _, m := range mod {
		m(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{s: s, url: "http://" + s.Addr(), cancel: cancel, done: make(chan error, 1), fake: f}
	go func() { h.done <- s.Serve(ctx) }()
	t.Cleanup(func() { h.stop(t) })
	return h
}

func (h *harness) stop(t *testing.T) {
	t.Helper()
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func (h *harness) do(t *testing.T, method, path, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); path != "/" && path != "/metrics" && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q: %s", method, path, ct, b)
	}
	var m map[string]any
	if path != "/" && path != "/metrics" && method != http.MethodHead {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("%s %s: not JSON: %s", method, path, b)
		}
	}
	return resp.StatusCode, m
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestScheduleRunsOnTimeWithoutOverlap(t *testing.T) {
	f := &fakeSync{release: make(chan struct{})}
	h := start(t, world(t, "@every 1s"), f)
	eventually(t, "the first scheduled run", func() bool { return f.count() == 1 })
	// While the run is held, ticks come and go: one run is queued, not stacked.
	time.Sleep(2500 * time.Millisecond)
	code, body := h.do(t, "GET", "/api/v1/runs", "", "")
	if code != 200 {
		t.Fatalf("GET runs: %d", code)
	}
	runs := body["runs"].([]any)
	statuses := map[string]int{}
	for _, r := range runs {
		statuses[r.(map[string]any)["status"].(string)]++
	}
	if statuses[Running] != 1 || statuses[Queued] != 1 || len(runs) != 2 {
		t.Fatalf("runs while one is held: %v (want one running, one queued)", statuses)
	}
	close(f.release)
	eventually(t, "the queued run", func() bool { return f.count() >= 2 })
	if f.overlap.Load() {
		t.Fatal("two syncs ran at once")
	}
	// Scheduled runs keep coming, one a second.
	eventually(t, "more scheduled runs", func() bool { return f.count() >= 4 })
	first, ok, _ := h.s.hist.Latest(func(r Run) bool { return r.Trigger == TriggerSchedule && r.Status == Succeeded })
	if !ok || first.Started == nil || first.Finished == nil {
		t.Fatalf("no succeeded scheduled run: %+v", first)
	}
}

func TestPostRun(t *testing.T) {
	f := &fakeSync{release: make(chan struct{}), started: make(chan struct{}, 10)}
	h := start(t, world(t, "0 0 1 1 *"), f) // once a year: only POSTs run

	for _, tt := range []struct {
		name, auth, body string
		want             int
		msg              string
	}{
		{"no token", "", "", 401, "bearer token"},
		{"wrong token", "Bearer nope", "", 401, "bearer token"},
		{"basic auth", "Basic dXNlcjpwYXNz", "", 401, "bearer token"},
		{"not json", "Bearer " + token, "{apps:", 400, "not JSON"},
		{"unknown field", "Bearer " + token, `{"app": ["hello"]}`, 400, "unknown field"},
		{"wrong type", "Bearer " + token, `{"max_versions": "ten"}`, 400, "max_versions"},
		{"unknown app", "Bearer " + token, `{"apps": ["nope"]}`, 400, `no app "nope"`},
		{"bad platform", "Bearer " + token, `{"platforms": ["linux/amd46"]}`, 400, "platforms"},
		{"negative max", "Bearer " + token, `{"max_versions": -1}`, 400, "max_versions"},
		{"two values", "Bearer " + token, `{} {}`, 400, "more than one"},
	} {
		code, body := h.do(t, "POST", "/api/v1/runs", tt.auth, tt.body)
		if code != tt.want || !strings.Contains(fmt.Sprint(body["error"]), tt.msg) {
			t.Errorf("%s: %d %v, want %d with %q", tt.name, code, body, tt.want, tt.msg)
		}
	}
	if f.count() != 0 {
		t.Fatalf("refused POSTs ran %d syncs", f.count())
	}

	req := `{"apps": ["hello"], "max_versions": 2, "platforms": ["linux/arm64"]}`
	code, first := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, req)
	if code != 202 || first["id"] == "" || first["trigger"] != TriggerAPI {
		t.Fatalf("POST: %d %v", code, first)
	}
	<-f.started
	// The request reached the sync as config overrides.
	f.mu.Lock()
	cfg := f.calls[0]
	f.mu.Unlock()
	if len(cfg.Apps) != 1 || cfg.Apps[0].Name != "hello" || cfg.Apps[0].Versions.Max != 2 ||
		len(cfg.Apps[0].Platforms) != 1 || cfg.Apps[0].Platforms[0].String() != "linux/arm64" {
		t.Fatalf("sync got apps %+v", cfg.Apps[0])
	}
	if h.s.config().App("hello").Versions.Max == 2 || len(h.s.config().Apps) != 3 {
		t.Fatal("a run's overrides changed the service's config")
	}
	// While it runs: a second POST is queued, a third with the same request is that one, a
	// different one is a conflict.
	code, second := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, "")
	code2, third := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, "  ")
	if code != 202 || code2 != 202 || second["id"] != third["id"] || second["id"] == first["id"] {
		t.Fatalf("queued POSTs: %d %v / %d %v", code, second["id"], code2, third["id"])
	}
	code, conflict := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, `{"apps": ["twostep"]}`)
	if code != 409 || conflict["run"].(map[string]any)["id"] != second["id"] {
		t.Fatalf("conflicting POST: %d %v", code, conflict)
	}
	close(f.release)
	eventually(t, "the queued run", func() bool {
		code, r := h.do(t, "GET", "/api/v1/runs/"+second["id"].(string), "", "")
		return code == 200 && r["status"] == Succeeded
	})
	if f.count() != 2 {
		t.Fatalf("%d syncs, want 2", f.count())
	}
}

func TestPostDisabledWithoutToken(t *testing.T) {
	h := start(t, world(t, "0 0 1 1 *"), &fakeSync{}, func(o *Options) { o.Token = "" })
	code, body := h.do(t, "POST", "/api/v1/runs", "Bearer anything", "")
	if code != 403 || !strings.Contains(fmt.Sprint(body["error"]), "ARCHMIRROR_API_TOKEN") {
		t.Fatalf("POST without a configured token: %d %v", code, body)
	}
}

func TestReadEndpoints(t *testing.T) {
	f := &fakeSync{failWith: fmt.Errorf("registry unreachable")}
	h := start(t, world(t, "0 0 1 1 *"), f)
	eventually(t, "ready", func() bool { code, _ := h.do(t, "GET", "/readyz", "", ""); return code == 200 })

	code, body := h.do(t, "GET", "/api/v1/apps", "", "")
	apps := body["apps"].([]any)
	if code != 200 || len(apps) != 3 {
		t.Fatalf("apps: %d %v", code, body)
	}
	hello := apps[0].(map[string]any)
	if hello["name"] != "hello" || hello["behind"].(float64) != 4 || hello["latest"] == "" {
		t.Fatalf("hello: %v", hello)
	}
	v := hello["versions"].([]any)[0].(map[string]any)["components"].([]any)[0].(map[string]any)
	if v["status"] != "missing" || v["platforms"].(map[string]any)["linux/arm64"].(map[string]any)["state"] != CellMissing {
		t.Fatalf("hello's first version: %v", v)
	}

	_, run := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, "")
	eventually(t, "the run to fail", func() bool {
		_, r := h.do(t, "GET", "/api/v1/runs/"+run["id"].(string), "", "")
		return r["status"] == Failed
	})
	_, r := h.do(t, "GET", "/api/v1/runs/"+run["id"].(string), "", "")
	if !strings.Contains(r["error"].(string), "registry unreachable") {
		t.Fatalf("failed run: %v", r)
	}

	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/runs/nope", 404},
		{"GET", "/api/v1/nothing", 404},
		{"GET", "/nothing", 404},
		{"DELETE", "/api/v1/runs", 405},
		{"POST", "/api/v1/apps", 405},
		{"PUT", "/healthz", 405},
		{"GET", "/api/v1/runs?limit=0", 400},
		{"GET", "/api/v1/runs?limit=x", 400},
		{"GET", "/healthz", 200},
		{"GET", "/api/v1/runs?limit=1", 200},
	} {
		if code, body := h.do(t, tt.method, tt.path, "", ""); code != tt.want {
			t.Errorf("%s %s: %d %v, want %d", tt.method, tt.path, code, body, tt.want)
		}
	}

	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`archmirror_runs_total{outcome="failed"} 1`,
		`archmirror_versions_behind{app="hello"} 4`,
		`archmirror_upstream_ratelimit_remaining{host="127.0.0.1:`,
		"archmirror_run_duration_seconds_bucket",
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	resp, err = http.Get(h.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(page, []byte(`data-app="hello"`)) || !bytes.Contains(page, []byte(run["id"].(string))) {
		t.Fatalf("status page: %d\n%s", resp.StatusCode, page)
	}
}

func TestRestartKeepsHistory(t *testing.T) {
	path := world(t, "0 0 1 1 *")
	f := &fakeSync{}
	h := start(t, path, f)
	var ids []string
	for range 3 {
		_, r := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, "")
		id := r["id"].(string)
		eventually(t, "run "+id, func() bool { _, r := h.do(t, "GET", "/api/v1/runs/"+id, "", ""); return r["status"] == Succeeded })
		ids = append(ids, id)
	}
	h.stop(t)

	h = start(t, path, f)
	_, body := h.do(t, "GET", "/api/v1/runs", "", "")
	runs := body["runs"].([]any)
	if len(runs) != 3 || runs[0].(map[string]any)["id"] != ids[2] || runs[2].(map[string]any)["id"] != ids[0] {
		t.Fatalf("after a restart: %v, want %v newest first", runs, ids)
	}
	if st := h.s.status(); st.LastRun == nil || st.LastRun.ID != ids[2] {
		t.Fatalf("last run after a restart: %+v", st.LastRun)
	}
}

func TestShutdownCancelsTheRun(t *testing.T) {
	f := &fakeSync{release: make(chan struct{}), started: make(chan struct{}, 1)}
	h := start(t, world(t, "0 0 1 1 *"), f)
	_, running := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, "")
	<-f.started
	_, queued := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, `{"apps": ["hello"]}`)
	t0 := time.Now()
	h.stop(t)
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("shutdown took %s", d)
	}
	// Reopen the history as a new process would and check.
	h2 := start(t, h.s.o.ConfigPath, &fakeSync{})
	for _, id := range []string{running["id"].(string), queued["id"].(string)} {
		code, r := h2.do(t, "GET", "/api/v1/runs/"+id, "", "")
		if code != 200 || r["status"] != Cancelled || r["finished"] == nil {
			t.Errorf("run %s after shutdown: %d %v", id, code, r)
		}
	}
}

func TestReloadKeepsTheOldConfigWhenBroken(t *testing.T) {
	path := world(t, "0 0 1 1 *")
	h := start(t, path, &fakeSync{})
	good, _ := os.ReadFile(path)
	if err := os.WriteFile(path, append(good, []byte("bogus_field: 1\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Reload(); err == nil {
		t.Fatal("a broken config was accepted")
	}
	if st := h.s.status(); !strings.Contains(st.ConfigError, "bogus_field") || len(h.s.config().Apps) != 3 {
		t.Fatalf("after a refused reload: error %q, %d apps", st.ConfigError, len(h.s.config().Apps))
	}
	resp, err := http.Get(h.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte("bogus_field")) {
		t.Error("the status page does not show the refused reload")
	}
	// A good config with one app and another schedule replaces it, and clears the error.
	fixed := strings.Replace(string(good), "schedule: '0 0 1 1 *'", "schedule: '@every 1h'", 1)
	if err := os.WriteFile(path, []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Reload(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new schedule", func() bool {
		st := h.s.status()
		return st.ConfigError == "" && st.Schedule == "@every 1h" && time.Until(st.NextRun) > 50*time.Minute
	})
}

// TestShutdownIsBounded: a sync that ignores cancellation does not keep the service from
// exiting; Serve says why.
func TestShutdownIsBounded(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	started := make(chan struct{}, 1)
	sync := func(ctx context.Context, cfg *config.Config) (run.Report, error) {
		started <- struct{}{}
		<-stuck // ignores ctx
		return run.Report{}, nil
	}
	s, err := New(Options{ConfigPath: world(t, "0 0 1 1 *"), Listen: "127.0.0.1:0", Token: token, StopTimeout: 300 * time.Millisecond,
		Sync: sync, HistoryPath: filepath.Join(t.TempDir(), "h.db")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	if _, err := s.enqueue(TriggerAPI, Request{}); err != nil {
		t.Fatal(err)
	}
	<-started
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "did not stop within 300ms") {
			t.Fatalf("Serve = %v", err)
		}
		if d := time.Since(t0); d > 3*time.Second {
			t.Fatalf("Serve returned %s after its context ended (stop timeout 300ms)", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve waited for a sync that ignores cancellation")
	}
}

// TestListRunsIsPagedSummaries: GET /api/v1/runs answers summaries (no jobs, publications or log
// excerpts) a bounded page at a time, with a cursor to the next; a run by ID is whole.
func TestListRunsIsPagedSummaries(t *testing.T) {
	h := start(t, world(t, "0 0 1 1 *"), &fakeSync{})
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string // oldest first
	for i := range 150 {
		r := Run{RunSummary: RunSummary{ID: newID(t0.Add(time.Duration(i) * time.Minute)), Trigger: TriggerSchedule, Status: Failed, Queued: t0,
			Summary: Summary{Failed: 1}}, Jobs: []Job{{ID: "hello-1.0.0-linux-arm64", Status: "failed", LogExcerpt: "the end of the build log"}},
			Units: []Unit{{App: "hello", Version: "1.0.0", Status: "published"}}, Apps: []AppError{{App: "twostep", Error: "upstream: 503"}}}
		if err := h.s.hist.Put(r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	get := func(path string) (map[string]any, string) {
		t.Helper()
		resp, err := http.Get(h.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if resp.StatusCode != 200 || json.Unmarshal(b, &m) != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return m, string(b)
	}
	page, raw := get("/api/v1/runs?limit=500") // more than a page holds: a full page
	runs := page["runs"].([]any)
	if len(runs) != maxListLimit || runs[0].(map[string]any)["id"] != ids[149] || page["next"] != ids[50] {
		t.Fatalf("limit=500: %d runs, next %v; want %d from %s, next %s", len(runs), page["next"], maxListLimit, ids[149], ids[50])
	}
	for _, field := range []string{`"jobs"`, `"units"`, `"app_errors"`, `"log_excerpt"`} {
		if strings.Contains(raw, field) {
			t.Errorf("the list has %s", field)
		}
	}
	if r := runs[0].(map[string]any); r["status"] != Failed || r["trigger"] != TriggerSchedule || r["summary"].(map[string]any)["Failed"] != 1.0 {
		t.Errorf("a listed run lacks what the list shows: %v", r)
	}
	page, _ = get("/api/v1/runs?limit=500&before=" + page["next"].(string))
	runs = page["runs"].([]any)
	if len(runs) != 50 || runs[0].(map[string]any)["id"] != ids[49] || page["next"] != nil {
		t.Fatalf("the last page: %d runs, next %v; want 50 from %s and no next", len(runs), page["next"], ids[49])
	}
	if page, _ := get("/api/v1/runs"); len(page["runs"].([]any)) != listLimit {
		t.Errorf("the default page has %d runs, want %d", len(page["runs"].([]any)), listLimit)
	}
	if _, raw := get("/api/v1/runs/" + ids[3]); !strings.Contains(raw, "the end of the build log") || !strings.Contains(raw, `"units"`) {
		t.Errorf("a run by ID is not whole: %s", raw)
	}
}

// TestIdleConnectionIsClosed: a keep-alive connection that sends no next request is closed after
// the idle timeout.
func TestIdleConnectionIsClosed(t *testing.T) {
	h := start(t, world(t, "0 0 1 1 *"), &fakeSync{}, func(o *Options) { o.HTTP.Idle = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", h.s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+h.s.Addr()+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("GET /healthz: %d, close %v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	// Idle now: the server hangs up (EOF) well before this deadline.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("an idle keep-alive connection: read %v, %v; want EOF (closed by the server)", n, err)
	}
}

// TestHostCheck: a request whose Host the service does not answer (a DNS-rebinding page's) gets
// 421; loopback names work on loopback, any Host on a wildcard address unless an allow-list says
// otherwise, and probes whatever their Host.
func TestHostCheck(t *testing.T) {
	const answered = -1 // any status but 421
	path := world(t, "0 0 1 1 *")
	for _, tt := range []struct {
		listen  string
		allowed []string
		host    string
		path    string
		want    int
	}{
		{"127.0.0.1:0", nil, "127.0.0.1:8080", "/api/v1/apps", 200},
		{"127.0.0.1:0", nil, "localhost:1234", "/api/v1/apps", 200},
		{"127.0.0.1:0", nil, "LOCALHOST.", "/api/v1/apps", 200},
		{"127.0.0.1:0", nil, "[::1]:8080", "/api/v1/runs", 200},
		{"127.0.0.1:0", nil, "rebind.attacker.example:8080", "/api/v1/runs", 421},
		{"127.0.0.1:0", nil, "rebind.attacker.example", "/", 421},
		{"127.0.0.1:0", nil, "", "/api/v1/apps", 421},
		{"127.0.0.1:0", nil, "rebind.attacker.example", "/healthz", 200},
		{"127.0.0.1:0", []string{"mirror.example.com"}, "mirror.example.com", "/api/v1/apps", 200},
		{"localhost:0", nil, "127.0.0.1:80", "/api/v1/apps", 200},
		{"0.0.0.0:0", nil, "10.1.2.3:8080", "/api/v1/apps", 200},
		{"0.0.0.0:0", nil, "rebind.attacker.example", "/api/v1/apps", 200},
		{"0.0.0.0:0", []string{"mirror.example.com", " other.example "}, "Mirror.Example.com:443", "/api/v1/apps", 200},
		{"0.0.0.0:0", []string{"mirror.example.com", " other.example "}, "other.example", "/metrics", 200},
		{"0.0.0.0:0", []string{"mirror.example.com"}, "rebind.attacker.example", "/api/v1/apps", 421},
		{"0.0.0.0:0", []string{"mirror.example.com"}, "10.1.2.3:8080", "/metrics", 421},
		{"0.0.0.0:0", []string{"mirror.example.com"}, "10.1.2.3:8080", "/healthz", 200},
		{"0.0.0.0:0", []string{"mirror.example.com"}, "10.1.2.3:8080", "/readyz", answered}, // 200 or 503: ready or not
	} {
		h := start(t, path, &fakeSync{}, func(o *Options) {
			o.Listen, o.AllowedHosts = tt.listen, tt.allowed
			o.HistoryPath = filepath.Join(t.TempDir(), "h.db")
		})
		req := httptest.NewRequest("GET", tt.path, nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		h.s.Handler().ServeHTTP(rec, req)
		if rec.Code != tt.want && !(tt.want == answered && rec.Code != 421) {
			t.Errorf("listen %s, allowed %q: GET %s with Host %q: %d %s, want %d", tt.listen, tt.allowed, tt.path, tt.host, rec.Code, rec.Body, tt.want)
		}
		if tt.want == 421 && (!strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") || !strings.Contains(rec.Body.String(), "host not allowed")) {
			t.Errorf("Host %q refused with %q: %s", tt.host, rec.Header().Get("Content-Type"), rec.Body)
		}
		h.stop(t)
	}
}

// TestRunDeadline: a run still going after timeouts.run is cancelled and recorded as failed,
// saying so; the service goes on.
func TestRunDeadline(t *testing.T) {
	path := world(t, "0 0 1 1 *")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(good, []byte("timeouts: {run: 300ms}\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &fakeSync{release: make(chan struct{}), started: make(chan struct{}, 2)} // never released
	h := start(t, path, f)
	_, r := h.do(t, "POST", "/api/v1/runs", "Bearer "+token, "")
	id := r["id"].(string)
	<-f.started
	eventually(t, "the run to end", func() bool {
		_, r = h.do(t, "GET", "/api/v1/runs/"+id, "", "")
		return r["status"] != Running && r["status"] != Queued
	})
	if r["status"] != Failed || r["error"] != "run exceeded its deadline of 300ms (timeouts.run)" {
		t.Fatalf("a run past its deadline: %v", r)
	}
	if f.active.Load() != 0 {
		t.Fatal("the sync is still running after its run's deadline")
	}
	_, r = h.do(t, "POST", "/api/v1/runs", "Bearer "+token, "")
	<-f.started
	if f.count() != 2 {
		t.Fatalf("%d syncs after a second POST, want 2", f.count())
	}
}
