// Package fakeupstream is an in-process stand-in for the upstreams archmirror reads: GitHub's
// releases API, GitLab's tags API, a plain file server (release tarballs, per-arch binaries)
// and git repositories over smart HTTP (build contexts). Its answers have the real APIs'
// shapes, headers (Link, ETag, X-Next-Page, X-RateLimit-*) and conditional-request behaviour,
// so tests, benchmarks and demos exercise the same code paths as production without a network.
//
//	srv := httptest.NewServer(fakeupstream.New(fakeupstream.Fixture{...}))
//	discover.NewGitHub("acme/app", discover.WithAPI(srv.URL))
package fakeupstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Fixture is what the fake upstream serves.
type Fixture struct {
	GitHub map[string][]Release // "owner/repo" → releases in API order (newest first)
	GitLab map[string][]Tag     // "group/sub/project" → tags in API order
	Files  map[string][]byte    // "dir/name" → content, served at /files/dir/name
	// Redirects sends /files/FROM to /files/TO with a 302 (mirrors, CDNs).
	Redirects map[string]string
}

// Release is a GitHub release.
type Release struct {
	Tag        string
	Name       string
	Draft      bool
	Prerelease bool
	Published  time.Time // zero: published_at null (as for drafts)
	Created    time.Time // zero: same as Published
	Commitish  string    // default "main"
	Body       string
	Assets     []Asset
}

// Asset is a file attached to a GitHub release.
type Asset struct {
	Name        string
	Size        int64
	ContentType string // default application/octet-stream
}

// Tag is a GitLab tag.
type Tag struct {
	Name       string
	Commit     string    // 40 hex; default derived from the name
	Committed  time.Time // the commit's date; zero: 2024-01-01
	Created    time.Time // the tag's own created_at; zero: null (lightweight tag)
	Message    string
	Release    bool // has a GitLab release (notes)
	Protected  bool
	CommitBody string
}

// Server is the fake upstream, an http.Handler. Its counters are safe to read at any time.
type Server struct {
	Requests    atomic.Int64 // every request
	OK          atomic.Int64 // answered 200 (or 206) with a body
	NotModified atomic.Int64 // answered 304
	RateLimited atomic.Int64 // answered 403/429 by the rate-limit knob

	mu     sync.Mutex
	fx     Fixture
	hits   map[string]int // by escaped path
	limits []limit
	noHEAD bool
	auth   []string                 // Authorization / PRIVATE-TOKEN values seen, in order
	served int64                    // 200s, for X-RateLimit-Remaining
	holds  map[string]chan struct{} // /files/ prefixes whose GETs wait until the channel closes
	git    map[string]http.Handler  // "/git/NAME.git" → git http-backend for a ServeGit repository
}

// Default page sizes of the real APIs.
const (
	githubPerPage = 30
	gitlabPerPage = 20
)

type limit struct {
	status     int
	reset      time.Time
	retryAfter time.Duration
}

// New returns a fake upstream serving fx. The fixture's maps are copied; use SetReleases,
// SetTags and SetFile to change what it serves.
func New(fx Fixture) *Server {
	s := &Server{hits: map[string]int{}}
	s.fx = Fixture{GitHub: map[string][]Release{}, GitLab: map[string][]Tag{}, Files: map[string][]byte{}, Redirects: map[string]string{}}
	for k, v := range fx.GitHub {
		s.fx.GitHub[k] = append([]Release(nil), v...)
	}
	for k, v := range fx.GitLab {
		s.fx.GitLab[k] = append([]Tag(nil), v...)
	}
	for k, v := range fx.Files {
		s.fx.Files[strings.TrimPrefix(k, "/")] = append([]byte(nil), v...)
	}
	for k, v := range fx.Redirects {
		s.fx.Redirects[strings.TrimPrefix(k, "/")] = strings.TrimPrefix(v, "/")
	}
	return s
}

// SetReleases replaces a repository's releases ("owner/repo").
func (s *Server) SetReleases(repo string, rs []Release) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fx.GitHub[repo] = append([]Release(nil), rs...)
}

