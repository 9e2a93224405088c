package discover

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/fakeupstream"
)

// limited is one rate-limit answer: a status, headers and a body.
type limited struct {
	status int
	header map[string]string
	body   string
}

const (
	secondaryBody = `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 1234:5678.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits","status":"403"}`
	abuseBody     = `{"message":"You have triggered an abuse detection mechanism. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#abuse-rate-limits"}`
	primaryBody   = `{"message":"API rate limit exceeded for 203.0.113.7.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}`
	gitlabBody    = `Retry later`
)

func times(n int, l limited) []limited {
	out := make([]limited, n)
	for i := range out {
		out[i] = l
	}
	return out
}

// limitFirst answers the first requests with answers, in order, then forwards to next.
func limitFirst(next http.Handler, answers []limited, requests *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(requests.Add(1)) - 1
		if n >= len(answers) {
			next.ServeHTTP(w, r)
			return
		}
		a := answers[n]
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if strings.HasPrefix(a.body, "{") {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	})
}

// TestRateLimitWaits asserts the wait chosen for each kind of rate-limit answer, GitHub's
// (primary, secondary with and without headers, repeated) and GitLab's, on the fake clock.
func TestRateLimitWaits(t *testing.T) {
	now := newFakeClock().Now() // 11:00:00 UTC
	unix := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	// GitHub sends its primary window's headers on every answer, secondary limits included.
	primaryWindow := map[string]string{"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4990", "X-RateLimit-Reset": unix(50 * time.Minute)}
	secondary403 := limited{status: 403, body: secondaryBody}
	tests := []struct {
		name     string
		gitlab   bool
		answers  []limited
		maxWait  time.Duration // 0: the default (2m)
		want     []time.Duration
		wantErr  string // "" for success after the waits
		rateErr  bool   // the error is a *RateLimitError
		requests int64
	}{
		{
			name:    "github secondary 403 with Retry-After",
			answers: []limited{{status: 403, header: map[string]string{"Retry-After": "30"}, body: secondaryBody}},
			want:    []time.Duration{30 * time.Second},
		},
		{
			name:    "github secondary 403 without any header: a minute",
			answers: []limited{secondary403},
			want:    []time.Duration{time.Minute},
		},
		{
			name:    "github secondary 403 with the primary window's headers: a minute, not the window's reset",
			answers: []limited{{status: 403, header: primaryWindow, body: secondaryBody}},
			want:    []time.Duration{time.Minute},
		},
		{
			name:    "github secondary 429 without any header",
			answers: []limited{{status: 429, body: secondaryBody}},
			want:    []time.Duration{time.Minute},
		},
		{
			name:    "github secondary 429 with the primary window's headers",
			answers: []limited{{status: 429, header: primaryWindow, body: secondaryBody}},
			want:    []time.Duration{time.Minute},
		},
		{
			name:    "github abuse detection, the older wording",
			answers: []limited{{status: 403, body: abuseBody}},
			want:    []time.Duration{time.Minute},
		},
		{
			name:    "repeated secondary limits back off exponentially",
			answers: times(2, secondary403),
			want:    []time.Duration{time.Minute, 2 * time.Minute},
		},
		{
			name:    "repeated secondary limits, patient",
			answers: times(3, secondary403),
			maxWait: 10 * time.Minute,
			want:    []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute},
		},
		{
			name:    "repeated secondary limits: the next wait exceeds the bound",
			answers: times(3, secondary403),
			want:    []time.Duration{time.Minute, 2 * time.Minute},
			wantErr: "github acme/app: releases page 1: rate limited until 11:07:00 UTC (set GITHUB_TOKEN or wait)", rateErr: true,
		},
		{
			name:    "repeated secondary limits: the retry bound",
			answers: times(4, secondary403),
			maxWait: time.Hour,
			want:    []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute},
			wantErr: "rate limited", rateErr: true,
		},
		{
			name:    "Retry-After does not grow the backoff",
			answers: []limited{secondary403, {status: 403, header: map[string]string{"Retry-After": "5"}, body: secondaryBody}, secondary403},
			want:    []time.Duration{time.Minute, 5 * time.Second, 2 * time.Minute},
		},
		{
			name:    "secondary 403 with remaining 0: until the reset",
			answers: []limited{{status: 403, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": unix(45 * time.Second)}, body: secondaryBody}},
			want:    []time.Duration{46 * time.Second},
		},
		{
			name:    "primary 403, remaining 0, no reset: a minute",
			answers: []limited{{status: 403, header: map[string]string{"X-RateLimit-Remaining": "0"}, body: primaryBody}},
			want:    []time.Duration{time.Minute},
		},
		{
			name:    "Retry-After as an HTTP date",
			answers: []limited{{status: 429, header: map[string]string{"Retry-After": now.Add(75 * time.Second).Format(http.TimeFormat)}, body: secondaryBody}},
			want:    []time.Duration{75 * time.Second},
		},
		{
			name:    "Retry-After in the past: at once",
			answers: []limited{{status: 429, header: map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, body: secondaryBody}},
			want:    []time.Duration{0},
		},
		{
			name:     "plain 403 is not a rate limit",
			answers:  []limited{{status: 403, body: `{"message":"Must have admin rights to Repository."}`}},
			wantErr:  `releases page 1: GET /repos/acme/app/releases: 403 Forbidden: "Must have admin rights to Repository."`,
			requests: 1,
		},
		{
			name:     "403 whose JSON message is cut at 4 KiB still names its reason",
			answers:  []limited{{status: 403, body: `{"message":"You have exceeded a secondary rate limit` + strings.Repeat(".", 8<<10) + `"}`}},
			want:     []time.Duration{time.Minute},
			requests: 2,
		},
		{
			name:    "gitlab 429 with RateLimit-Reset only",
			gitlab:  true,
			answers: []limited{{status: 429, header: map[string]string{"RateLimit-Reset": unix(20 * time.Second)}, body: gitlabBody}},
			want:    []time.Duration{21 * time.Second},
		},
		{
			name:   "gitlab 429 with its full header set: Retry-After wins",
			gitlab: true,
			answers: []limited{{status: 429, header: map[string]string{
				"RateLimit-Limit": "600", "RateLimit-Observed": "601", "RateLimit-Remaining": "0",
				"RateLimit-Reset": unix(40 * time.Second), "RateLimit-ResetTime": now.Add(40 * time.Second).Format(http.TimeFormat),
				"Retry-After": "38",
			}, body: gitlabBody}},
			want: []time.Duration{38 * time.Second},
		},
		{
			name:    "gitlab 429 with RateLimit-ResetTime only",
			gitlab:  true,
			answers: []limited{{status: 429, header: map[string]string{"RateLimit-ResetTime": now.Add(90 * time.Second).Format(http.TimeFormat)}, body: gitlabBody}},
			want:    []time.Duration{91 * time.Second},
		},
		{
			name:    "gitlab 429 resetting beyond the bound",
			gitlab:  true,
			answers: []limited{{status: 429, header: map[string]string{"RateLimit-Remaining": "0", "RateLimit-Reset": unix(time.Hour)}, body: gitlabBody}},
			wantErr: "gitlab framagit.org " + mmProject + ": tags page 1: rate limited until 12:00:00 UTC (set GITLAB_TOKEN or wait)", rateErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := fakeupstream.Fixture{
				GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(3)},
				GitLab: map[string][]fakeupstream.Tag{mmProject: glTags(3)},
			}
			var requests atomic.Int64
			srv := httptest.NewServer(limitFirst(fakeupstream.New(fx), tt.answers, &requests))
			defer srv.Close()
			clock := newFakeClock()
			opts := hermetic(WithClock(clock), WithAPI(srv.URL), WithBaseURL(srv.URL))
			if tt.maxWait > 0 {
				opts = append(opts, WithRateLimitWait(tt.maxWait))
			}
			var src Source = NewGitHub("acme/app", opts...)
			if tt.gitlab {
				src = NewGitLab("framagit.org", mmProject, opts...)
			}
			got, err := src.Releases(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v\nwant it to contain %q", err, tt.wantErr)
				}
				var rl *RateLimitError
				if errors.As(err, &rl) != tt.rateErr {
					t.Errorf("err is a *RateLimitError: %v, want %v", !tt.rateErr, tt.rateErr)
				}
			} else if err != nil || len(got) != 3 {
				t.Fatalf("got %d releases, err %v; want 3", len(got), err)
			}
			clock.mu.Lock()
			slept := clock.slept
			clock.mu.Unlock()
			if !reflect.DeepEqual(slept, tt.want) && (len(slept) != 0 || len(tt.want) != 0) {
				t.Errorf("waited %v, want %v", slept, tt.want)
			}
			wantReq := tt.requests
			if wantReq == 0 {
				wantReq = int64(len(tt.want)) + 1
			}
			if requests.Load() != wantReq {
				t.Errorf("%d requests, want %d", requests.Load(), wantReq)
			}
		})
	}
}
