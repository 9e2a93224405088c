package discover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/hostlimit"
	"github.com/archmirror/archmirror/internal/tlsscope"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// A registry lists tags in name order, not by date, so max_pages does not apply to it: cutting
// the list short would drop arbitrary versions. These bounds stop a registry that paginates
// forever instead; past them the listing is an error.
const (
	registryMaxPages = 1000
	registryMaxTags  = 100_000
)

// Registry lists the tags of an upstream image repository. Registries know no dates, so a
// registry source's versions are ordered by semver.
type Registry struct {
	repo           string
	insecure       bool
	keychain       authn.Keychain
	client         *http.Client
	userAgent      string
	hostLimit      *hostlimit.Limit
	headerTimeout  time.Duration
	requestTimeout time.Duration
}

// NewRegistry returns the tags source of an image repository ("docker.io/library/nginx").
// Credentials come from the keychain (default: the Docker config, as docker login writes it).
// Plain HTTP goes to a loopback registry only, unless WithInsecure (the source's insecure:
// true) allows it for this registry.
func NewRegistry(repo string, opts ...Option) *Registry {
	o := newOptions(opts)
	return &Registry{repo: repo, insecure: o.insecure, keychain: o.keychain, client: o.client, userAgent: o.userAgent, hostLimit: o.hostLimit,
		headerTimeout: o.headerTimeout, requestTimeout: o.requestTimeout}
}

// String is "registry REPO".
func (r *Registry) String() string { return "registry " + r.repo }

// Releases lists the repository's tags.
func (r *Registry) Releases(ctx context.Context) ([]Release, error) {
	var nopts []name.Option
	if r.insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.NewRepository(r.repo, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", untrusted.Quote(r.repo, 120), err)
	}
	var base http.RoundTripper
	switch {
	case r.client != nil && r.client.Transport != nil:
		base = r.client.Transport
	case r.insecure:
		t, ok := remote.DefaultTransport.(*http.Transport)
		if !ok {
			t = http.DefaultTransport.(*http.Transport)
		}
		base = tlsscope.Insecure(t, ref.RegistryStr()) // unverified TLS for this host only
	default:
		base = remote.DefaultTransport
	}
	base = httpsOnly(ref.RegistryStr(), r.insecure, base)
	puller, err := remote.NewPuller(
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.keychain),
		remote.WithUserAgent(r.userAgent),
		remote.WithTransport(limitBodies(requestBound(r.requestTimeout, r.hostLimit.Transport(headerBound(r.headerTimeout, base))), maxBody)),
	)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", ref, err)
	}
	lister, err := puller.Lister(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("registry %s: listing tags: %w", ref, err)
	}
	var out []Release
	seen := map[string]bool{}
	for page := 1; lister.HasNext(); page++ {
		if page > registryMaxPages {
			return nil, fmt.Errorf("registry %s: listing tags: more than %d pages", ref, registryMaxPages)
		}
		tags, err := lister.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("registry %s: listing tags: page %d: %w", ref, page, err)
		}
		for _, t := range tags.Tags {
			out = append(out, Release{Tag: t})
		}
		if len(out) > registryMaxTags {
			return nil, fmt.Errorf("registry %s: listing tags: more than %d tags", ref, registryMaxTags)
		}
		if tags.Next != "" && seen[tags.Next] {
			break // a Link loop: every page has been read
		}
		seen[tags.Next] = true
	}
	if out == nil {
		out = []Release{}
	}
	return out, nil
}

// httpsOnly refuses plain HTTP to any host but a loopback address, and, when the source says
// insecure: true, its own registry's host. go-containerregistry falls back to http for
// RFC 1918, localhost and *.local registries when https fails, and would send the stored
// credentials (or a token realm's answer) in clear.
func httpsOnly(registry string, insecure bool, next http.RoundTripper) http.RoundTripper {
	own := registryHostname(registry)
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Scheme == "https" || config.IsLoopback(req.URL.Host) || (insecure && strings.EqualFold(req.URL.Hostname(), own)) {
			return next.RoundTrip(req)
		}
		if req.Body != nil {
			_ = req.Body.Close()
		}
		if strings.EqualFold(req.URL.Hostname(), own) {
			return nil, fmt.Errorf("plain HTTP to %s refused (set insecure: true on the source to allow it)", req.URL.Host)
		}
		return nil, fmt.Errorf("plain HTTP to %s refused", req.URL.Host)
	})
}

// registryHostname is a registry's host name without its port ("10.0.0.5:5000" → "10.0.0.5").
func registryHostname(registry string) string {
	if h, _, err := net.SplitHostPort(registry); err == nil {
		return h
	}
	return registry
}

// limitBodies bounds every response body read through next to limit bytes: reading more is
// an error, not an allocation without end.
func limitBodies(next http.RoundTripper, limit int64) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && resp.Body != nil {
			resp.Body = &limitedBody{rc: resp.Body, left: limit, limit: limit}
		}
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// limitedBody reads at most limit bytes of rc; one more is an error, and closes rc.
type limitedBody struct {
	rc    io.ReadCloser
	left  int64
	limit int64
}

var errBodyTooLarge = errors.New("body too large")

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%w: larger than %d MiB", errBodyTooLarge, b.limit>>20)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 { // one byte past the limit: keep what fits, then fail
		// and hang up: go-containerregistry does not close a body it failed to decode, and
		// the connection would stay open for as long as upstream cares to keep sending.
		b.rc.Close()
		return n - 1, fmt.Errorf("%w: larger than %d MiB", errBodyTooLarge, b.limit>>20)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