// SetTags replaces a GitLab project's tags.
func (s *Server) SetTags(project string, ts []Tag) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fx.GitLab[project] = append([]Tag(nil), ts...)
}

// SetFile sets (or, with nil, removes) a file served at /files/path.
func (s *Server) SetFile(path string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path = strings.TrimPrefix(path, "/")
	if b == nil {
		delete(s.fx.Files, path)
		return
	}
	s.fx.Files[path] = append([]byte(nil), b...)
}

// LimitPrimary answers the next n API requests like GitHub's primary rate limit: 403,
// X-RateLimit-Remaining: 0, X-RateLimit-Reset: reset (unix seconds).
func (s *Server) LimitPrimary(n int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.limits = append(s.limits, limit{status: http.StatusForbidden, reset: reset})
	}
}

// LimitSecondary answers the next n API requests like a secondary rate limit: 429 with
// Retry-After (whole seconds).
func (s *Server) LimitSecondary(n int, retryAfter time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.limits = append(s.limits, limit{status: http.StatusTooManyRequests, retryAfter: retryAfter})
	}
}

// RejectHEAD makes /files answer HEAD with 405 Method Not Allowed, as some object stores do.
func (s *Server) RejectHEAD(reject bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noHEAD = reject
}

// Hits counts the requests whose escaped path starts with prefix.
func (s *Server) Hits(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p, c := range s.hits {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// Credentials returns the Authorization and PRIVATE-TOKEN header values the server has seen.
func (s *Server) Credentials() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

// Hold makes GETs of files whose path (under /files/) starts with prefix wait until release is
// called or the client goes away: a download that takes as long as a test needs (a build caught
// in the middle). HEADs answer at once.
func (s *Server) Hold(prefix string) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	if s.holds == nil {
		s.holds = map[string]chan struct{}{}
	}
	s.holds[prefix] = ch
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.holds, prefix)
			s.mu.Unlock()
			close(ch)
		})
	}
}

func (s *Server) held(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	for prefix, ch := range s.holds {
		if strings.HasPrefix(name, prefix) {
			return ch
		}
	}
	return nil
}

