package discover

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
	if v := versions(res); v != "1.26.0 1.25.3" || res.Latest != "1.26.0" {
		t.Errorf("versions %q latest %q", v, res.Latest)
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
