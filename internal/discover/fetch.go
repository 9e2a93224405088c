package discover

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/archmirror/archmirror/internal/bounded"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// maxBody bounds every response body read from upstream.
const maxBody = 32 << 20

// rateLimitRetries bounds how many times one request waits for a rate limit.
const rateLimitRetries = 3

// fetcher GETs JSON pages from one API for one source: credentials only to the API's own
// origin, an ETag cache, rate-limit waits, size bounds and errors that name the source.
type fetcher struct {
	name      string   // "github acme/app", the prefix of every error
	origin    *url.URL // scheme://host that receives credentials
	auth      func(h http.Header)
	authHint  string // "set GITHUB_TOKEN or wait"
	client    *http.Client
	cache     *httpCache
	clock     Clock
	maxWait   time.Duration
	log       *slog.Logger
	userAgent string
	accept    string
	extra     http.Header

	remaining atomic.Int64 // last X-RateLimit-Remaining seen, -1 before any
}

// page is one successful (200, or 304 served from the cache) JSON response.
type page struct {
	URL       *url.URL
	Body      []byte
	Header    http.Header // only what pagination needs when served from the cache
	FromCache bool
}

func newFetcher(name string, origin *url.URL, o options) *fetcher {
	f := &fetcher{
		name:      name,
		origin:    origin,
		cache:     newHTTPCache(o.cacheDir),
		clock:     o.clock,
		maxWait:   o.maxWait,
		log:       o.logger,
		userAgent: o.userAgent,
	}
	f.remaining.Store(-1)
	var c http.Client
	if o.client != nil {
		c = *o.client
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := sameHostRedirect(req, via); err != nil {
			return err
		}
		if !sameOrigin(req.URL, f.origin) {
			req.Header.Del("Authorization")
			req.Header.Del("Private-Token")
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	// Server errors and dropped connections are retried by archmirror's one policy; rate
	// limits (403 and 429 with their reset headers) are this fetcher's own business. The host
	// limit is inside them: a retry's backoff does not hold a slot. The header timeout bounds
	// each attempt on the wire, the request timeout all of it, body included.
	c.Transport = requestBound(o.requestTimeout, upstreamRetry.Transport(o.hostLimit.Transport(headerBound(o.headerTimeout, c.Transport))))
	f.client = &c
	return f
}

// upstreamRetry is the retry policy of upstream APIs and downloads: everything but 429.
var upstreamRetry = retry.Policy{Statuses: []int{500, 502, 503, 504}}

// sameHostRedirect refuses an API redirect to another host (a different port is another
// host): an API answers for itself, and a hostile one could otherwise point the fetcher at an
// internal address and read its first bytes back in an error.
func sameHostRedirect(req *http.Request, via []*http.Request) error {
	if len(via) == 0 {
		return nil
	}
	if from := via[0].URL.Host; !strings.EqualFold(req.URL.Host, from) {
		return fmt.Errorf("redirect from %s to %s refused: an API answer must come from the host asked", from, untrusted.Quote(req.URL.Host, 100))
	}
	return nil
}

func sameOrigin(a, b *url.URL) bool {
	return b != nil && strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Host, b.Host)
}

// RateLimit is the last rate-limit remaining count upstream reported, with the API's host; nil
// before any.
func (f *fetcher) RateLimit() *RateLimit {
	n, ok := f.Remaining()
	if !ok || f.origin == nil {
		return nil
	}
	return &RateLimit{Host: f.origin.Host, Remaining: n}
}

// Remaining is the last rate-limit remaining count upstream reported; ok is false before any.
func (f *fetcher) Remaining() (int, bool) {
	n := f.remaining.Load()
	return int(n), n >= 0
}

// get fetches u. what names the request in errors ("releases page 2").
func (f *fetcher) get(ctx context.Context, what string, u *url.URL) (*page, error) {
	if err := f.check(u); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	auth := f.auth != nil && sameOrigin(u, f.origin)
	key := u.String()
	cached, err := f.cache.load(key, auth)
	if err != nil {
		f.log.Debug("ignoring unreadable cache entry", "source", f.name, "err", err)
		cached = nil
	}
	streak := 0 // rate-limit waits of the "at least a minute" kind, for the backoff
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, key, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		req.Header.Set("Accept", f.accept)
		req.Header.Set("User-Agent", f.userAgent)
		for k, vs := range f.extra {
			req.Header[k] = vs
		}
		if auth {
			f.auth(req.Header)
		}
		if cached != nil {
			req.Header.Set("If-None-Match", cached.ETag)
		}
		resp, err := f.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", what, ctx.Err())
			}
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("%s: GET %s: %w", what, u.EscapedPath(), err)
		}
		f.noteRemaining(resp.Header)
		switch {
		case resp.StatusCode == http.StatusNotModified:
			drain(resp)
			if cached == nil {
				return nil, fmt.Errorf("%s: GET %s: 304 Not Modified to a request that had no ETag", what, u.EscapedPath())
			}
			h := http.Header{}
			for k, v := range cached.Header {
				h.Set(k, v)
			}
			return &page{URL: u, Body: cached.Body, Header: h, FromCache: true}, nil

		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
			body := readPrefix(resp.Body, 4<<10)
			resp.Body.Close()
			wait, until, limited, backoff := f.rateLimit(resp, body, streak)
			if !limited {
				return nil, fmt.Errorf("%s: GET %s: %s%s", what, u.EscapedPath(), resp.Status, apiMessage(body))
			}
			if backoff {
				streak++
			}
			if wait > f.maxWait || attempt >= rateLimitRetries {
				return nil, fmt.Errorf("%s: %w", what, &RateLimitError{Until: until, Hint: f.authHint})
			}
			f.log.InfoContext(ctx, "rate limited, waiting", "source", f.name, "status", resp.StatusCode, "wait", wait.Round(time.Second), "until", until.UTC().Format(time.TimeOnly))
			if err := f.clock.Sleep(ctx, wait); err != nil {
				return nil, fmt.Errorf("%s: waiting for rate limit: %w", what, err)
			}
			continue

		case resp.StatusCode != http.StatusOK:
			body := readPrefix(resp.Body, 4<<10)
			resp.Body.Close()
			return nil, fmt.Errorf("%s: GET %s: %s%s", what, u.EscapedPath(), resp.Status, apiMessage(body))
		}

		body, err := bounded.Read(resp.Body, maxBody, "body")
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: GET %s: %s: %w", what, u.EscapedPath(), resp.Status, err)
		}
		if err := checkJSON(resp.Header.Get("Content-Type"), body); err != nil {
			return nil, fmt.Errorf("%s: GET %s: %s: %w", what, u.EscapedPath(), resp.Status, err)
		}
		if etag := resp.Header.Get("ETag"); etag != "" && f.cache != nil {
			p := &cachedPage{Status: resp.StatusCode, ETag: etag, Body: body, Header: map[string]string{}}
			for _, k := range cachedHeaders {
				if v := resp.Header.Get(k); v != "" {
					p.Header[k] = v
				}
			}
			if err := f.cache.store(key, auth, p); err != nil {
				f.log.Warn("cannot write http cache", "source", f.name, "err", err)
			}
		}
		return &page{URL: u, Body: body, Header: resp.Header}, nil
	}
}

