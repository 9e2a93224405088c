package target

// One authenticated transport per registry target. Given a plain RoundTripper, every
// remote.Head/Get/Layer call pings /v2/ and redoes the auth handshake before its one useful
// request; given the *transport.Wrapper that transport.NewWithContext returns, remote uses it
// as is. So the target builds that transport once, on its first call (the ping, plus a
// token exchange on a Bearer registry), and an inspection then costs only its own requests:
// one HEAD for a tag whose manifest is cached. Reads by digest (registry_read.go), writes
// (registry_write.go) and referrers (registry_referrers.go) use it too. The Bearer transport
// inside adds each new repo's scope from the registry's 401 challenge and renews expired
// tokens, so the one transport serves every repo of the namespace for the whole run.
//
// This file holds the target itself: its transport, Inspect, its name for a repo (Ref), and
// the manifest and config reads everything else shares.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/archmirror/archmirror/internal/bounded"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// registry is a Target under a registry namespace: repo "app" is <namespace>/app.
type registry struct {
	reg      name.Registry
	path     string   // the namespace under the registry: "acme/mirror", or ""
	prefix   string   // registry/path, for messages
	scopes   []string // asked for when the transport is built: pull on the namespace
	base     http.RoundTripper
	auth     authn.Authenticator // from the config; nil means resolve from keychain
	keychain authn.Keychain
	cache    *store       // nil: no cache
	insecure bool         // builders may use plain HTTP or unverified TLS
	retry    retry.Policy // its transport's; Do restarts what the transport must not repeat
	log      *slog.Logger

	mu sync.Mutex
	rt http.RoundTripper // the authenticated *transport.Wrapper, once built

	api     atomic.Int32  // whether the registry has the referrers API: apiUnknown, apiYes, apiNo
	probing chan struct{} // a slot, full while one caller asks the registry (registry_referrers.go)
}

// Inspect HEADs the tag, then reads the manifest from the cache by digest or GETs it on a miss.
func (r *registry) Inspect(ctx context.Context, repo, tag string) (State, error) {
	where := r.prefix + "/" + repo + ":" + tag
	if err := checkRef(repo, tag); err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", where, err)
	}
	st, err := r.inspect(ctx, r.reg.Repo(r.path, repo), tag)
	if err != nil {
		return State{}, fmt.Errorf("inspect %s: %w", where, err)
	}
	return st, nil
}

func (r *registry) inspect(ctx context.Context, repo name.Repository, tag string) (State, error) {
	rt, err := r.transport(ctx)
	if err != nil {
		return State{}, err
	}
	opts := []remote.Option{remote.WithTransport(rt), remote.WithContext(ctx)}
	var (
		d         v1.Hash
		mediaType string
		raw       []byte
	)
	desc, err := remote.Head(repo.Tag(tag), opts...)
	switch {
	case err == nil:
		d, mediaType = desc.Digest, string(desc.MediaType)
		raw, err = r.manifest(repo, d, opts)
		if errors.Is(err, errManifestUnknown) {
			err = fmt.Errorf("%w (the tag moved or was deleted while it was inspected)", err)
		}
		if err != nil {
			return State{}, fmt.Errorf("manifest %s: %w", d, err)
		}
	case r.notFound(err, repo):
		return State{}, nil
	case incompleteHead(ctx, err):
		// The registry answered the HEAD without a digest (or length, or type): GET by tag,
		// and name the content by its hash.
		r.log.Debug("HEAD answer incomplete, getting the manifest by tag", "repo", repo.RepositoryStr(), "tag", tag, "err", err)
		got, err := r.get(repo, repo.Tag(tag), opts)
		switch {
		case errors.Is(err, errManifestUnknown):
			return State{}, nil
		case err != nil:
			return State{}, fmt.Errorf("manifest: %w", err)
		}
		d, mediaType, raw = got.Digest, string(got.MediaType), got.Manifest
		r.remember(d, raw)
	default:
		return State{}, r.explain(err, repo)
	}
	config := func(ctx context.Context, d v1.Hash) ([]byte, error) { return r.config(ctx, rt, repo, d) }
	return describe(ctx, r.log, d, mediaType, raw, config)
}

