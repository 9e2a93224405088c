package target_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/hostlimit"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

const (
	ociIndex    = "application/vnd.oci.image.index.v1+json"
	ociManifest = "application/vnd.oci.image.manifest.v1+json"
	amd64       = "linux/amd64"
	arm64       = "linux/arm64"
)

// inspectCase is one repo:tag: what a test pushes there, and the State the target must report.
type inspectCase struct {
	name      string
	repo, tag string
	// push fills the target through ref(repo, tag) and returns the digest the tag ends at
	// ("" when the tag must not exist).
	push func(t *testing.T, ref func(repo, tag string) string) string
	want target.State // Digest is filled from push
}

func inspectCases() []inspectCase {
	return []inspectCase{
		{name: "complete index", repo: "complete", tag: "1.2.0",
			push: func(t *testing.T, ref func(string, string) string) string {
				return testenv.PushIndex(t, ref("complete", "1.2.0"), amd64, arm64).String()
			},
			want: target.State{Exists: true, MediaType: ociIndex, Platforms: []string{amd64, arm64}}},
		{name: "incomplete index", repo: "incomplete", tag: "1.2.0",
			push: func(t *testing.T, ref func(string, string) string) string {
				return testenv.PushIndex(t, ref("incomplete", "1.2.0"), amd64).String()
			},
			want: target.State{Exists: true, MediaType: ociIndex, Platforms: []string{amd64}}},
		{name: "absent tag", repo: "absent-tag", tag: "1.2.0",
			push: func(t *testing.T, ref func(string, string) string) string {
				testenv.PushIndex(t, ref("absent-tag", "1.1.0"), amd64, arm64)
				return ""
			}},
		{name: "absent repo", repo: "absent-repo", tag: "1.2.0",
			push: func(*testing.T, func(string, string) string) string { return "" }},
		{name: "attestations are not platforms", repo: "attested", tag: "1.2.0",
			push: func(t *testing.T, ref func(string, string) string) string {
				return testenv.PushIndex(t, ref("attested", "1.2.0"), amd64, testenv.Attestation, arm64, testenv.Attestation).String()
			},
			want: target.State{Exists: true, MediaType: ociIndex, Platforms: []string{amd64, arm64}}},
		{name: "arm64 v8 is arm64", repo: "variant", tag: "1.2.0",
			push: func(t *testing.T, ref func(string, string) string) string {
				return testenv.PushIndex(t, ref("variant", "1.2.0"), "linux/arm64/v8", amd64).String()
			},
			want: target.State{Exists: true, MediaType: ociIndex, Platforms: []string{amd64, arm64}}},
		{name: "single-platform manifest", repo: "plain", tag: "1.2.0",
			push: func(t *testing.T, ref func(string, string) string) string {
				return testenv.PushImage(t, ref("plain", "1.2.0"), "linux/arm64/v8").String()
			},
			want: target.State{Exists: true, MediaType: ociManifest, Platforms: []string{arm64}}},
		{name: "annotations", repo: "annotated", tag: "1.2.0",
			push: func(t *testing.T, ref func(string, string) string) string {
				idx := mutate.Annotations(testenv.Index(t, amd64, arm64), map[string]string{
					"org.opencontainers.image.version": "1.2.0",
				}).(v1.ImageIndex)
				return testenv.Push(t, ref("annotated", "1.2.0"), idx).String()
			},
			want: target.State{Exists: true, MediaType: ociIndex, Platforms: []string{amd64, arm64},
				Annotations: map[string]string{"org.opencontainers.image.version": "1.2.0"}}},
		{name: "moved tag", repo: "moved", tag: "latest",
			push: func(t *testing.T, ref func(string, string) string) string {
				testenv.PushIndex(t, ref("moved", "latest"), amd64)
				return testenv.PushIndex(t, ref("moved", "latest"), amd64, arm64).String()
			},
			want: target.State{Exists: true, MediaType: ociIndex, Platforms: []string{amd64, arm64}}},
	}
}