// check refuses URLs outside the API's origin: a Link header is upstream data, and following
// it elsewhere would leak requests (and, with a different policy, credentials).
func (f *fetcher) check(u *url.URL) error {
	if !sameOrigin(u, f.origin) {
		return fmt.Errorf("refusing to follow %s://%s: not the API host %s", u.Scheme, u.Host, f.origin.Host)
	}
	return nil
}

func (f *fetcher) noteRemaining(h http.Header) {
	v := firstHeader(h, "X-RateLimit-Remaining", "RateLimit-Remaining")
	if v == "" {
		return
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n >= 0 {
		f.remaining.Store(n)
	}
}

// rateLimit reads a 403/429 answer and the first bytes of its body: how long to wait, and
// until when. It follows GitHub's advice for its primary and secondary limits, and reads
// GitLab's headers the same way:
//   - Retry-After, when the answer has one;
//   - else, when the limit is spent (remaining 0, or a 429 that says when it resets and
//     nothing of what remains), until the reset;
//   - else, for a 429 or a 403 whose message says it is a secondary rate limit, at least a
//     minute, doubled for each such wait the request already made (streak); backoff is true
//     for this kind of wait.
//
// limited is false for a 403 that is a plain "forbidden".
func (f *fetcher) rateLimit(resp *http.Response, body []byte, streak int) (wait time.Duration, until time.Time, limited, backoff bool) {
	now := f.clock.Now()
	if ra := strings.TrimSpace(resp.Header.Get("Retry-After")); ra != "" {
		if s, err := strconv.ParseInt(ra, 10, 64); err == nil && s >= 0 {
			d := time.Duration(min(s, int64(365*24*3600))) * time.Second
			return d, now.Add(d), true, false
		}
		if t, err := http.ParseTime(ra); err == nil {
			d := max(t.Sub(now), 0)
			return d, t, true, false
		}
	}
	remaining := strings.TrimSpace(firstHeader(resp.Header, "X-RateLimit-Remaining", "RateLimit-Remaining"))
	spent := remaining == "0"
	// A 429 that says nothing of what remains is a spent limit too (GitLab may send only
	// RateLimit-Reset); one that says requests remain is a secondary limit: its reset is the
	// primary window's, not its own.
	if spent || (resp.StatusCode == http.StatusTooManyRequests && remaining == "") {
		if t, ok := resetTime(resp.Header); ok {
			d := max(t.Sub(now), 0) + time.Second // the reset second itself may still be limited
			return d, t, true, false
		}
	}
	if spent || resp.StatusCode == http.StatusTooManyRequests || secondaryLimit(body) {
		d := time.Minute << min(streak, 16)
		return d, now.Add(d), true, true
	}
	return 0, time.Time{}, false, false
}

// resetTime reads when a rate limit resets: X-RateLimit-Reset (GitHub) or RateLimit-Reset
// (GitLab) in Unix seconds, else GitLab's RateLimit-ResetTime as an HTTP date.
func resetTime(h http.Header) (time.Time, bool) {
	reset := strings.TrimSpace(firstHeader(h, "X-RateLimit-Reset", "RateLimit-Reset"))
	if s, err := strconv.ParseInt(reset, 10, 64); err == nil && s > 0 && s < 1<<40 {
		return time.Unix(s, 0), true
	}
	if t, err := http.ParseTime(strings.TrimSpace(h.Get("RateLimit-ResetTime"))); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// secondaryLimit reports whether a 403's body is GitHub's secondary rate limit ("You have
// exceeded a secondary rate limit", formerly "abuse detection mechanism"), which may come
// without any rate-limit header.
func secondaryLimit(body []byte) bool {
	b := bytes.ToLower(body)
	return bytes.Contains(b, []byte("secondary rate limit")) || bytes.Contains(b, []byte("abuse detection"))
}

// RateLimitError is returned when upstream's rate limit resets later than the source is
// willing to wait.
type RateLimitError struct {
	Until time.Time
	Hint  string // "set GITHUB_TOKEN or wait"
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited until %s (%s)", e.Until.UTC().Format("15:04:05 MST"), e.Hint)
}

func firstHeader(h http.Header, keys ...string) string {
	for _, k := range keys {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// readPrefix reads at most limit bytes, for an error message: a longer body is cut, not an
// error.
func readPrefix(r io.Reader, limit int64) []byte {
	b, _ := io.ReadAll(io.LimitReader(r, limit))
	return b
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// checkJSON rejects what is not a JSON document: an HTML error page from a proxy, a body cut
// short.
func checkJSON(contentType string, body []byte) error {
	if contentType != "" {
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return fmt.Errorf("not JSON (Content-Type %s; body starts %s)", untrusted.Quote(contentType, 64), untrusted.Quote(string(body), 32))
		}
	}
	if !json.Valid(body) {
		var raw json.RawMessage
		err := json.Unmarshal(body, &raw)
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset >= int64(len(body)) {
			return fmt.Errorf("truncated JSON (%d bytes)", len(body))
		}
		if err == nil {
			err = errors.New("not a single JSON value")
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	return nil
}

// apiMessage extracts an API error's "message" field, quoted, for an error; "" if none.
func apiMessage(body []byte) string {
	var m struct {
		Message any `json:"message"`
		Error   any `json:"error"`
	}
	if json.Unmarshal(bytes.TrimSpace(body), &m) != nil {
		return ""
	}
	for _, v := range []any{m.Message, m.Error} {
		if s, ok := v.(string); ok && s != "" {
			return ": " + untrusted.Quote(s, 120)
		}
	}
	return ""
}

// parseLinkNext returns the rel="next" target of an RFC 8288 Link header, resolved against
// base; nil when there is none.
func parseLinkNext(header string, base *url.URL) (*url.URL, error) {
	for _, part := range splitLinks(header) {
		part = strings.TrimSpace(part)
		if !strings.HasPrefix(part, "<") {
			continue
		}
		end := strings.IndexByte(part, '>')
		if end < 0 {
			continue
		}
		target := part[1:end]
		next := false
		for _, param := range strings.Split(part[end+1:], ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(param), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "rel") {
				continue
			}
			for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(v), `"`)) {
				if strings.EqualFold(rel, "next") {
					next = true
				}
			}
		}
		if !next {
			continue
		}
		u, err := base.Parse(target)
		if err != nil {
			return nil, fmt.Errorf("link header: bad next URL %s", untrusted.Quote(target, 120))
		}
		return u, nil
	}
	return nil, nil
}

// splitLinks splits a Link header on the commas between links (not those inside <...>).
func splitLinks(h string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '<':
			depth++
		case '>':
			if depth > 0 {
				depth--
			}
		case ',':
			if depth == 0 {
				parts = append(parts, h[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, h[start:])
}

// paginate GETs first and each following page (as next finds it) up to maxPages, decoding
// every page. A Link loop ends the walk instead of spinning to the bound; a page with more
// than the perPage entries asked for is an error (no API sends more, and each entry costs a
// skip and a log line). noun names the pages in errors and logs ("releases page 2").
func (f *fetcher) paginate(ctx context.Context, first *url.URL, noun string, maxPages, perPage int,
	decode func([]byte) ([]Release, error), next func(*page, *url.URL) (*url.URL, error)) ([]Release, error) {
	var out []Release
	seen := map[string]bool{}
	for n, u := 1, first; u != nil; n++ {
		if n > maxPages {
			f.log.WarnContext(ctx, "more "+noun+" than max_pages; keeping the first pages", "source", f.name, "max_pages", maxPages)
			break
		}
		what := fmt.Sprintf("%s page %d", noun, n)
		seen[u.String()] = true
		p, err := f.get(ctx, what, u)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		rels, err := decode(p.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: GET %s: %w", f.name, what, u.EscapedPath(), err)
		}
		if perPage > 0 && len(rels) > perPage {
			return nil, fmt.Errorf("%s: %s: GET %s: %d %s on a page of %d", f.name, what, u.EscapedPath(), len(rels), noun, perPage)
		}
		out = append(out, rels...)
		nu, err := next(p, u)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", f.name, what, err)
		}
		if nu != nil && seen[nu.String()] {
			nu = nil
		}
		u = nu
	}
	return out, nil
}