// transport is the registry's authenticated transport, built on first use. A failure is not
// kept: the next call tries again.
func (r *registry) transport(ctx context.Context) (http.RoundTripper, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rt != nil {
		return r.rt, nil
	}
	auth := r.auth
	if auth == nil {
		a, err := authn.Resolve(ctx, r.keychain, r.reg)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", r.reg.RegistryStr(), err)
		}
		auth = a
	}
	rt, err := transport.NewWithContext(ctx, r.reg, auth, r.base, r.scopes)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", r.reg.RegistryStr(), r.explain(err, name.Repository{}))
	}
	r.log.Debug("connected to registry", "anonymous", auth == authn.Anonymous)
	r.rt = rt
	return rt, nil
}

// errManifestUnknown is the registry answering that a manifest asked for (by digest, or by tag)
// is not in the repo.
var errManifestUnknown = errors.New("GET: 404 Not Found")

// manifest returns the manifest d, from the cache or else by GET (which checks it against d).
func (r *registry) manifest(repo name.Repository, d v1.Hash, opts []remote.Option) ([]byte, error) {
	if b, ok := r.cached(d); ok {
		return b, nil
	}
	got, err := r.get(repo, repo.Digest(d.String()), opts)
	if err != nil {
		return nil, err
	}
	r.remember(d, got.Manifest)
	return got.Manifest, nil
}

// get GETs the manifest ref of repo, of at most maxManifestSize bytes; errManifestUnknown
// when the repo does not have it.
func (r *registry) get(repo name.Repository, ref name.Reference, opts []remote.Option) (*remote.Descriptor, error) {
	got, err := remote.Get(ref, opts...)
	switch {
	case r.notFound(err, repo):
		return nil, errManifestUnknown
	case err != nil:
		return nil, r.explain(err, repo)
	case len(got.Manifest) > maxManifestSize:
		return nil, fmt.Errorf("GET: larger than %d bytes", maxManifestSize)
	}
	return got, nil
}

// config returns the blob d (an image config), from the cache or else by GET. The reader
// remote gives checks the content against d at EOF, which bounded.Read reaches.
func (r *registry) config(ctx context.Context, rt http.RoundTripper, repo name.Repository, d v1.Hash) ([]byte, error) {
	if b, ok := r.cached(d); ok {
		return b, nil
	}
	l, err := remote.Layer(repo.Digest(d.String()), remote.WithTransport(rt), remote.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, r.explain(err, repo)
	}
	defer rc.Close()
	b, err := bounded.Read(rc, maxConfigSize, "")
	if err != nil {
		return nil, fmt.Errorf("GET: %w", err)
	}
	r.remember(d, b)
	return b, nil
}

func (r *registry) cached(d v1.Hash) ([]byte, bool) {
	if r.cache == nil {
		return nil, false
	}
	b, ok := r.cache.get(d)
	if ok {
		r.log.Debug("manifest cache hit", "digest", d.String())
	}
	return b, ok
}

func (r *registry) remember(d v1.Hash, b []byte) {
	if r.cache != nil {
		r.cache.put(d, b)
	}
}

// notFound reports whether err is the registry saying repo, or the manifest asked for in it,
// does not exist. A 404 from anywhere else (a token service) is not an answer about repo.
func (r *registry) notFound(err error, repo name.Repository) bool {
	var terr *transport.Error
	if !errors.As(err, &terr) || !r.inRepo(terr.Request, repo) {
		return false
	}
	if terr.StatusCode == http.StatusNotFound {
		return true
	}
	return slices.ContainsFunc(terr.Errors, func(d transport.Diagnostic) bool {
		return d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode
	})
}

// inRepo reports whether req was sent to repo's part of the registry API.
func (r *registry) inRepo(req *http.Request, repo name.Repository) bool {
	return req != nil && repo.RepositoryStr() != "" && req.URL.Host == r.reg.RegistryStr() &&
		strings.HasPrefix(req.URL.Path, "/v2/"+repo.RepositoryStr()+"/")
}