// TestInspect runs the same cases against a real registry (distribution) and an OCI layout.
func TestInspect(t *testing.T) {
	backends := []struct {
		name string
		root func(t *testing.T) string // the config's target.registry
	}{
		{"registry", func(t *testing.T) string { return testenv.Registry(t) + "/mirror" }},
		{"layout", func(t *testing.T) string { return "oci:" + t.TempDir() }},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			root := b.root(t)
			ref := func(repo, tag string) string { return root + "/" + repo + ":" + tag }
			tgt, err := target.New(config.Target{Registry: root}, target.WithCacheDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			cases := inspectCases()
			var reqs []target.Request
			var want []target.State
			for _, c := range cases {
				w := c.want
				w.Digest = c.push(t, ref)
				want = append(want, w)
				reqs = append(reqs, target.Request{Repo: c.repo, Tag: c.tag})
			}
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					st, err := tgt.Inspect(t.Context(), c.repo, c.tag)
					if err != nil {
						t.Fatal(err)
					}
					if !reflect.DeepEqual(withoutManifest(t, st), want[i]) {
						t.Errorf("State = %+v\nwant    %+v", st, want[i])
					}
				})
			}
			t.Run("InspectAll", func(t *testing.T) {
				bad := target.Request{Repo: "../escape", Tag: "1.2.0"}
				res := target.InspectAll(t.Context(), tgt, append(slices.Clone(reqs), bad), 3)
				for i, r := range res[:len(reqs)] {
					if r.Request != reqs[i] || r.Err != nil || !reflect.DeepEqual(withoutManifest(t, r.State), want[i]) {
						t.Errorf("result %d = %+v, want %+v", i, r, want[i])
					}
				}
				last := res[len(reqs)]
				if last.Err == nil || !strings.Contains(last.Err.Error(), `repo "../escape"`) {
					t.Errorf("bad request: err = %v", last.Err)
				}
			})
		})
	}
}

// withoutManifest checks that st.Manifest is the content of st.Digest, and returns st without
// it, to compare with an expected State.
func withoutManifest(t *testing.T, st target.State) target.State {
	t.Helper()
	if st.Exists {
		sum := sha256.Sum256(st.Manifest)
		if d := "sha256:" + hex.EncodeToString(sum[:]); d != st.Digest {
			t.Errorf("State.Manifest is %s, not %s", d, st.Digest)
		}
	} else if st.Manifest != nil {
		t.Errorf("absent State has a manifest")
	}
	checkDigests(t, st)
	st.Manifest, st.Digests = nil, nil
	return st
}

// checkDigests checks that State.Digests names every platform, each with a digest the manifest
// lists (an index's entry) or is (a single image).
func checkDigests(t *testing.T, st target.State) {
	t.Helper()
	if len(st.Digests) != len(st.Platforms) {
		t.Errorf("Digests %v for platforms %v", st.Digests, st.Platforms)
	}
	for _, p := range st.Platforms {
		d, ok := st.Digests[p]
		if !ok || (d != st.Digest && !strings.Contains(string(st.Manifest), `"`+d+`"`)) {
			t.Errorf("Digests[%s] = %q: not in the manifest %s", p, d, st.Manifest)
		}
	}
}

// counter is a RoundTripper that records each request: "HEAD /v2/mirror/app/manifests/1.2.0",
// or "GET /v2/ (https)" for one over https.
type counter struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []string
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	s := r.Method + " " + r.URL.Path
	if r.URL.Scheme == "https" {
		s += " (https)"
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, s)
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *counter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.reqs
	c.reqs = nil
	return r
}

func newCounter() *counter { return &counter{next: http.DefaultTransport} }

// ping is what a target costs once, on its first Inspect, against a registry on loopback:
// go-containerregistry's GET /v2/ tries https first and falls back to plain http for a
// loopback host. Every request after it goes straight to the http that answered.
var ping = []string{"GET /v2/ (https)", "GET /v2/"}

func with(first []string, then ...string) []string { return append(slices.Clone(first), then...) }

