package target_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

const (
	user = "mirror-bot"
	pass = "s3cret-do-not-print"
)

// authRegistry is one in-memory registry behind two doors: an open one to fill it, and one
// that wants credentials (Basic, or a Bearer token from its own token service).
type authRegistry struct {
	open, guarded string

	mu         sync.Mutex
	scopes     []string            // asked of the token service, one entry per token: "s1 s2"
	tokens     map[string][]string // issued: the scopes each token is good for
	generation int                 // bump it to expire every token
}

// issue returns a token good for scopes, until the generation changes.
func (a *authRegistry) issue(scopes []string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.scopes = append(a.scopes, strings.Join(scopes, " "))
	tok := fmt.Sprintf("tok-%d-%d", a.generation, len(a.tokens))
	a.tokens[tok] = scopes
	return tok
}

// allows reports whether the Authorization header carries a current token for scope (a
// pull,push token is good for pull too).
func (a *authRegistry) allows(authorization, scope string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	tok, ok := strings.CutPrefix(authorization, "Bearer ")
	if !ok || !strings.HasPrefix(tok, fmt.Sprintf("tok-%d-", a.generation)) {
		return false
	}
	return slices.Contains(a.tokens[tok], scope) ||
		(strings.HasSuffix(scope, ":pull") && slices.Contains(a.tokens[tok], scope+",push"))
}

// scopeOf is the scope a /v2/<repo>/(manifests|blobs)/... request needs: pull to read,
// pull,push to write, as distribution asks.
func scopeOf(r *http.Request) string {
	repo := strings.TrimPrefix(r.URL.Path, "/v2/")
	for _, sep := range []string{"/manifests/", "/blobs/"} {
		if i := strings.Index(repo, sep); i >= 0 {
			repo = repo[:i]
		}
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return "repository:" + repo + ":pull"
	}
	return "repository:" + repo + ":pull,push"
}

func newAuthRegistry(t *testing.T, bearer bool) *authRegistry {
	t.Helper()
	h := registry.New(registry.Logger(nilLogger()))
	a := &authRegistry{open: serverHost(t, h), tokens: map[string][]string{}}
	a.guarded = serverHost(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		goodBasic := ok && u == user && p == pass
		switch {
		case bearer && r.URL.Path == "/token":
			if !goodBasic {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
			tok := a.issue(r.URL.Query()["scope"])
			_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
		case bearer && !a.allows(r.Header.Get("Authorization"), scopeOf(r)):
			// As distribution does: the challenge names the scope a repo request needs, and
			// the ping's has none.
			ch := `Bearer realm="http://` + a.guarded + `/token",service="test"`
			if r.URL.Path != "/v2/" {
				ch += `,scope="` + scopeOf(r) + `"`
			}
			w.Header().Set("WWW-Authenticate", ch)
			_, _ = io.Copy(io.Discard, r.Body) // as registries behind a proxy do
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		case !bearer && !goodBasic:
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		default:
			h.ServeHTTP(w, r)
		}
	}))
	return a
}

