package serve

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Handler is the service's HTTP API, status page and metrics:
//
//	GET  /                    the status page
//	GET  /healthz             200 while the process serves
//	GET  /readyz              200 once the first inspection is done, 503 before and while stopping
//	GET  /metrics             Prometheus metrics
//	POST /api/v1/runs         queue a run (bearer token); body: {"apps", "max_versions", "platforms"}, all optional
//	GET  /api/v1/runs         recent runs' summaries, newest first (no jobs or log excerpts):
//	                          {"runs": [...], "next": ID}; ?limit=N (default 20, at most 100),
//	                          ?before=ID for the page after (next, absent on the last page)
//	GET  /api/v1/runs/{id}    one run, in full: status, per-job results, log excerpts of failed jobs
//	GET  /api/v1/apps         every app: versions, per-platform state, latest, last error
//
// Every error is JSON, {"error": "…"}, with a 4xx status for bad requests, but one: a request
// whose Host the service does not answer (Options.AllowedHosts) gets 421 and a line of text.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.page)
	mux.HandleFunc("/healthz", only("GET", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	mux.HandleFunc("/readyz", only("GET", s.readyz))
	mux.Handle("/metrics", s.m.handler())
	mux.HandleFunc("/api/v1/runs", s.runs)
	mux.HandleFunc("/api/v1/runs/", only("GET", s.runByID))
	mux.HandleFunc("/api/v1/apps", only("GET", s.appsList))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return checkHost(s.host, recoverJSON(s, mux))
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, "no such page: "+r.URL.Path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, "GET, HEAD")
		return
	}
	var buf bytes.Buffer
	if err := RenderStatus(&buf, s.status()); err != nil {
		s.log.Error("status page", "err", err)
		writeError(w, http.StatusInternalServerError, "the status page could not be rendered")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	accepting := s.accepting
	s.mu.Unlock()
	switch {
	case !accepting:
		writeError(w, http.StatusServiceUnavailable, "stopping")
	case !s.ready.Load():
		writeError(w, http.StatusServiceUnavailable, "the first inspection of the target is not done")
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

// maxBody bounds a POST body.
const maxBody = 64 << 10

func (s *Server) runs(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.listRuns(w, r)
	case http.MethodPost:
		s.postRun(w, r)
	default:
		methodNotAllowed(w, "GET, HEAD, POST")
	}
}

func (s *Server) postRun(w http.ResponseWriter, r *http.Request) {
	if s.o.Token == "" {
		writeError(w, http.StatusForbidden, "triggering runs is disabled: start serve with ARCHMIRROR_API_TOKEN set")
		return
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.o.Token)) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="archmirror"`)
		writeError(w, http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer $ARCHMIRROR_API_TOKEN)")
		return
	}
	var req Request
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", maxBody))
		return
	}
	if len(bytes.TrimSpace(body)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, http.StatusBadRequest, "body: "+jsonError(err)+` (want {"apps": [...], "max_versions": N, "platforms": [...]}, all optional)`)
			return
		}
		if dec.More() {
			writeError(w, http.StatusBadRequest, "body: more than one JSON value")
			return
		}
	}
	if _, err := applyRequest(s.config(), req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	run, err := s.enqueue(TriggerAPI, req)
	switch {
	case errors.Is(err, ErrStopping):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, ErrConflict):
		writeJSON(w, http.StatusConflict, map[string]any{
			"error": "another run with another request is queued; it runs after the current one", "run": run})
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		w.Header().Set("Location", "/api/v1/runs/"+run.ID)
		writeJSON(w, http.StatusAccepted, run)
	}
}

// Bounds of GET /api/v1/runs: a page has listLimit summaries unless ?limit= says otherwise, and
// never more than maxListLimit (a larger limit is that many); ?before= pages on.
const (
	listLimit    = 20
	maxListLimit = 100
)

// listRuns answers summaries, newest first, a page at a time: {"runs": [...], "next": ID}, where
// next (absent on the last page) is the before= of the next page.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := listLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit: want 1 to %d", maxListLimit))
			return
		}
		limit = min(n, maxListLimit)
	}
	before := q.Get("before")
	if len(before) > 64 {
		writeError(w, http.StatusBadRequest, "before: not a run ID")
		return
	}
	runs, err := s.hist.Summaries(limit+1, before) // one more says whether there is a next page
	if err != nil {
		writeError(w, http.StatusInternalServerError, "history: "+err.Error())
		return
	}
	page := struct {
		Runs []RunSummary `json:"runs"`
		Next string       `json:"next,omitempty"`
	}{Runs: runs}
	if len(runs) > limit {
		page.Runs = runs[:limit]
		page.Next = runs[limit-1].ID
	}
	if page.Runs == nil {
		page.Runs = []RunSummary{}
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) runByID(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/api/v1/runs/")
	if id == "" || strings.Contains(id, "/") || len(id) > 64 {
		writeError(w, http.StatusNotFound, "no such run")
		return
	}
	run, ok, err := s.hist.Get(id)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, "history: "+err.Error())
	case !ok:
		writeError(w, http.StatusNotFound, "no run "+strconv.Quote(id))
	default:
		writeJSON(w, http.StatusOK, run)
	}
}

func (s *Server) appsList(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	apps := s.apps
	s.mu.Unlock()
	if apps == nil {
		apps = []App{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": apps})
}

// only allows one method (and HEAD with GET).
func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			methodNotAllowed(w, method)
			return
		}
		h(w, r)
	}
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed; allowed: "+allow)
}

// recoverJSON turns a handler's panic into a logged 500 with a JSON body, and keeps the
// service up.
func recoverJSON(s *Server, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("http handler panicked", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// jsonError says what is wrong with a JSON body without echoing it.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("not JSON (at byte %d)", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("%s: want %s", te.Field, te.Type)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
