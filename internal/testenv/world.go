package testenv

import (
	"context"
	"crypto/subtle"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
)

// World is the real setting of the sync tests and benchmarks: docker-registry (behind a
// counting proxy), buildkitd (arm64 through qemu), the busybox base image, and the fixture
// upstream serving per-arch release tarballs; with the fixture config written to ConfigPath.
type World struct {
	Registry    string // host:port of the proxy in front of the registry (what everything uses)
	Namespace   string // Registry + "/mirror": target.registry
	BuildKit    string // buildkitd address
	Upstream    *fakeupstream.Server
	UpstreamURL string // where the config's sources and downloads point: the fake upstream
	ConfigPath  string
	Dir         string
	Uploaded    *atomic.Int64 // request body bytes written to the registry (blobs and manifests)
}

var programs = sync.OnceValues(func() (map[string][]byte, error) { return fixture.Programs(context.Background()) })

// WorldOption changes NewWorld's setting.
type WorldOption func(*worldOptions)

type worldOptions struct {
	referrers      bool
	sign           string
	target         string
	user, pass, pw string // WithBasicAuth
	token          string // WithSourceToken
}

// WithSourceToken writes token: ref (env://NAME; the caller sets NAME) into every source of the
// config: the fake upstream is not api.github.com, so $GITHUB_TOKEN never reaches it.
func WithSourceToken(ref string) WorldOption { return func(o *worldOptions) { o.token = ref } }

// WithBasicAuth puts a proxy that wants Basic credentials user:pass in front of the registry
// (the base image is pushed behind it), and writes them into the config's target, the password
// as passwordRef (env://NAME; the caller sets NAME).
func WithBasicAuth(user, pass, passwordRef string) WorldOption {
	return func(o *worldOptions) { o.user, o.pass, o.pw = user, pass, passwordRef }
}

// WithReferrersAPI puts go-containerregistry's registry, which has the OCI referrers API, behind
// the proxy instead of docker-registry, which has not.
func WithReferrersAPI() WorldOption { return func(o *worldOptions) { o.referrers = true } }

// WithSign writes sign (the config's sign: value) into the config.
func WithSign(sign string) WorldOption { return func(o *worldOptions) { o.sign = sign } }

// WithTarget makes the config's target.registry target (an "oci:DIR" layout, say) instead of
// the registry's namespace; base images still come from the registry.
func WithTarget(target string) WorldOption { return func(o *worldOptions) { o.target = target } }

// NewWorld starts everything (skipping, or failing under ARCHMIRROR_E2E=1, when a part is
// missing) and stops it in t.Cleanup.
func NewWorld(t testing.TB, opts ...WorldOption) *World {
	t.Helper()
	var o worldOptions
	for _, opt := range opts {
		opt(&o)
	}
	var backend string
	if o.referrers {
		backend = ReferrersRegistry(t)
	} else {
		backend = Registry(t)
	}
	w := &World{Uploaded: &atomic.Int64{}}
	w.Registry = countingProxy(t, backend, w.Uploaded, "", "")
	base := w.Registry
	if o.user != "" {
		w.Registry = countingProxy(t, backend, w.Uploaded, o.user, o.pass)
	}
	insecure := []string{w.Registry}
	if base != w.Registry {
		insecure = append(insecure, base)
	}
	w.BuildKit = BuildKit(t, insecure...)
	_, _, amd64 := BaseImage(t, base)
	progs, err := programs()
	if err != nil {
		t.Fatal(err)
	}
	fx := fixture.Fixture()
	if err := fixture.WithTarballs(fx, progs); err != nil {
		t.Fatal(err)
	}
	w.Upstream = fakeupstream.New(fx)
	srv := httptest.NewServer(w.Upstream)
	t.Cleanup(srv.Close)
	w.UpstreamURL = srv.URL
	w.Dir = t.TempDir()
	if err := fixture.Contexts(filepath.Join(w.Dir, "contexts"), w.Registry+"/base", amd64.String()); err != nil {
		t.Fatal(err)
	}
	w.Namespace = w.Registry + "/mirror"
	w.ConfigPath = filepath.Join(w.Dir, "mirror.yaml")
	tgt := w.Namespace
	if o.target != "" {
		tgt = o.target
	}
	text := fixture.Config(fixture.Params{Upstream: srv.URL, Registry: tgt, CacheDir: filepath.Join(w.Dir, "cache"), Builder: w.BuildKit, Sign: o.sign,
		Username: o.user, PasswordRef: o.pw, TokenRef: o.token})
	if err := os.WriteFile(w.ConfigPath, text, 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// countingProxy is a loopback reverse proxy to the registry that adds up the bytes of every
// request body (what clients upload), so a test can see what a run pushed — BuildKit's pushes
// included, which no transport of ours sees. With user set it wants those Basic credentials
// on every request, as a registry with a password does.
func countingProxy(t testing.TB, backend string, uploaded *atomic.Int64, user, pass string) string {
	t.Helper()
	u, err := url.Parse("http://" + backend)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a client that goes away mid-request is not news
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user != "" {
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u+"\x00"+p), []byte(user+"\x00"+pass)) != 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="archmirror-test"`)
				w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
				http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
				return
			}
			r.Header.Del("Authorization")
		}
		if r.Body != nil {
			r.Body = countingBody{r.Body, uploaded}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}
