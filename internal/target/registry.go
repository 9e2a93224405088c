package target

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// registry is a Target under a registry namespace: repo "app" is <namespace>/app.
//
// It speaks the distribution API directly rather than through remote.Get so that an inspection
// costs what it must and no more: one HEAD per tag when the manifest is already cached, no
// /v2/ ping, and authentication only once the registry asks for it (a 401 challenge), after
// which this registry's token exchange goes first for other repos.
type registry struct {
	reg      name.Registry
	path     string // the namespace under the registry: "acme/mirror", or ""
	prefix   string // registry/path, for messages
	insecure bool
	base     http.RoundTripper
	auth     authn.Authenticator // from the config; nil means resolve from keychain
	keychain authn.Keychain
	cache    *store // nil: no cache
	log      *slog.Logger

	mu        sync.Mutex
	scheme    string               // the scheme an insecure registry answered on
	challenge *transport.Challenge // the registry's auth challenge, once it has sent one
	resolved  authn.Authenticator  // from keychain, once resolved
	authed    map[string]http.RoundTripper
	authing   map[string]*sync.Mutex // one token exchange per repo at a time
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
	d, mediaType, found, err := r.head(ctx, repo, tag)
	if err != nil || !found {
		return State{}, err
	}
	var raw []byte
	if d == (v1.Hash{}) {
		// The registry did not name the digest: GET by tag and name the content ourselves.
		var ok bool
		raw, mediaType, ok, err = r.manifestByTag(ctx, repo, tag)
		if err != nil || !ok {
			return State{}, err
		}
		if d, _, err = v1.SHA256(bytes.NewReader(raw)); err != nil {
			return State{}, err
		}
		r.remember(d, raw)
	} else if raw, err = r.manifest(ctx, repo, d); err != nil {
		return State{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	blob := func(ctx context.Context, d v1.Hash) ([]byte, error) { return r.blob(ctx, repo, d) }
	return describe(ctx, r.log, d, mediaType, raw, blob)
}

// head asks what tag points at. found is false for a missing repo or tag.
func (r *registry) head(ctx context.Context, repo name.Repository, tag string) (d v1.Hash, mediaType string, found bool, err error) {
	resp, err := r.do(ctx, repo, http.MethodHead, "manifests/"+tag, manifestAccept)
	if err != nil {
		return v1.Hash{}, "", false, fmt.Errorf("HEAD: %w", err)
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound: // MANIFEST_UNKNOWN or NAME_UNKNOWN: a HEAD has no body to tell
		return v1.Hash{}, "", false, nil
	default:
		return v1.Hash{}, "", false, statusError(http.MethodHead, resp)
	}
	mediaType = baseMediaType(resp.Header.Get("Content-Type"))
	dcd := resp.Header.Get("Docker-Content-Digest")
	if dcd == "" {
		return v1.Hash{}, mediaType, true, nil
	}
	if d, err = v1.NewHash(dcd); err != nil {
		return v1.Hash{}, "", false, fmt.Errorf("HEAD: Docker-Content-Digest: %w", err)
	}
	return d, mediaType, true, nil
}

// manifest returns the manifest d, from the cache or else by GET.
func (r *registry) manifest(ctx context.Context, repo name.Repository, d v1.Hash) ([]byte, error) {
	if b, ok := r.cached(d); ok {
		return b, nil
	}
	b, _, found, err := r.get(ctx, repo, "manifests/"+d.String(), manifestAccept, maxManifestSize)
	if err == nil && !found {
		err = fmt.Errorf("GET: 404 Not Found (the tag moved or was deleted while it was inspected)")
	}
	if err != nil {
		return nil, err
	}
	if err := verify(d, b); err != nil {
		return nil, err
	}
	r.remember(d, b)
	return b, nil
}

// manifestByTag GETs what tag points at, for registries that do not send a digest on HEAD.
func (r *registry) manifestByTag(ctx context.Context, repo name.Repository, tag string) (raw []byte, mediaType string, found bool, err error) {
	raw, mediaType, found, err = r.get(ctx, repo, "manifests/"+tag, manifestAccept, maxManifestSize)
	if err != nil {
		return nil, "", false, fmt.Errorf("manifest: %w", err)
	}
	return raw, mediaType, found, nil
}

// blob returns the blob d (an image config), from the cache or else by GET.
func (r *registry) blob(ctx context.Context, repo name.Repository, d v1.Hash) ([]byte, error) {
	if b, ok := r.cached(d); ok {
		return b, nil
	}
	b, _, found, err := r.get(ctx, repo, "blobs/"+d.String(), nil, maxConfigSize)
	if err == nil && !found {
		err = fmt.Errorf("GET: 404 Not Found")
	}
	if err != nil {
		return nil, err
	}
	if err := verify(d, b); err != nil {
		return nil, err
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

// get GETs path under repo. found is false on a 404.
func (r *registry) get(ctx context.Context, repo name.Repository, path string, accept []string, limit int64) (body []byte, mediaType string, found bool, err error) {
	resp, err := r.do(ctx, repo, http.MethodGet, path, accept)
	if err != nil {
		return nil, "", false, fmt.Errorf("GET: %w", err)
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, "", false, nil
	default:
		return nil, "", false, statusError(http.MethodGet, resp)
	}
	body, err = readLimited(resp.Body, limit)
	if err != nil {
		return nil, "", false, fmt.Errorf("GET: %w", err)
	}
	return body, baseMediaType(resp.Header.Get("Content-Type")), true, nil
}

// do sends one request to repo's API. A 401 means the registry wants credentials, or that a
// token has expired: authenticate for repo (token exchange, or Basic) and send it once more.
func (r *registry) do(ctx context.Context, repo name.Repository, method, path string, accept []string) (*http.Response, error) {
	rt, authed, err := r.transport(ctx, repo)
	if err != nil {
		return nil, err
	}
	resp, err := r.send(ctx, rt, repo, method, path, accept)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	ch := parseChallenge(resp.Header.Values("WWW-Authenticate"))
	auth, err := r.authenticator(ctx, repo)
	if err != nil {
		drain(resp)
		return nil, err
	}
	if !strings.EqualFold(ch.Scheme, "bearer") && auth == authn.Anonymous {
		return resp, nil // Basic auth and no credentials: the 401 is the answer
	}
	drain(resp)
	r.log.Debug("registry asks for authentication", "scheme", ch.Scheme, "repo", repo.RepositoryStr(), "renew", authed)
	r.mu.Lock()
	r.challenge = ch
	if authed {
		delete(r.authed, repo.String()) // expired, or refused: exchange again, once
	}
	r.mu.Unlock()
	if rt, err = r.authenticate(ctx, repo, ch, auth); err != nil {
		return nil, err
	}
	return r.send(ctx, rt, repo, method, path, accept)
}

// transport is the RoundTripper for repo: authenticated once the registry has asked for
// credentials (for any repo), the base transport until then.
func (r *registry) transport(ctx context.Context, repo name.Repository) (http.RoundTripper, bool, error) {
	r.mu.Lock()
	rt, ok := r.authed[repo.String()]
	ch := r.challenge
	r.mu.Unlock()
	switch {
	case ok:
		return rt, true, nil
	case ch == nil:
		return r.base, false, nil
	}
	auth, err := r.authenticator(ctx, repo)
	if err != nil {
		return nil, false, err
	}
	rt, err = r.authenticate(ctx, repo, ch, auth)
	return rt, err == nil, err
}

// authenticate builds (once per repo) a transport that answers ch for repo: a pull-scoped
// bearer token from the registry's token service, or Basic credentials.
func (r *registry) authenticate(ctx context.Context, repo name.Repository, ch *transport.Challenge, auth authn.Authenticator) (http.RoundTripper, error) {
	key := repo.String()
	r.mu.Lock()
	once, ok := r.authing[key]
	if !ok {
		once = &sync.Mutex{}
		r.authing[key] = once
	}
	r.mu.Unlock()
	once.Lock()
	defer once.Unlock()
	r.mu.Lock()
	rt, ok := r.authed[key]
	c := *ch
	c.Insecure = r.scheme == "http" || (r.scheme == "" && r.schemesLocked()[0] == "http")
	r.mu.Unlock()
	if ok {
		return rt, nil
	}

	tok := &transport.Token{}
	if strings.EqualFold(c.Scheme, "bearer") {
		var err error
		tok, err = transport.Exchange(ctx, repo.Registry, auth, r.base, []string{repo.Scope(transport.PullScope)}, &c)
		if err != nil {
			return nil, fmt.Errorf("authenticate to %s: %w", repo.RegistryStr(), err)
		}
		if tok.Token == "" {
			tok.Token = tok.AccessToken
		}
	}
	rt, err := transport.FromToken(repo.Registry, auth, r.base, &c, tok)
	if err != nil {
		return nil, fmt.Errorf("authenticate to %s: %w", repo.RegistryStr(), err)
	}
	r.mu.Lock()
	r.authed[key] = rt
	r.mu.Unlock()
	return rt, nil
}

// authenticator is the config's credentials, or else what the keychain has for the registry
// (resolved once; anonymous when it has nothing).
func (r *registry) authenticator(ctx context.Context, repo name.Repository) (authn.Authenticator, error) {
	if r.auth != nil {
		return r.auth, nil
	}
	r.mu.Lock()
	a := r.resolved
	r.mu.Unlock()
	if a != nil {
		return a, nil
	}
	a, err := authn.Resolve(ctx, r.keychain, repo.Registry)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
	}
	r.mu.Lock()
	r.resolved = a
	r.mu.Unlock()
	return a, nil
}

// send makes one request, trying https then plain http on an insecure registry until one of
// them answers (and then sticking to it).
func (r *registry) send(ctx context.Context, rt http.RoundTripper, repo name.Repository, method, path string, accept []string) (*http.Response, error) {
	client := &http.Client{Transport: rt}
	r.mu.Lock()
	schemes := r.schemesLocked()
	r.mu.Unlock()
	var err error
	for _, scheme := range schemes {
		u := url.URL{Scheme: scheme, Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + "/" + path}
		req, rerr := http.NewRequestWithContext(ctx, method, u.String(), nil)
		if rerr != nil {
			return nil, rerr
		}
		if len(accept) > 0 {
			req.Header.Set("Accept", strings.Join(accept, ", "))
		}
		var resp *http.Response
		if resp, err = client.Do(req); err == nil {
			if len(schemes) > 1 {
				r.mu.Lock()
				r.scheme = scheme
				r.mu.Unlock()
			}
			return resp, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// schemesLocked lists the schemes to try, in order. Strict by default: https, except plain
// http on a loopback address; an insecure registry is tried on https (unverified) then http.
func (r *registry) schemesLocked() []string {
	switch {
	case r.scheme != "":
		return []string{r.scheme}
	case r.insecure:
		return []string{"https", "http"}
	case isLoopback(r.reg.RegistryStr()):
		return []string{"http"}
	}
	return []string{"https"}
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

// statusError describes an unexpected answer: "HEAD: 503 Service Unavailable", with the
// registry's error codes when it sent a body ("GET: 404 Not Found (BLOB_UNKNOWN: blob unknown)").
func statusError(method string, resp *http.Response) error {
	msg := resp.Status
	if msg == "" {
		msg = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if method != http.MethodHead {
		if detail := registryErrors(resp.Body); detail != "" {
			msg += " (" + detail + ")"
		}
	}
	return fmt.Errorf("%s: %s", method, msg)
}

// registryErrors summarises a distribution API error body: "CODE: message; CODE2: message".
func registryErrors(body io.Reader) string {
	b, err := readLimited(body, 64<<10)
	if err != nil {
		return ""
	}
	var e struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &e) != nil {
		return ""
	}
	var parts []string
	for _, x := range e.Errors {
		s := x.Code
		if x.Message != "" {
			s += ": " + x.Message
		}
		parts = append(parts, clip(s, 200))
	}
	return strings.Join(parts, "; ")
}

// clip shortens an untrusted string and keeps it printable.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// drain reads what is left of a body so the connection is reused, and closes it.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
}