func TestBasicAuthFromConfig(t *testing.T) {
	a := newAuthRegistry(t, false)
	d := testenv.PushIndex(t, a.open+"/mirror/app:1.2.0", amd64, arm64)
	testenv.PushIndex(t, a.open+"/mirror/other:1.0.0", amd64)
	t.Setenv("ARCHMIRROR_TEST_PASSWORD", pass)
	c := newCounter()
	tgt, err := target.New(config.Target{
		Registry: a.guarded + "/mirror",
		Username: user,
		Password: config.Secret{Ref: "env://ARCHMIRROR_TEST_PASSWORD"},
	}, target.WithTransport(c), target.WithCacheDir(t.TempDir()), target.WithKeychain(emptyKeychain{}))
	if err != nil {
		t.Fatal(err)
	}
	st, err := tgt.Inspect(t.Context(), "app", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if st.Digest != d.String() || !slices.Equal(st.Platforms, []string{amd64, arm64}) {
		t.Errorf("State = %+v", st)
	}
	// The ping's 401 says Basic; from then on every request carries the credentials.
	want := with(ping, "HEAD /v2/mirror/app/manifests/1.2.0", "GET /v2/mirror/app/manifests/"+d.String())
	if got := c.take(); !slices.Equal(got, want) {
		t.Errorf("requests = %q\nwant       %q", got, want)
	}
	if _, err := tgt.Inspect(t.Context(), "app", "1.2.0"); err != nil {
		t.Fatal(err)
	}
	// Another repo goes straight to credentials: no 401.
	if _, err := tgt.Inspect(t.Context(), "other", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if got := c.take(); len(got) != 3 || got[0] != "HEAD /v2/mirror/app/manifests/1.2.0" || got[1] != "HEAD /v2/mirror/other/manifests/1.0.0" {
		t.Errorf("authenticated requests = %q", got)
	}
}

func TestBasicAuthFromDockerConfig(t *testing.T) {
	a := newAuthRegistry(t, false)
	testenv.PushIndex(t, a.open+"/mirror/app:1.2.0", amd64)
	dir := t.TempDir()
	cfg := `{"auths":{"` + a.guarded + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	tgt, err := target.New(config.Target{Registry: a.guarded + "/mirror"}) // authn.DefaultKeychain
	if err != nil {
		t.Fatal(err)
	}
	st, err := tgt.Inspect(t.Context(), "app", "1.2.0")
	if err != nil || !slices.Equal(st.Platforms, []string{amd64}) {
		t.Errorf("Inspect = %+v, %v", st, err)
	}
}

func TestBadCredentials(t *testing.T) {
	for _, bearer := range []bool{false, true} {
		a := newAuthRegistry(t, bearer)
		testenv.PushIndex(t, a.open+"/mirror/app:1.2.0", amd64)
		t.Setenv("ARCHMIRROR_TEST_PASSWORD", "wrong-"+pass)
		tgt, err := target.New(config.Target{
			Registry: a.guarded + "/mirror",
			Username: user,
			Password: config.Secret{Ref: "env://ARCHMIRROR_TEST_PASSWORD"},
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
		if err == nil || !strings.HasPrefix(err.Error(), "inspect "+a.guarded+"/mirror/app:1.2.0: ") || !(strings.Contains(err.Error(), "401") || strings.Contains(err.Error(), "UNAUTHORIZED")) {
			t.Errorf("bearer=%v: err = %v", bearer, err)
		}
		if err != nil && strings.Contains(err.Error(), pass) {
			t.Errorf("bearer=%v: the password is in the error: %v", bearer, err)
		}
		t.Logf("bearer=%v: %v", bearer, err)
	}

	// Anonymous against Basic auth: the HEAD's 401 is the answer, without a retry.
	a := newAuthRegistry(t, false)
	c := newCounter()
	tgt, err := target.New(config.Target{Registry: a.guarded + "/mirror"}, target.WithTransport(c), target.WithKeychain(emptyKeychain{}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	if want := "inspect " + a.guarded + "/mirror/app:1.2.0: HEAD: 401 Unauthorized"; err == nil || err.Error() != want {
		t.Errorf("anonymous: err = %v, want %s", err, want)
	}
	if got, want := c.take(), with(ping, "HEAD /v2/mirror/app/manifests/1.2.0"); !slices.Equal(got, want) {
		t.Errorf("anonymous: requests = %q, want %q", got, want)
	}
}

// TestBearerAuth: one token exchange when the target connects (pull on the namespace), then
// one 401 + token + retry for each repo it has not seen (the registry's challenge names the
// repo's scope, which the transport adds to its token from then on), then one request each.
func TestBearerAuth(t *testing.T) {
	a := newAuthRegistry(t, true)
	d := testenv.PushIndex(t, a.open+"/mirror/app:1.2.0", amd64, arm64)
	testenv.PushIndex(t, a.open+"/mirror/other:1.0.0", amd64)
	c := newCounter()
	tgt, err := target.New(config.Target{Registry: a.guarded + "/mirror"},
		target.WithTransport(c), target.WithKeychain(staticKeychain{user, pass}), target.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	inspect := func(repo, tag string) target.State {
		t.Helper()
		st, err := tgt.Inspect(t.Context(), repo, tag)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	expect := func(what string, want ...string) {
		t.Helper()
		if got := c.take(); !slices.Equal(got, want) {
			t.Errorf("%s: requests = %q\nwant %q", what, got, want)
		}
	}
	renew := func(repo, tag string) []string { // 401, token, retry
		m := "HEAD /v2/mirror/" + repo + "/manifests/" + tag
		return []string{m, "GET /token", m}
	}

	st := inspect("app", "1.2.0")
	if st.Digest != d.String() || !slices.Equal(st.Platforms, []string{amd64, arm64}) {
		t.Errorf("State = %+v", st)
	}
	expect("first repo", with(with(ping, "GET /token"), append(renew("app", "1.2.0"), "GET /v2/mirror/app/manifests/"+d.String())...)...)
	inspect("app", "1.2.0")
	expect("same repo again", "HEAD /v2/mirror/app/manifests/1.2.0")
	inspect("other", "1.0.0")
	if got := c.take(); len(got) != 4 || !slices.Equal(got[:3], renew("other", "1.0.0")) {
		t.Errorf("second repo: requests = %q", got)
	}
	inspect("app", "1.2.0")
	inspect("other", "1.0.0")
	expect("both repos again", "HEAD /v2/mirror/app/manifests/1.2.0", "HEAD /v2/mirror/other/manifests/1.0.0")

	a.mu.Lock()
	want := []string{
		"repository:mirror:pull",
		"repository:mirror/app:pull repository:mirror:pull",
		"repository:mirror/other:pull repository:mirror/app:pull repository:mirror:pull",
	}
	if !slices.Equal(a.scopes, want) {
		t.Errorf("token scopes = %q\nwant             %q", a.scopes, want)
	}
	// Tokens expire: the next inspection gets a new one, once, and succeeds.
	a.generation++
	a.scopes = nil
	a.mu.Unlock()
	if st := inspect("app", "1.2.0"); st.Digest != d.String() {
		t.Errorf("after expiry: %+v", st)
	}
	expect("after expiry", renew("app", "1.2.0")...)
	inspect("other", "1.0.0")
	expect("after expiry, other repo", "HEAD /v2/mirror/other/manifests/1.0.0")
}

// TestBearerWrite: the first write to a repo is answered 401 with a push scope; the one
// transport adds it to its token and sends the PUT again, body and all.
func TestBearerWrite(t *testing.T) {
	a := newAuthRegistry(t, true)
	root := a.open + "/mirror"
	amdD := testenv.PushUntagged(t, root+"/app", amd64)
	armD := testenv.PushUntagged(t, root+"/app", arm64)
	c := newCounter()
	tgt, err := target.New(config.Target{Registry: a.guarded + "/mirror"},
		target.WithTransport(c), target.WithKeychain(staticKeychain{user, pass}), target.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	amd := describe(t, tgt, "app", amdD)
	arm := describe(t, tgt, "app", armD)
	c.take()
	desc, err := tgt.WriteIndex(t.Context(), "app", "1.0.0", index(nil, amd, arm), "")
	if err != nil {
		t.Fatal(err)
	}
	put := "PUT /v2/mirror/app/manifests/1.0.0"
	if got, want := c.take(), []string{"HEAD /v2/mirror/app/manifests/1.0.0", put, "GET /token", put}; !slices.Equal(got, want) {
		t.Errorf("requests = %q\nwant       %q", got, want)
	}
	st, err := tgt.Inspect(t.Context(), "app", "1.0.0")
	if err != nil || st.Digest != desc.Digest.String() || !slices.Equal(st.Platforms, []string{amd64, arm64}) {
		t.Errorf("after write: %+v, %v", st, err)
	}
	// The token has push on the repo now: the next write goes straight through.
	c.take()
	if err := tgt.Tag(t.Context(), "app", "latest", desc.Digest, ""); err != nil {
		t.Fatal(err)
	}
	if got, want := c.take(), []string{"HEAD /v2/mirror/app/manifests/latest", "PUT /v2/mirror/app/manifests/latest"}; !slices.Equal(got, want) {
		t.Errorf("second write: requests = %q\nwant       %q", got, want)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if last := a.scopes[len(a.scopes)-1]; !strings.HasPrefix(last, "repository:mirror/app:pull,push ") {
		t.Errorf("last token scopes = %q", last)
	}
}

// TestBearerWriteHTTP2: over HTTP/2, what a TLS registry negotiates, net/http does not
// replay a request whose body was used up; the PUT the Bearer transport sends again after
// the push-scope 401 must still carry its body.
func TestBearerWriteHTTP2(t *testing.T) {
	a := newAuthRegistry(t, true)
	d := testenv.PushUntagged(t, a.open+"/mirror/app", amd64)
	// registry.test over TLS and HTTP/2, in front of the guarded door; the realm it names is
	// its own.
	guarded, err := url.Parse("http://" + a.guarded)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewUnstartedServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(guarded) },
		ModifyResponse: func(resp *http.Response) error {
			if ch := resp.Header.Get("WWW-Authenticate"); ch != "" {
				resp.Header.Set("WWW-Authenticate", strings.ReplaceAll(ch, "http://"+a.guarded, "https://registry.test"))
			}
			return nil
		},
		ErrorLog: nilLogger(),
	})
	front.EnableHTTP2 = true
	front.Config.ErrorLog = nilLogger()
	front.StartTLS()
	t.Cleanup(front.Close)
	addr := front.Listener.Addr().String()
	c := newCounter()
	c.next = &http.Transport{ // the counter is not an *http.Transport: the test skips TLS verification itself
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a test server
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	tgt, err := target.New(config.Target{Registry: "registry.test/mirror", Insecure: true},
		target.WithTransport(c), target.WithKeychain(staticKeychain{user, pass}))
	if err != nil {
		t.Fatal(err)
	}
	desc, err := tgt.WriteIndex(t.Context(), "app", "1.0.0", index(nil, describe(t, tgt, "app", d)), "")
	if err != nil {
		t.Fatal(err)
	}
	put := "PUT /v2/mirror/app/manifests/1.0.0 (https)"
	if got := c.take(); !slices.Equal(got[len(got)-3:], []string{put, "GET /token (https)", put}) {
		t.Errorf("requests = %q, want the PUT sent again after a token", got)
	}
	if st, err := tgt.Inspect(t.Context(), "app", "1.0.0"); err != nil || st.Digest != desc.Digest.String() {
		t.Errorf("after write: %+v, %v", st, err)
	}
}

// TestInsecure: insecure means unverified TLS (or plain HTTP) for that target only; strict
// targets verify certificates and never fall back to HTTP.
func TestInsecure(t *testing.T) {
	h := registry.New(registry.Logger(nilLogger()))
	open := serverHost(t, h)
	d := testenv.PushIndex(t, open+"/mirror/app:1.2.0", amd64, arm64)
	tlsSrv := httptest.NewUnstartedServer(h)
	tlsSrv.Config.ErrorLog = nilLogger() // the strict client's refusals are expected
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)

	// registry.test is not a loopback name: it gets the strict treatment. The transport
	// dials the test servers whatever the name.
	dialTo := func(addr string) *http.Transport {
		return &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	}
	tlsTransport := dialTo(tlsSrv.Listener.Addr().String())
	inspect := func(cfg config.Target, rt http.RoundTripper) (target.State, error) {
		tgt, err := target.New(cfg, target.WithTransport(rt))
		if err != nil {
			t.Fatal(err)
		}
		return tgt.Inspect(t.Context(), "app", "1.2.0")
	}

	if _, err := inspect(config.Target{Registry: "registry.test/mirror"}, tlsTransport); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("strict TLS: err = %v, want a certificate error", err)
	}
	st, err := inspect(config.Target{Registry: "registry.test/mirror", Insecure: true}, tlsTransport)
	if err != nil || st.Digest != d.String() {
		t.Errorf("insecure TLS: %+v, %v", st, err)
	}
	if tlsTransport.TLSClientConfig != nil && tlsTransport.TLSClientConfig.InsecureSkipVerify {
		t.Error("the caller's transport was changed")
	}
	if _, err := inspect(config.Target{Registry: "registry.test/mirror"}, tlsTransport); err == nil {
		t.Error("strict TLS after an insecure target: no error")
	}

	// Plain HTTP: refused when strict, allowed when insecure (after https fails, once).
	plain := newCounter()
	plain.next = dialTo(open)
	if _, err := inspect(config.Target{Registry: "registry.test/mirror"}, plain); err == nil || !strings.Contains(err.Error(), "HTTP response to HTTPS client") {
		t.Errorf("strict plain HTTP: err = %v", err)
	}
	if got := plain.take(); !slices.Equal(got, []string{"GET /v2/ (https)"}) {
		t.Errorf("strict plain HTTP: requests %q", got)
	}
	// go-containerregistry would fall back to http for an RFC 1918 address; a strict target
	// does not.
	if _, err := inspect(config.Target{Registry: "192.168.0.10/mirror"}, plain); err == nil || !strings.Contains(err.Error(), "plain HTTP to 192.168.0.10 refused") {
		t.Errorf("strict plain HTTP on a private address: err = %v", err)
	}
	if got := plain.take(); !slices.Equal(got, []string{"GET /v2/ (https)"}) {
		t.Errorf("strict plain HTTP on a private address: requests %q", got)
	}
	tgt, err := target.New(config.Target{Registry: "registry.test/mirror", Insecure: true}, target.WithTransport(plain))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if st, err := tgt.Inspect(t.Context(), "app", "1.2.0"); err != nil || st.Digest != d.String() {
			t.Errorf("insecure plain HTTP: %+v, %v", st, err)
		}
	}
	// The ping tries https (fails) then http; then http only.
	want := with(ping, "HEAD /v2/mirror/app/manifests/1.2.0", "GET /v2/mirror/app/manifests/"+d.String(), "HEAD /v2/mirror/app/manifests/1.2.0",
		"GET /v2/mirror/app/manifests/"+d.String())
	if got := plain.take(); !slices.Equal(got, want) {
		t.Errorf("insecure plain HTTP: requests %q\nwant                                %q", got, want)
	}
}

// An insecure target skips TLS verification for its own host only: a token realm on another
// TLS host with a self-signed certificate is refused, so no credential goes to it.
func TestInsecureIsTheRegistryHostOnly(t *testing.T) {
	h := registry.New(registry.Logger(nilLogger()))
	open := serverHost(t, h)
	testenv.PushIndex(t, open+"/mirror/app:1.2.0", amd64, arm64)
	var realmHit atomic.Bool
	realm := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		realmHit.Store(true)
		_, _ = io.WriteString(w, `{"token":"t0ken"}`)
	}))
	realm.Config.ErrorLog = nilLogger() // the refused handshake is expected
	realm.StartTLS()
	t.Cleanup(realm.Close)
	reg := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer t0ken" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://realm.test/token",service="reg"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	reg.Config.ErrorLog = nilLogger()
	reg.StartTLS()
	t.Cleanup(reg.Close)

	// public names, dialled to the test servers
	addrs := map[string]string{"registry.test:443": reg.Listener.Addr().String(), "realm.test:443": realm.Listener.Addr().String()}
	rt := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addrs[addr])
	}}
	tgt, err := target.New(config.Target{Registry: "registry.test/mirror", Insecure: true},
		target.WithTransport(rt), target.WithKeychain(staticKeychain{user, pass}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	if err == nil || !strings.Contains(err.Error(), "certificate") || realmHit.Load() {
		t.Errorf("err = %v (realm asked: %v), want a certificate error from the realm", err, realmHit.Load())
	}
}

type emptyKeychain struct{}

func (emptyKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.Anonymous, nil
}

type staticKeychain struct{ user, pass string }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.user, Password: k.pass}), nil
}

func nilLogger() *log.Logger { return log.New(io.Discard, "", 0) }