// TestRequestCount shows the cost of an inspection: once per target (per run) the ping, then
// HEAD, and GET by digest only on a cache miss, so an unchanged tag costs one request, even
// from a new process.
func TestRequestCount(t *testing.T) {
	host := testenv.Registry(t)
	cfg := config.Target{Registry: host + "/mirror"}
	idx := testenv.PushIndex(t, host+"/mirror/app:1.2.0", amd64, arm64)
	img := testenv.PushImage(t, host+"/mirror/single:1.0.0", amd64)
	cache := t.TempDir()

	c1 := newCounter()
	cold, err := target.New(cfg, target.WithTransport(c1), target.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	inspect := func(tgt target.Target, repo, tag string) target.State {
		t.Helper()
		st, err := tgt.Inspect(t.Context(), repo, tag)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	expect := func(c *counter, want ...string) {
		t.Helper()
		if got := c.take(); !slices.Equal(got, want) {
			t.Errorf("requests = %q\nwant       %q", got, want)
		}
	}

	// A cold index: the ping, HEAD, GET.
	inspect(cold, "app", "1.2.0")
	expect(c1, with(ping, "HEAD /v2/mirror/app/manifests/1.2.0", "GET /v2/mirror/app/manifests/"+idx.String())...)
	inspect(cold, "app", "1.2.0")
	expect(c1, "HEAD /v2/mirror/app/manifests/1.2.0")
	// A single image also needs its config for the platform: one more GET, cached too.
	inspect(cold, "single", "1.0.0")
	st := inspect(cold, "single", "1.0.0")
	reqs := c1.take()
	if len(reqs) != 4 || reqs[0] != "HEAD /v2/mirror/single/manifests/1.0.0" ||
		reqs[1] != "GET /v2/mirror/single/manifests/"+img.String() || !strings.HasPrefix(reqs[2], "GET /v2/mirror/single/blobs/sha256:") ||
		reqs[3] != "HEAD /v2/mirror/single/manifests/1.0.0" {
		t.Errorf("single image requests = %q", reqs)
	}
	if !slices.Equal(st.Platforms, []string{amd64}) {
		t.Errorf("single image platforms = %v", st.Platforms)
	}

	// A new process with the same cache directory: one HEAD per tag, nothing else.
	c2 := newCounter()
	var logs bytes.Buffer
	warm, err := target.New(cfg, target.WithTransport(c2), target.WithCacheDir(cache),
		target.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	st = inspect(warm, "app", "1.2.0")
	expect(c2, with(ping, "HEAD /v2/mirror/app/manifests/1.2.0")...)
	if st.Digest != idx.String() || !slices.Equal(st.Platforms, []string{amd64, arm64}) {
		t.Errorf("warm State = %+v", st)
	}
	inspect(warm, "single", "1.0.0")
	expect(c2, "HEAD /v2/mirror/single/manifests/1.0.0")

	// A missing tag or repo costs its HEAD.
	if st := inspect(warm, "app", "9.9.9"); st.Exists {
		t.Errorf("missing tag: %+v", st)
	}
	if st := inspect(warm, "nothing", "1.0.0"); st.Exists {
		t.Errorf("missing repo: %+v", st)
	}
	expect(c2, "HEAD /v2/mirror/app/manifests/9.9.9", "HEAD /v2/mirror/nothing/manifests/1.0.0")

	// A corrupt cache entry is a miss, and is repaired.
	path := filepath.Join(cache, "blobs", "sha256", idx.Hex)
	if err := os.WriteFile(path, []byte(`{"manifests":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if st := inspect(warm, "app", "1.2.0"); !slices.Equal(st.Platforms, []string{amd64, arm64}) {
		t.Errorf("after corruption: %+v", st)
	}
	expect(c2, "HEAD /v2/mirror/app/manifests/1.2.0", "GET /v2/mirror/app/manifests/"+idx.String())
	if !strings.Contains(logs.String(), "dropping corrupt entry") {
		t.Errorf("no warning about the corrupt entry; logs:\n%s", logs.String())
	}
	inspect(warm, "app", "1.2.0")
	expect(c2, "HEAD /v2/mirror/app/manifests/1.2.0")

	// Without a cache directory, every inspection GETs the manifest.
	c3 := newCounter()
	nocache, err := target.New(cfg, target.WithTransport(c3))
	if err != nil {
		t.Fatal(err)
	}
	inspect(nocache, "app", "1.2.0")
	inspect(nocache, "app", "1.2.0")
	if n := len(c3.take()); n != len(ping)+4 {
		t.Errorf("without a cache: %d requests, want %d", n, len(ping)+4)
	}

	// Concurrent first inspections share one ping.
	c4 := newCounter()
	fresh, err := target.New(cfg, target.WithTransport(c4), target.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	var many []target.Request
	for range 4 {
		many = append(many, target.Request{Repo: "app", Tag: "1.2.0"}, target.Request{Repo: "single", Tag: "1.0.0"})
	}
	for _, r := range target.InspectAll(t.Context(), fresh, many, len(many)) {
		if r.Err != nil || !r.State.Exists {
			t.Errorf("concurrent: %+v", r)
		}
	}
	reqs = c4.take()
	slices.Sort(reqs)
	want := with(ping, slices.Repeat([]string{"HEAD /v2/mirror/app/manifests/1.2.0", "HEAD /v2/mirror/single/manifests/1.0.0"}, 4)...)
	slices.Sort(want)
	if !slices.Equal(reqs, want) {
		t.Errorf("concurrent requests = %q\nwant                  %q", reqs, want)
	}
}

// serverHost starts h and returns its host:port.
func serverHost(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// apiRoot answers the ping (GET /v2/) and hands every other request to h.
func apiRoot(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		h(w, r)
	})
}

func TestInspectServerError(t *testing.T) {
	host := serverHost(t, apiRoot(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	c := newCounter()
	tgt, err := target.New(config.Target{Registry: host + "/mirror"}, target.WithTransport(c), target.WithRetry(noRetry))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	want := "inspect " + host + "/mirror/app:1.2.0: HEAD: 503 Service Unavailable"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("err does not wrap the registry's answer: %#v", err)
	}
	// No retries under the target's transport: those belong to a transport the caller gives.
	if got, want := c.take(), with(ping, "HEAD /v2/mirror/app/manifests/1.2.0"); !slices.Equal(got, want) {
		t.Errorf("requests = %q\nwant       %q", got, want)
	}
}

// noRetry makes one attempt per request: the error tests count what one failure causes.
var noRetry = retry.Policy{Attempts: 1}

// TestInspectRetries: a registry that answers 503 twice, then normally, is inspected without an
// error (archmirror's retry policy, honouring Retry-After).
func TestInspectRetries(t *testing.T) {
	var fails atomic.Int32
	host := serverHost(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/v2/" {
			http.NotFound(w, r)
		}
	}))
	tgt, err := target.New(config.Target{Registry: host + "/mirror"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := tgt.Inspect(t.Context(), "app", "1.2.0"); err != nil || st.Exists {
		t.Fatalf("Inspect after two 503s = %+v, %v", st, err)
	}
	if fails.Load() < 3 {
		t.Fatalf("%d requests", fails.Load())
	}
}

// A failed ping is an error for that Inspect, and is tried again on the next one.
func TestInspectPingError(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	host := serverHost(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/v2/" {
			http.NotFound(w, r)
		}
	}))
	c := newCounter()
	tgt, err := target.New(config.Target{Registry: host + "/mirror"}, target.WithTransport(c), target.WithRetry(noRetry))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	want := "inspect " + host + "/mirror/app:1.2.0: connect to " + host + ": GET /v2/: 503 Service Unavailable"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
	if got := c.take(); !slices.Equal(got, ping) {
		t.Errorf("requests = %q, want %q", got, ping)
	}
	down.Store(false)
	if st, err := tgt.Inspect(t.Context(), "app", "1.2.0"); err != nil || st.Exists {
		t.Errorf("after recovery: %+v, %v", st, err)
	}
	if got, want := c.take(), with(ping, "HEAD /v2/mirror/app/manifests/1.2.0"); !slices.Equal(got, want) {
		t.Errorf("after recovery: requests = %q\nwant                      %q", got, want)
	}
}

func TestInspectManifestError(t *testing.T) {
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	host := serverHost(t, apiRoot(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			w.Header().Set("Docker-Content-Digest", digest)
			w.Header().Set("Content-Type", ociIndex)
			w.Header().Set("Content-Length", "512")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNKNOWN","message":"storage\nbroke"}]}`))
	}))
	tgt, err := target.New(config.Target{Registry: host + "/mirror"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	want := "inspect " + host + "/mirror/app:1.2.0: manifest " + digest + ": GET: 500 Internal Server Error (UNKNOWN: storage\\nbroke)"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}

func TestInspectWrongContent(t *testing.T) {
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
	host := serverHost(t, apiRoot(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Docker-Content-Digest", digest)
		w.Header().Set("Content-Type", ociIndex)
		_, _ = w.Write([]byte(`{"schemaVersion":2,"manifests":[]}`))
	}))
	cache := t.TempDir()
	tgt, err := target.New(config.Target{Registry: host + "/mirror"}, target.WithCacheDir(cache))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.2.0")
	// go-containerregistry checks a manifest fetched by digest against the digest.
	if err == nil || !strings.Contains(err.Error(), "does not match requested digest: \""+digest+"\"") {
		t.Errorf("err = %v", err)
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "blobs", "*", "*")); len(entries) != 0 {
		t.Errorf("wrong content was cached: %v", entries)
	}
}

