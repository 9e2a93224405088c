package discover

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/testenv"
)

// TestStalledPeers: a peer that accepts the connection and never answers fails the source (or
// gate) that asked it, within the configured timeouts, with an error naming the host.
func TestStalledPeers(t *testing.T) {
	addr := testenv.Stalled(t)
	short := WithTimeouts(300*time.Millisecond, time.Second)
	l, _ := testLogger()
	tests := []struct {
		name string
		run  func(ctx context.Context) error
		want string
	}{
		{"registry", func(ctx context.Context) error {
			_, err := NewRegistry(addr+"/acme/app", short, WithKeychain(authn.NewMultiKeychain())).Releases(ctx)
			return err
		}, addr + ": no answer within"},
		{"git over http", func(ctx context.Context) error {
			_, err := NewGit("http://"+addr+"/x.git", short).Releases(ctx)
			return err
		}, "git http://" + addr + "/x.git: ls-remote: "},
		{"git over http: the request timeout", func(ctx context.Context) error {
			_, err := NewGit("http://"+addr+"/x.git", WithTimeouts(10*time.Second, time.Second)).Releases(ctx)
			return err
		}, "git http://" + addr + "/x.git: ls-remote: no answer within 1s"},
		{"github", func(ctx context.Context) error {
			_, err := NewGitHub("acme/app", hermetic(short, WithAPI("http://"+addr))...).Releases(ctx)
			return err
		}, "github acme/app: releases page 1: GET /repos/acme/app/releases: " + addr + ": no answer within 300ms"},
		{"gitlab", func(ctx context.Context) error {
			_, err := NewGitLab("framagit.org", mmProject, hermetic(short, WithBaseURL("http://"+addr))...).Releases(ctx)
			return err
		}, addr + ": no answer within 300ms"},
		{"url gate", func(ctx context.Context) error {
			_, err := NewGate([]config.Require{{URL: tmpl(t, "http://"+addr+"/v{{.Version}}")}}, nil, short, WithLogger(l)).Check(ctx, ver("1.0.0"))
			return err
		}, "url http://" + addr + "/v1.0.0: HEAD: " + addr + ": no answer within 300ms"},
		{"gitlab-tag gate", func(ctx context.Context) error {
			gate := NewGate([]config.Require{{GitLabTag: &config.GitLabTag{Host: "framagit.org", Project: mmProject, Tag: tmpl(t, "v{{.Version}}")}}}, nil,
				short, WithHTTPClient(&http.Client{Transport: fakeupstream.Reroute("http://"+addr, nil)}))
			_, err := gate.Check(ctx, ver("1.0.0"))
			return err
		}, "gitlab framagit.org " + mmProject + ": tag v1.0.0: framagit.org: no answer within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := tt.run(ctx)
			if ctx.Err() != nil {
				t.Fatalf("still waiting after 20s: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tt.want)
			}
		})
	}
}

// TestRequestBoundsTheBody: a server that sends its headers at once and then trickles the body
// is cut off at the request timeout.
func TestRequestBoundsTheBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for range 100 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			_, _ = w.Write([]byte(" "))
			w.(http.Flusher).Flush()
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := NewGitHub("acme/app", hermetic(WithAPI(srv.URL), WithTimeouts(300*time.Millisecond, time.Second))...).Releases(ctx)
	if want := strings.TrimPrefix(srv.URL, "http://") + ": no answer within 1s"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v\nwant %q", err, want)
	}
}

// TestTwoAppsOneStalled: the stalled app fails alone; the other is discovered.
func TestTwoAppsOneStalled(t *testing.T) {
	addr := testenv.Stalled(t)
	_, good := fake(t, fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(2)}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	apps := []*config.App{
		{Name: "stalled", Source: config.Source{Registry: addr + "/acme/app"}, Versions: &config.Versions{Max: 10, Order: config.OrderSemver}},
		{Name: "good", Source: config.Source{GitHub: "acme/app", API: good.URL}, Versions: &config.Versions{Max: 10, Order: config.OrderPublished}},
	}
	results := make([]Result, len(apps))
	errs := make([]error, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		wg.Go(func() {
			results[i], errs[i] = ForApp(ctx, a, hermetic(WithTimeouts(300*time.Millisecond, time.Second), WithKeychain(authn.NewMultiKeychain()))...)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("still waiting after 20s")
	}
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "discover stalled: registry "+addr+"/acme/app") || !strings.Contains(errs[0].Error(), addr+": no answer within") {
		t.Errorf("stalled app: %v", errs[0])
	}
	if errs[1] != nil || len(results[1].Versions) != 2 {
		t.Errorf("good app: %d versions, %v", len(results[1].Versions), errs[1])
	}
}
