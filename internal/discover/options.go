package discover

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/hostlimit"
	"github.com/archmirror/archmirror/internal/retry"
)

// Option configures a source, a gate or the pipeline. Each takes the options that concern it
// and ignores the others, so one option list can be passed everywhere.
type Option func(*options)

type options struct {
	client    *http.Client
	token     string
	tokenSet  bool
	api       string // GitHub API base
	baseURL   string // GitLab scheme://host override
	cacheDir  string
	clock     Clock
	maxWait   time.Duration
	maxPages  int
	perPage   int
	insecure  bool
	keychain  authn.Keychain
	logger    *slog.Logger
	userAgent string
	hostLimit *hostlimit.Limit

	headerTimeout  time.Duration
	requestTimeout time.Duration
}

func newOptions(opts []Option) options {
	o := options{
		clock:     realClock{},
		maxWait:   config.DefaultRateLimitWait,
		maxPages:  10,
		perPage:   100,
		keychain:  authn.DefaultKeychain,
		userAgent: "archmirror",

		headerTimeout:  config.DefaultHeaderTimeout,
		requestTimeout: config.DefaultRequestTimeout,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	if o.hostLimit == nil {
		o.hostLimit = hostlimit.New(DefaultHostConcurrency)
	}
	if o.maxPages <= 0 {
		o.maxPages = 10
	}
	if o.perPage <= 0 || o.perPage > 100 {
		o.perPage = 100
	}
	return o
}

// WithToken sets a source's own API token (GitHub: Authorization: Bearer; GitLab:
// PRIVATE-TOKEN). It is sent only to the source's API host, and never over plain HTTP but to
// a loopback address. An empty token sends none at all (token: none): no $GITHUB_TOKEN or
// $GITLAB_TOKEN either, for the source and for its gates. A gate never sends a source's own
// token.
func WithToken(token string) Option {
	return func(o *options) { o.token, o.tokenSet = token, true }
}

// WithAPI sets the GitHub API base URL (GitHub Enterprise: https://ghe.example/api/v3).
func WithAPI(base string) Option { return func(o *options) { o.api = base } }

// WithBaseURL sets the GitLab source's scheme and host ("http://127.0.0.1:8080"), for tests
// and instances served over plain HTTP. The default is https://{host}. gitlab-tag gates always
// use https://{host}; tests send them elsewhere with WithHTTPClient (fakeupstream.Reroute).
func WithBaseURL(base string) Option { return func(o *options) { o.baseURL = base } }

// WithCacheDir keeps an ETag cache of API responses in dir. No cache when dir is "".
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithClock replaces the wall clock used for rate-limit waits (tests).
func WithClock(c Clock) Option {
	return func(o *options) {
		if c != nil {
			o.clock = c
		}
	}
}

// WithRateLimitWait bounds how long a source waits for a rate limit to reset before it gives
// up with a RateLimitError. Default config.DefaultRateLimitWait.
func WithRateLimitWait(d time.Duration) Option { return func(o *options) { o.maxWait = d } }

// WithMaxPages bounds pagination (default 10).
func WithMaxPages(n int) Option { return func(o *options) { o.maxPages = n } }

// WithPerPage sets the page size asked of paginated APIs (1..100, default 100).
func WithPerPage(n int) Option { return func(o *options) { o.perPage = n } }

// WithTimeouts bounds every request of discovery (API pages, gates, registry requests, git
// ls-remote): its answer's headers must come within header, and the whole request — retries
// and body included — ends after request. A peer that accepts and never answers fails its own
// source with an error naming the host. Zero keeps a default (config.DefaultHeaderTimeout,
// config.DefaultRequestTimeout).
func WithTimeouts(header, request time.Duration) Option {
	return func(o *options) {
		if header > 0 {
			o.headerTimeout = header
		}
		if request > 0 {
			o.requestTimeout = request
		}
	}
}

// WithInsecure lets the registry source use plain HTTP or unverified TLS with its own registry
// (the source's insecure: true); without it, plain HTTP goes to a loopback registry only.
func WithInsecure(insecure bool) Option { return func(o *options) { o.insecure = insecure } }

// WithHTTPClient sets the HTTP client. Sources copy it and install their own redirect policy,
// so the caller's client is never modified.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// WithHostLimit makes the sources and gates share l (requests in flight per host): an upstream
// counts a process's requests, not a source's, so pass the same l to every source of a run.
// Without it, each source and gate has a limit of DefaultHostConcurrency of its own;
// hostlimit.New(0) lifts the bound.
func WithHostLimit(l *hostlimit.Limit) Option {
	return func(o *options) {
		if l != nil {
			o.hostLimit = l
		}
	}
}

// WithKeychain sets the registry source's credentials (default authn.DefaultKeychain).
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) {
		if k != nil {
			o.keychain = k
		}
	}
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithUserAgent sets the User-Agent sent upstream (default "archmirror").
func WithUserAgent(ua string) Option {
	return func(o *options) {
		if ua != "" {
			o.userAgent = ua
		}
	}
}

// Clock is the time source for rate-limit waits.
type Clock interface {
	Now() time.Time
	// Sleep waits d or until ctx is done, whichever comes first, and returns ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error { return retry.Sleep(ctx, d) }