func TestInspectAllIsolatesFailures(t *testing.T) {
	host := testenv.Registry(t)
	testenv.PushIndex(t, host+"/mirror/good:1.0.0", amd64, arm64)
	// A proxy that breaks one repo: its failure must stay its own.
	proxy := serverHost(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v2/mirror/broken/") {
			http.Error(w, "", http.StatusBadGateway)
			return
		}
		r.URL.Scheme, r.URL.Host, r.RequestURI = "http", host, ""
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	tgt, err := target.New(config.Target{Registry: proxy + "/mirror"})
	if err != nil {
		t.Fatal(err)
	}
	res := target.InspectAll(t.Context(), tgt, []target.Request{
		{Repo: "good", Tag: "1.0.0"}, {Repo: "broken", Tag: "1.0.0"}, {Repo: "good", Tag: "2.0.0"},
	}, 2)
	if res[0].Err != nil || !slices.Equal(res[0].State.Platforms, []string{amd64, arm64}) {
		t.Errorf("good: %+v", res[0])
	}
	if want := "inspect " + proxy + "/mirror/broken:1.0.0: HEAD: 502 Bad Gateway"; res[1].Err == nil || res[1].Err.Error() != want {
		t.Errorf("broken: err = %v, want %s", res[1].Err, want)
	}
	if res[2].Err != nil || res[2].State.Exists {
		t.Errorf("missing: %+v", res[2])
	}

	// A cancelled context fails what has not started.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, r := range target.InspectAll(ctx, tgt, []target.Request{{Repo: "good", Tag: "1.0.0"}}, 0) {
		if !errors.Is(r.Err, context.Canceled) {
			t.Errorf("cancelled: %+v", r)
		}
	}
}

