package discover

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/fakeupstream"
)

func TestRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range []string{"1.25.3", "1.26.0", "latest", "1.27.0-alpine", "1", "1.26"} {
		ref, err := name.NewTag(host+"/library/nginx:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatal(err)
		}
	}
	src := NewRegistry(host+"/library/nginx", WithInsecure(true), WithKeychain(authn.NewMultiKeychain()))
	got, err := src.Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, r := range got {
		tags = append(tags, r.Tag)
	}
	sort.Strings(tags)
	if want := "1 1.25.3 1.26 1.26.0 1.27.0-alpine latest"; strings.Join(tags, " ") != want {
		t.Errorf("tags %v, want %s", tags, want)
	}

	res, err := Discover(context.Background(), src, app("nginx"), win(10, ""), nil, hermetic()...)
	if err != nil {
		t.Fatal(err)
	}
	if v := versions(res); v != "1.26.0 1.25.3" || res.HighestStable != "1.26.0" {
		t.Errorf("versions %q latest %q", v, res.HighestStable)
	}

	_, err = NewRegistry(host+"/library/missing", WithInsecure(true), WithKeychain(authn.NewMultiKeychain())).Releases(context.Background())
	if err == nil || !strings.Contains(err.Error(), "registry "+host+"/library/missing: listing tags") {
		t.Errorf("missing repo: %v", err)
	}
	if _, err := NewRegistry("UPPER/Case!!").Releases(context.Background()); err == nil {
		t.Errorf("bad repository name accepted")
	}
}

// TestRegistryHostile: a registry that paginates forever, loops its Link header, or answers
// an endless tag list ends in an error naming the source (or, for a loop, the tags read so
// far), not in a walk or an allocation without end.
func TestRegistryHostile(t *testing.T) {
	tests := []struct {
		name     string
		tags     func(w http.ResponseWriter, r *http.Request)
		want     string // tags, space-separated, when there is no error
		wantErr  string
		requests int64
	}{
		{
			name: "endless pagination",
			tags: func(w http.ResponseWriter, r *http.Request) {
				n, _ := strconv.Atoi(r.URL.Query().Get("last"))
				w.Header().Set("Link", fmt.Sprintf(`</v2/acme/app/tags/list?last=%d>; rel="next"`, n+1))
				fmt.Fprintf(w, `{"name":"acme/app","tags":["1.0.%d"]}`, n)
			},
			wantErr:  "listing tags: more than 1000 pages",
			requests: 1000,
		},
		{
			name: "a Link loop",
			tags: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", `</v2/acme/app/tags/list?last=a>; rel="next"`)
				fmt.Fprintf(w, `{"name":"acme/app","tags":["1.0.%d"]}`, len(r.URL.Query().Get("last")))
			},
			want:     "1.0.0 1.0.1",
			requests: 2,
		},
		{
			name: "an endless tag list",
			tags: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"name":"acme/app","tags":[`)
				chunk := strings.Repeat(`"1.0.0",`, 1<<17)
				for range 40 {
					if _, err := io.WriteString(w, chunk); err != nil {
						return
					}
				}
			},
			wantErr:  "body too large: larger than 32 MiB",
			requests: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var requests atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					return
				}
				requests.Add(1)
				w.Header().Set("Content-Type", "application/json")
				tt.tags(w, r)
			}))
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			got, err := NewRegistry(host+"/acme/app", WithInsecure(true), WithKeychain(authn.NewMultiKeychain())).Releases(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), "registry "+host+"/acme/app: ") || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %.300v\nwant %q", err, tt.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				var tags []string
				for _, r := range got {
					tags = append(tags, r.Tag)
				}
				if strings.Join(tags, " ") != tt.want {
					t.Errorf("tags %v, want %s", tags, tt.want)
				}
			}
			if requests.Load() != tt.requests {
				t.Errorf("%d tag list requests, want %d", requests.Load(), tt.requests)
			}
		})
	}
}

// staticKeychain has credentials for every registry.
type staticKeychain struct{}

func (staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: "mirror", Password: "REGISTRY-SECRET"}), nil
}

// TestRegistryHTTPSOnly: go-containerregistry falls back to plain HTTP for a private address
// when https fails. Stored credentials must not follow unless the source says insecure: true.
// 10.0.0.5:5000 is the registry as the source names it; the test's transport fails every https
// request there (no TLS) and sends http ones to a local registry that wants Basic credentials.
func TestRegistryHTTPSOnly(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(strings.TrimPrefix(srv.URL, "http://") + "/acme/app:1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "mirror", Password: "REGISTRY-SECRET"})); err != nil {
		t.Fatal(err)
	}
	noTLS := fakeupstream.Reroute(srv.URL, nil)
	client := &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Scheme == "https" {
			return nil, errors.New("tls: first record does not look like a TLS handshake")
		}
		return noTLS.RoundTrip(req)
	})}

	for _, insecure := range []bool{false, true} {
		t.Run(fmt.Sprintf("insecure=%v", insecure), func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			src, err := New(config.Source{Registry: "10.0.0.5:5000/acme/app", Insecure: insecure},
				WithHTTPClient(client), WithKeychain(staticKeychain{}), WithTimeouts(time.Second, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			got, err := src.Releases(context.Background())
			mu.Lock()
			defer mu.Unlock()
			if !insecure {
				if err == nil || !strings.Contains(err.Error(), "plain HTTP to 10.0.0.5:5000 refused (set insecure: true on the source to allow it)") {
					t.Errorf("err = %v", err)
				}
				if len(seen) != 0 {
					t.Errorf("%d requests reached the registry over plain HTTP", len(seen))
				}
				return
			}
			if err != nil || len(got) != 1 || got[0].Tag != "1.0.0" {
				t.Fatalf("tags %v, %v", got, err)
			}
			if !slices.ContainsFunc(seen, func(s string) bool { return strings.HasPrefix(s, "Basic ") }) {
				t.Errorf("the insecure registry never got the credentials: %q", seen)
			}
		})
	}
}

// TestHTTPSOnly is the decision itself, on the requests a registry source can send.
func TestHTTPSOnly(t *testing.T) {
	ok := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	})
	tests := []struct {
		registry string
		insecure bool
		url      string
		allowed  bool
	}{
		{"10.0.0.5:5000", false, "https://10.0.0.5:5000/v2/", true},
		{"10.0.0.5:5000", false, "http://10.0.0.5:5000/v2/", false},
		{"10.0.0.5:5000", true, "http://10.0.0.5:5000/v2/", true},
		{"10.0.0.5:5000", true, "http://10.0.0.5:5001/token", true}, // its own host, another port
		{"10.0.0.5:5000", true, "http://auth.example/token", false}, // a realm elsewhere
		{"registry.local", false, "http://registry.local/v2/", false},
		{"192.168.1.2", false, "http://192.168.1.2/v2/", false},
		{"localhost:5000", false, "http://localhost:5000/v2/", true},
		{"127.0.0.1:5000", false, "http://127.0.0.1:5000/v2/", true},
		{"[::1]:5000", false, "http://[::1]:5000/v2/", true},
		{"ghcr.io", false, "http://ghcr.io/token", false},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(http.MethodGet, tt.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("mirror", "REGISTRY-SECRET")
		resp, err := httpsOnly(tt.registry, tt.insecure, ok).RoundTrip(req)
		if got := err == nil; got != tt.allowed {
			t.Errorf("%s (insecure %v) %s: allowed %v, want %v (%v)", tt.registry, tt.insecure, tt.url, got, tt.allowed, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error carries the credentials: %v", err)
		}
	}
}