// incompleteHead reports whether err is remote.Head finding the registry's answer unusable
// (no Docker-Content-Digest, Content-Type or Content-Length), rather than a status or a
// failed connection.
func incompleteHead(ctx context.Context, err error) bool {
	var terr *transport.Error
	var uerr *url.Error
	return ctx.Err() == nil && !errors.As(err, &terr) && !errors.As(err, &uerr)
}

// explain shortens a registry's error answer to "HEAD: 503 Service Unavailable", naming the
// request only when it was not to repo itself ("GET /v2/: 503 …", "GET https://auth.example/token: 401 …").
// restartable reports whether an operation that failed with err is worth starting over: the
// connection broke, or the registry answered a status the retry policy retries.
func (r *registry) restartable(err error) bool {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return r.retry.Status(terr.StatusCode)
	}
	return retry.Transient(err)
}

func (r *registry) explain(err error, repo name.Repository) error {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return err
	}
	return &statusError{what: r.requestName(terr.Request, repo), err: terr}
}

func (r *registry) requestName(req *http.Request, repo name.Repository) string {
	if req == nil {
		return "request"
	}
	if r.inRepo(req, repo) {
		return req.Method
	}
	u := url.URL{Scheme: req.URL.Scheme, Host: req.URL.Host, Path: req.URL.Path} // no query, no user
	if u.Host == r.reg.RegistryStr() {
		return req.Method + " " + u.Path
	}
	return req.Method + " " + u.String()
}

// statusError is a registry's unexpected answer, with its error codes when it sent a body:
// "GET: 500 Internal Server Error (UNKNOWN: storage broke)".
type statusError struct {
	what string
	err  *transport.Error
}

func (e *statusError) Error() string {
	msg := fmt.Sprintf("%s: %d %s", e.what, e.err.StatusCode, http.StatusText(e.err.StatusCode))
	var parts []string
	for _, d := range e.err.Errors {
		s := string(d.Code)
		if d.Message != "" {
			s += ": " + d.Message
		}
		parts = append(parts, untrusted.Line(s, 200)) // the registry's text
	}
	if len(parts) > 0 {
		msg += " (" + strings.Join(parts, "; ") + ")"
	}
	return msg
}

func (e *statusError) Unwrap() error { return e.err }

// httpsOnly refuses plain HTTP to the registry host. go-containerregistry falls back to http
// for loopback, RFC 1918 and *.localhost hosts; a strict target allows that on a loopback
// address or "localhost" only, and anywhere when the config says insecure (then httpsOnly is
// not used).
type httpsOnly struct {
	host string
	next http.RoundTripper
}

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && req.URL.Host == h.host {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("plain HTTP to %s refused (set insecure: true on the target to allow it)", h.host)
	}
	return h.next.RoundTrip(req)
}

func isLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Ref is "host/namespace/repo".
func (r *registry) Ref(repo string) string { return r.prefix + "/" + repo }

// Insecure reports whether the config says insecure or the registry is on loopback.
func (r *registry) Insecure() bool { return r.insecure }

// options are the remote options of every request: the one transport, ctx, and no retries of
// go-containerregistry's own (those belong to the transport the caller gives).
func (r *registry) options(ctx context.Context) (http.RoundTripper, []remote.Option, error) {
	rt, err := r.transport(ctx)
	if err != nil {
		return nil, nil, err
	}
	return rt, []remote.Option{
		remote.WithTransport(rt),
		remote.WithContext(ctx),
		remote.WithRetryPredicate(func(error) bool { return false }),
	}, nil
}

// rewind gives each attempt of a request a fresh copy of its body. go-containerregistry's
// Bearer transport answers a 401 by renewing its token and sending the same *http.Request
// again, whose body the first attempt has read. Over HTTP/1.1 net/http happens to replay it
// from GetBody; over HTTP/2 the body goes out empty and the PUT fails
// (TestBearerWriteHTTP2).
type rewind struct{ next http.RoundTripper }

func (rw rewind) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody || req.GetBody == nil {
		return rw.next.RoundTrip(req)
	}
	body, err := req.GetBody()
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	again := req.Clone(req.Context())
	again.Body = body
	return rw.next.RoundTrip(again)
}