func TestNew(t *testing.T) {
	for _, reg := range []string{"", "https://ghcr.io/acme", "ghcr.io/Acme/mirror", "ghcr.io/acme/mirror:1.0", "ghcr.io/acme/mirror@sha256:abc", "oci:",
		"ghcr.io:/x", "ghcr.io//x", "acme/mirror", "ghcr.io/acme/", "ghcr.io:port/x"} {
		_, err := target.New(config.Target{Registry: reg})
		if err == nil {
			t.Errorf("New(%q) accepted it", reg)
			continue
		}
		if reg != "" && !strings.Contains(err.Error(), reg) {
			t.Errorf("New(%q): error does not name it: %v", reg, err)
		}
	}
	for _, reg := range []string{"ghcr.io/acme/mirror", "127.0.0.1:5000/mirror", "localhost:5000/a/b", "oci:./mirror", "oci:/var/lib/mirror",
		"[::1]:5000/mirror", "docker.io/acme", "registry-1.example.com/a/b-c/d_e"} {
		if _, err := target.New(config.Target{Registry: reg}); err != nil {
			t.Errorf("New(%q): %v", reg, err)
		}
	}

	_, err := target.New(config.Target{Registry: "ghcr.io/acme/mirror", Username: "bot"})
	if err == nil || !strings.Contains(err.Error(), `username "bot" has no password`) {
		t.Errorf("username without password: %v", err)
	}
	t.Setenv("ARCHMIRROR_TEST_UNSET", "")
	_, err = target.New(config.Target{Registry: "ghcr.io/acme/mirror", Username: "bot", Password: config.Secret{Ref: "env://ARCHMIRROR_TEST_UNSET"}})
	if err == nil || !strings.Contains(err.Error(), "env://ARCHMIRROR_TEST_UNSET") {
		t.Errorf("unset password: %v", err)
	}
}

