package target_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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
	scopes     []string // asked of the token service
	generation int      // bump it to expire every token
}

// token is what the token service issues for scope; it is only good for that scope.
func (a *authRegistry) token(scope string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("tok-%d-%s", a.generation, scope)
}

// scopeOf is the pull scope a /v2/<repo>/(manifests|blobs)/... request needs.
func scopeOf(path string) string {
	repo := strings.TrimPrefix(path, "/v2/")
	for _, sep := range []string{"/manifests/", "/blobs/"} {
		if i := strings.Index(repo, sep); i >= 0 {
			repo = repo[:i]
		}
	}
	return "repository:" + repo + ":pull"
}

func newAuthRegistry(t *testing.T, bearer bool) *authRegistry {
	t.Helper()
	h := registry.New(registry.Logger(nilLogger()))
	a := &authRegistry{open: serverHost(t, h)}
	a.guarded = serverHost(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		goodBasic := ok && u == user && p == pass
		switch {
		case bearer && r.URL.Path == "/token":
			if !goodBasic {
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
				return
			}
			scope := r.URL.Query().Get("scope")
			a.mu.Lock()
			a.scopes = append(a.scopes, scope)
			a.mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"token": a.token(scope), "expires_in": 300})
		case bearer && r.Header.Get("Authorization") != "Bearer "+a.token(scopeOf(r.URL.Path)):
			// No scope in the challenge, as some registries do: the client must remember it.
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+a.guarded+`/token",service="test"`)
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
	// The 401 teaches the challenge; the HEAD is sent again with credentials.
	want := []string{"HEAD /v2/mirror/app/manifests/1.2.0", "HEAD /v2/mirror/app/manifests/1.2.0", "GET /v2/mirror/app/manifests/" + d.String()}
	if got := c.take(); !slices.Equal(got, want) {
		t.Errorf("requests = %q\nwant       %q", got, want)
	}
	if _, err := tgt.Inspect(t.Context(), "app", "1.2.0"); err != nil {
		t.Fatal(err)
	}
	// Another repo goes straight to credentials: no second 401.
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

	// Anonymous against Basic auth: the 401 is the answer, without a retry.
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
	if n := len(c.take()); n != 1 {
		t.Errorf("anonymous: %d requests, want 1", n)
	}
}

func TestBearerAuth(t *testing.T) {
	a := newAuthRegistry(t, true)
	d := testenv.PushIndex(t, a.open+"/mirror/app:1.2.0", amd64, arm64)
	testenv.PushIndex(t, a.open+"/mirror/other:1.0.0", amd64)
	c := newCounter()
	tgt, err := target.New(config.Target{Registry: a.guarded + "/mirror"},
		target.WithTransport(c), target.WithKeychain(staticKeychain{user, pass}))
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
	want := []string{"HEAD /v2/mirror/app/manifests/1.2.0", "GET /token", "HEAD /v2/mirror/app/manifests/1.2.0", "GET /v2/mirror/app/manifests/" + d.String()}
	if got := c.take(); !slices.Equal(got, want) {
		t.Errorf("requests = %q\nwant       %q", got, want)
	}
	// The next repo exchanges its token first: the registry's challenge is known.
	if _, err := tgt.Inspect(t.Context(), "other", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	if got := c.take(); len(got) != 3 || got[0] != "GET /token" || got[1] != "HEAD /v2/mirror/other/manifests/1.0.0" {
		t.Errorf("second repo requests = %q", got)
	}
	a.mu.Lock()
	if want := []string{"repository:mirror/app:pull", "repository:mirror/other:pull"}; !slices.Equal(a.scopes, want) {
		t.Errorf("token scopes = %q, want %q", a.scopes, want)
	}
	// Tokens expire: the next inspection gets a new one and succeeds.
	a.generation++
	a.scopes = nil
	a.mu.Unlock()
	st, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	if err != nil || st.Digest != d.String() {
		t.Errorf("after expiry: %+v, %v", st, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !slices.Contains(a.scopes, "repository:mirror/app:pull") {
		t.Errorf("after expiry, token scopes = %q", a.scopes)
	}
	t.Logf("renewal: %q", c.take())
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
	if got := plain.take(); len(got) != 1 {
		t.Errorf("strict plain HTTP: requests %q", got)
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
	// https HEAD (fails), http HEAD, GET; then http only.
	if got := plain.take(); len(got) != 5 {
		t.Errorf("insecure plain HTTP: requests %q", got)
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