// ServeHTTP routes /repos/{owner}/{repo}/releases, /api/v4/projects/{id}/repository/tags[/{tag}],
// /files/{path} and /git/{name}.git/… (see ServeGit).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.Requests.Add(1)
	path := r.URL.EscapedPath()
	s.mu.Lock()
	s.hits[path]++
	for _, h := range []string{"Authorization", "Private-Token"} {
		if v := r.Header.Get(h); v != "" {
			s.auth = append(s.auth, v)
		}
	}
	s.mu.Unlock()

	switch {
	case strings.HasPrefix(path, "/files/"):
		name := strings.TrimPrefix(r.URL.Path, "/files/")
		if hold := s.held(name); hold != nil && r.Method == http.MethodGet {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		s.serveFile(w, r, name)
		return
	case strings.HasPrefix(path, "/git/"):
		s.serveGit(w, r) // POSTs too: git-upload-pack
		return
	case strings.HasPrefix(path, "/repos/"), strings.HasPrefix(path, "/api/v4/"):
		if s.rateLimited(w) {
			return
		}
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeJSON(w, r, http.StatusMethodNotAllowed, map[string]string{"message": "Method Not Allowed"})
		return
	}
	switch {
	case strings.HasPrefix(path, "/repos/"):
		s.serveReleases(w, r, strings.TrimPrefix(path, "/repos/"))
	case strings.HasPrefix(path, "/api/v4/projects/"):
		s.serveTags(w, r, strings.TrimPrefix(path, "/api/v4/projects/"))
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) rateLimited(w http.ResponseWriter) bool {
	s.mu.Lock()
	if len(s.limits) == 0 {
		s.mu.Unlock()
		return false
	}
	l := s.limits[0]
	s.limits = s.limits[1:]
	s.mu.Unlock()
	s.RateLimited.Add(1)
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if l.status == http.StatusTooManyRequests {
		h.Set("Retry-After", strconv.FormatInt(int64(l.retryAfter/time.Second), 10))
		w.WriteHeader(l.status)
		_, _ = w.Write([]byte(`{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api","status":"429"}`))
		return true
	}
	h.Set("X-RateLimit-Limit", "60")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Used", "60")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(l.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	w.WriteHeader(l.status)
	_, _ = w.Write([]byte(`{"message":"API rate limit exceeded for 203.0.113.7. (But here's the good news: Authenticated requests get a higher rate limit. Check out the documentation for more details.)","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting","status":"403"}`))
	return true
}

// paginate reads per_page and page, GitHub/GitLab style.
func paginate(r *http.Request, n, perPageDefault int) (page, perPage, last int, lo, hi int) {
	q := r.URL.Query()
	perPage, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || perPage < 1 {
		perPage = perPageDefault
	}
	perPage = min(perPage, 100)
	page, err = strconv.Atoi(q.Get("page"))
	if err != nil || page < 1 {
		page = 1
	}
	last = max((n+perPage-1)/perPage, 1)
	lo = min((page-1)*perPage, n)
	hi = min(lo+perPage, n)
	return
}

// linkHeader builds an RFC 8288 Link header for page of last, keeping the request's query.
func linkHeader(r *http.Request, page, last int) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	at := func(p int) string {
		u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath}
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		u.RawQuery = q.Encode()
		return "<" + u.String() + ">"
	}
	var parts []string
	if page > 1 {
		parts = append(parts, at(page-1)+`; rel="prev"`)
	}
	if page < last {
		parts = append(parts, at(page+1)+`; rel="next"`)
	}
	if page < last {
		parts = append(parts, at(last)+`; rel="last"`)
	}
	if page > 1 {
		parts = append(parts, at(1)+`; rel="first"`)
	}
	return strings.Join(parts, ", ")
}

// writePage writes a JSON body with an ETag, answering 304 when If-None-Match matches.
func (s *Server) writePage(w http.ResponseWriter, r *http.Request, v any, weak bool) {
	body, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	if weak {
		etag = "W/" + etag
	}
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=60, s-maxage=60")
	h.Set("Vary", "Accept, Authorization, Cookie")
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		s.NotModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.mu.Lock()
	s.served++
	remaining := max(5000-s.served, 0)
	s.mu.Unlock()
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10))
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	s.OK.Add(1)
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// etagMatch implements If-None-Match's weak comparison.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, c := range strings.Split(header, ",") {
		c = strings.TrimSpace(c)
		if c == "*" || strings.TrimPrefix(c, "W/") == want {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	body, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, path string) {
	s.mu.Lock()
	b, ok := s.fx.Files[path]
	to, redirect := s.fx.Redirects[path]
	noHEAD := s.noHEAD
	s.mu.Unlock()
	switch {
	case r.Method == http.MethodHead && noHEAD:
		w.Header().Set("Allow", "GET")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	case redirect:
		http.Redirect(w, r, "/files/"+to, http.StatusFound)
		return
	case !ok:
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(b)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	cw := &statusWriter{ResponseWriter: w}
	http.ServeContent(cw, r, "", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), bytes.NewReader(b))
	switch cw.status {
	case http.StatusOK, http.StatusPartialContent:
		s.OK.Add(1)
	case http.StatusNotModified:
		s.NotModified.Add(1)
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// hexID derives a stable fake ID (a 40-hex "sha" or a number) from a string.
func hexID(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:20])
}

func numID(s string) int64 {
	sum := sha256.Sum256([]byte(s))
	var n int64
	for _, b := range sum[:4] {
		n = n<<8 | int64(b)
	}
	return 100000000 + n%90000000
}

func notFound(w http.ResponseWriter, r *http.Request, message string) {
	writeJSON(w, r, http.StatusNotFound, map[string]string{"message": message})
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