func TestLayoutRejectsEscapes(t *testing.T) {
	dir := t.TempDir()
	// A layout next to the target root that a traversal would reach.
	testenv.PushIndex(t, "oci:"+filepath.Join(dir, "outside")+":1.0.0", amd64)
	tgt, err := target.New(config.Target{Registry: "oci:" + filepath.Join(dir, "root")})
	if err != nil {
		t.Fatal(err)
	}
	for _, repo := range []string{"../outside", "..", "a/../../outside", "/etc", "."} {
		st, err := tgt.Inspect(t.Context(), repo, "1.0.0")
		if err == nil || st.Exists {
			t.Errorf("Inspect(%q) = %+v, %v; want an error", repo, st, err)
		}
	}
	// A directory without index.json is an absent repo.
	if err := os.MkdirAll(filepath.Join(dir, "root", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if st, err := tgt.Inspect(t.Context(), "empty", "1.0.0"); err != nil || st.Exists {
		t.Errorf("empty dir: %+v, %v", st, err)
	}
}

func TestLayoutCorruptBlob(t *testing.T) {
	dir := t.TempDir()
	d := testenv.PushIndex(t, "oci:"+filepath.Join(dir, "app")+":1.0.0", amd64)
	blob := filepath.Join(dir, "app", "blobs", d.Algorithm, d.Hex)
	if err := os.WriteFile(blob, []byte(`{"manifests":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tgt, err := target.New(config.Target{Registry: "oci:" + dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tgt.Inspect(t.Context(), "app", "1.0.0")
	if err == nil || !strings.Contains(err.Error(), "content does not match digest "+d.String()) ||
		!strings.HasPrefix(err.Error(), "inspect oci:"+filepath.Join(dir, "app")+":1.0.0: ") {
		t.Errorf("err = %v", err)
	}
}

// A registry that answers HEAD without Docker-Content-Digest: the manifest is fetched by tag
// and named by its content.
func TestInspectWithoutDigestHeader(t *testing.T) {
	body, err := os.ReadFile("testdata/oci-index-attestations.json")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	host := serverHost(t, apiRoot(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/mirror/app/manifests/1.2.0" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", ociIndex)
		_, _ = w.Write(body)
	}))
	c := newCounter()
	tgt, err := target.New(config.Target{Registry: host + "/mirror"}, target.WithTransport(c))
	if err != nil {
		t.Fatal(err)
	}
	st, err := tgt.Inspect(t.Context(), "app", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if st.Digest != "sha256:"+hex.EncodeToString(sum[:]) || !slices.Equal(st.Platforms, []string{amd64, arm64}) {
		t.Errorf("State = %+v", st)
	}
	if got := c.take(); !slices.Equal(got, with(ping, "HEAD /v2/mirror/app/manifests/1.2.0", "GET /v2/mirror/app/manifests/1.2.0")) {
		t.Errorf("requests = %q", got)
	}
}

// TestHostLimit: the target keeps at most its host limit of requests in flight to the
// registry, however many inspections run at once; counted at a slow proxy in front of it.
func TestHostLimit(t *testing.T) {
	reg := testenv.Registry(t)
	var now, peak atomic.Int64
	backend, err := url.Parse("http://" + reg)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(backend)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		defer now.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond) // long enough for the others to pile up
		rp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	tgt, err := target.New(config.Target{Registry: strings.TrimPrefix(srv.URL, "http://") + "/mirror"}, target.WithHostLimit(hostlimit.New(3)))
	if err != nil {
		t.Fatal(err)
	}
	var reqs []target.Request
	for i := range 30 {
		reqs = append(reqs, target.Request{Repo: "app", Tag: fmt.Sprintf("1.0.%d", i)})
	}
	for _, r := range target.InspectAll(t.Context(), tgt, reqs, 16) {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if p := peak.Load(); p != 3 {
		t.Errorf("peak requests in flight %d, want the limit, 3", p)
	}
}
