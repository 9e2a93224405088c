package target

import (
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/hostlimit"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/tlsscope"
)

// Option configures New.
type Option func(*options)

type options struct {
	transport http.RoundTripper
	cacheDir  string
	keychain  authn.Keychain
	logger    *slog.Logger
	retry     retry.Policy
	limit     *hostlimit.Limit
	wrap      func(http.RoundTripper) http.RoundTripper
	header    time.Duration
	request   time.Duration
}

// DefaultHostConcurrency is how many requests one process has in flight to one registry host,
// unless WithHostLimit says otherwise: what the inspection of a plan sends at once.
const DefaultHostConcurrency = 16

// WithHostLimit makes the target share l (requests in flight per host) with whatever else the
// caller gives it to — a registry counts a process's requests, not a target's — instead of a
// limit of DefaultHostConcurrency of its own; hostlimit.New(0) lifts the bound. A request holds
// its slot until its response headers arrive, and not while the retry policy waits.
func WithHostLimit(l *hostlimit.Limit) Option { return func(o *options) { o.limit = l } }

// WithTransport sends every registry request through rt, the ping and token exchanges
// included; wrap it to count requests or add rate limits. The target's retries (WithRetry) sit
// above rt, so rt sees every attempt. When the target is insecure and rt is an *http.Transport,
// clones of it are used, with TLS verification off for the registry's host only (see
// tlsscope); any other RoundTripper is used as given and decides TLS itself.
// The default is go-containerregistry's remote.DefaultTransport.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithTransportWrap puts w around the transport the target settles on (WithTransport's or the
// default, TLS already scoped for an insecure registry): for a decorator that only watches the
// requests, such as a counter, and leaves the transport's choice to the target.
func WithTransportWrap(w func(http.RoundTripper) http.RoundTripper) Option {
	return func(o *options) { o.wrap = w }
}

// WithTimeouts bounds every registry request, whatever the transport: its answer's headers
// must come within header, and it must be done (its body read) within request. A blob's body
// (a layer up or down) is not bounded as a whole: it fails when no byte moved for header. The
// error names the host ("registry 127.0.0.1:5000: no answer within 30s"). Zero is the
// default: config.DefaultHeaderTimeout and config.DefaultRequestTimeout.
func WithTimeouts(header, request time.Duration) Option {
	return func(o *options) { o.header, o.request = header, request }
}

// WithCacheDir keeps manifests and image configs, named by digest, under dir/blobs/<alg>/<hex>.
// With it, inspecting an unchanged tag again costs one HEAD request, even in a new run (whose
// target also pings the registry once). Without it nothing is cached.
func WithCacheDir(dir string) Option { return func(o *options) { o.cacheDir = dir } }

// WithKeychain resolves registry credentials when the config has no username. The default is
// authn.DefaultKeychain (Docker config and credential helpers).
func WithKeychain(k authn.Keychain) Option { return func(o *options) { o.keychain = k } }

// WithRetry sets the retry policy of registry requests; the default is retry.Default (GET,
// HEAD, PUT and DELETE retried on connection errors and 429/5xx, honouring Retry-After).
func WithRetry(p retry.Policy) Option { return func(o *options) { o.retry = p } }

// WithLogger sets the logger for debug and warning messages. The default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// New returns the Target cfg describes: an OCI layout directory for "oci:DIR", a registry
// namespace otherwise. A relative DIR is relative to the working directory.
func New(cfg config.Target, opts ...Option) (Target, error) {
	o := options{keychain: authn.DefaultKeychain, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.header <= 0 {
		o.header = config.DefaultHeaderTimeout
	}
	if o.request <= 0 {
		o.request = config.DefaultRequestTimeout
	}
	if o.limit == nil {
		o.limit = hostlimit.New(DefaultHostConcurrency)
	}
	if dir, ok := cfg.Layout(); ok {
		if dir == "" {
			return nil, fmt.Errorf("target %q: oci: needs a directory (oci:./mirror)", cfg.Registry)
		}
		return &layoutTarget{root: dir, log: o.logger}, nil
	}
	return newRegistry(cfg, o)
}

func newRegistry(cfg config.Target, o options) (*registry, error) {
	if cfg.Registry == "" {
		return nil, fmt.Errorf("target: no registry (want ghcr.io/acme/mirror or oci:./dir)")
	}
	host, path, _ := strings.Cut(cfg.Registry, "/")
	if !strings.ContainsAny(host, ".:[") && host != "localhost" {
		return nil, fmt.Errorf("target registry %q: no registry host (want ghcr.io/acme/mirror or oci:./dir)", cfg.Registry)
	}
	if !hostRE.MatchString(host) {
		return nil, fmt.Errorf("target registry %q: %q is not a registry host[:port]", cfg.Registry, host)
	}
	if path != "" {
		for _, c := range strings.Split(path, "/") {
			if !repoRE.MatchString(c) {
				return nil, fmt.Errorf("target registry %q: %q is not a valid repository path component", cfg.Registry, c)
			}
		}
	}
	var nameOpts []name.Option
	if cfg.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("target registry %q: %w", cfg.Registry, err)
	}
	if path != "" { // the whole namespace must be a repository name go-containerregistry accepts
		if _, err := name.NewRepository(cfg.Registry, nameOpts...); err != nil {
			return nil, fmt.Errorf("target registry %q: %w", cfg.Registry, err)
		}
	}
	prefix := reg.Name()
	if path != "" {
		prefix += "/" + path
	}

	// Each attempt has its own deadlines, and a wait for a host's slot is not counted in them.
	wire := baseTransport(o.transport, cfg.Insecure, reg.RegistryStr())
	if o.wrap != nil {
		wire = o.wrap(wire)
	}
	base := o.retry.Transport(o.limit.Transport(deadlines(o.header, o.request, wire)))
	if !cfg.Insecure && !isLoopback(host) {
		base = httpsOnly{host: reg.RegistryStr(), next: base}
	}
	r := &registry{
		reg:      reg,
		path:     path,
		prefix:   prefix,
		base:     rewind{next: base},
		keychain: o.keychain,
		insecure: cfg.Insecure || isLoopback(host),
		retry:    o.retry,
		log:      o.logger.With("target", prefix),
		probing:  make(chan struct{}, 1),
	}
	if path != "" {
		r.scopes = []string{reg.Repo(path).Scope(transport.PullScope)}
	}
	if o.cacheDir != "" {
		r.cache = &store{dir: o.cacheDir, log: r.log}
	}
	switch {
	case cfg.Username != "":
		if !cfg.Password.IsSet() {
			return nil, fmt.Errorf("target registry %s: username %q has no password", prefix, cfg.Username)
		}
		pw, err := cfg.Password.Value()
		if err != nil {
			return nil, fmt.Errorf("target registry %s: password: %w", prefix, err)
		}
		r.auth = authn.FromConfig(authn.AuthConfig{Username: cfg.Username, Password: pw})
	case cfg.Password.IsSet():
		return nil, fmt.Errorf("target registry %s: a password needs a username", prefix)
	}
	return r, nil
}

// baseTransport is rt, or the default, with TLS verification off for an insecure target's own
// host only: its token realm and blob redirects are still verified.
func baseTransport(rt http.RoundTripper, insecure bool, host string) http.RoundTripper {
	if rt == nil {
		rt = remote.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !insecure || !ok {
		return rt
	}
	return tlsscope.Insecure(t, host)
}

// hostRE is host[:port] for a DNS name, IPv4 address or [IPv6] address.
var hostRE = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)
