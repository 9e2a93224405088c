package run

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// world is the fixture upstream plus a target seeded with hello 2.0.0 complete and hello 1.1.0
// missing arm64.
func world(t *testing.T, registry string) (*config.Config, *fakeupstream.Server) {
	t.Helper()
	up := fakeupstream.New(fixture.Fixture())
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	testenv.PushIndex(t, registry+"/hello:2.0.0", "linux/amd64", "linux/arm64")
	testenv.PushIndex(t, registry+"/hello:1.1.0", "linux/amd64")
	cfg, err := config.Parse("demo.yaml", fixture.Config(fixture.Params{Upstream: srv.URL, Registry: registry, CacheDir: t.TempDir()}), discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	return cfg, up
}

func targets(t *testing.T) map[string]string {
	return map[string]string{
		"registry": testenv.Registry(t) + "/mirror",
		"layout":   "oci:" + filepath.Join(t.TempDir(), "mirror"),
	}
}

func TestPlanAgainstRealTargets(t *testing.T) {
	for kind, reg := range targets(t) {
		t.Run(kind, func(t *testing.T) {
			cfg, _ := world(t, reg)
			p, err := Plan(context.Background(), cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Failed() {
				t.Fatalf("plan failed: %+v", p.Apps)
			}
			hello := p.Apps[0]
			var got []string
			for _, v := range hello.Versions {
				got = append(got, v.Version+"="+string(v.Components[0].Status))
			}
			// The window is the 4 most recently published, the backport 1.1.1 (the newest release) first; the
			// pre-release, the draft and "nightly" are not in it, and latest is the highest (2.1.0).
			if want := "1.1.1=missing 2.1.0=missing 2.0.0=complete 1.1.0=incomplete"; strings.Join(got, " ") != want {
				t.Errorf("hello versions = %s, want %s", strings.Join(got, " "), want)
			}
			if hello.Latest != "2.1.0" {
				t.Errorf("latest = %s", hello.Latest)
			}
			if m := hello.Versions[3].Components[0].Missing; len(m) != 1 || m[0] != "linux/arm64" {
				t.Errorf("1.1.0 missing = %v", m)
			}
			fork := p.Apps[1]
			if len(fork.Versions) != 2 || fork.Versions[0].Version != "2.1.0" || fork.Versions[1].Version != "2.0.0" {
				t.Errorf("hello-fork versions = %+v", fork.Versions)
			}
			gated := false
			for _, s := range fork.Skipped {
				if s.Tag == "v1.1.1" && strings.Contains(s.Reason, "linux/arm64") && strings.Contains(s.Reason, "404") {
					gated = true
				}
			}
			if !gated {
				t.Errorf("hello-fork 1.1.1 not skipped by its arm64 gate: %+v", fork.Skipped)
			}
			byID := map[string]plan.Job{}
			for _, j := range p.Jobs {
				byID[j.ID] = j
			}
			if len(p.Jobs) != 17 {
				t.Errorf("%d jobs, want 17", len(p.Jobs))
			}
			app := byID["twostep/twostep/0.3.0/linux-arm64"]
			if app.Stage != 1 || len(app.Needs) != 2 || !app.Latest {
				t.Errorf("twostep job = %+v", app)
			}
			if _, ok := byID["hello/hello/2.0.0/linux-amd64"]; ok {
				t.Error("a complete version was planned")
			}
			if j := byID["hello/hello/1.1.0/linux-arm64"]; j.Reason != plan.Incomplete {
				t.Errorf("repair job = %+v", j)
			}
		})
	}
}

// The repeat-run budget: every upstream answer a 304, and one registry request per version
// per component (HEAD; manifests come from the digest cache).
func TestPlanRepeatCosts(t *testing.T) {
	reg := testenv.Registry(t) + "/mirror"
	cfg, up := world(t, reg)
	versions := 0
	cold := &testenv.Counter{}
	if _, err := Plan(context.Background(), cfg, Options{Target: []target.Option{target.WithTransport(cold)}}); err != nil {
		t.Fatal(err)
	}
	coldUp := up.Requests.Load()

	warm := &testenv.Counter{}
	p, err := Plan(context.Background(), cfg, Options{Target: []target.Option{target.WithTransport(warm)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.Apps {
		for _, v := range a.Versions {
			versions += len(v.Components)
		}
	}
	t.Logf("cold: %d registry requests, %d upstream; repeat: %d registry requests for %d version×component, upstream %d (304s %d)", cold.Count(), coldUp, warm.Count(), versions, up.Requests.Load()-coldUp, up.NotModified.Load())
	setup := int64(2) // one /v2/ ping per run (tried on https and http for a loopback registry)
	if got := warm.Count(); got > int64(versions)+setup {
		t.Errorf("repeat run: %d registry requests for %d version×component (+%d setup)", got, versions, setup)
	}
	if got := cold.Count(); got <= warm.Count() {
		t.Errorf("cold run made %d requests, repeat %d: the manifest cache did nothing", got, warm.Count())
	}
	upRepeat := up.Requests.Load() - coldUp
	if ok := up.OK.Load(); upRepeat == 0 || up.NotModified.Load() == 0 {
		t.Errorf("repeat upstream requests %d, 304s %d, 200s %d", upRepeat, up.NotModified.Load(), ok)
	}
	// Release pages are all 304 on the repeat; only require: gate probes (HEAD of files) are 200s.
	if pages := up.Hits("/repos/"); pages == 0 {
		t.Error("no release pages requested")
	}
}

// One app's upstream failing leaves the others planned.
func TestPlanOneAppFails(t *testing.T) {
	reg := "oci:" + filepath.Join(t.TempDir(), "mirror")
	up := fakeupstream.New(fixture.Fixture())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/repos/acme/twostep/") {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
			return
		}
		up.ServeHTTP(w, r)
	}))
	defer srv.Close()
	cfg, err := config.Parse("demo.yaml", fixture.Config(fixture.Params{Upstream: srv.URL, Registry: reg, CacheDir: t.TempDir()}), discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Plan(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Failed() || p.Apps[2].Error == "" || !strings.Contains(p.Apps[2].Error, "502") {
		t.Fatalf("twostep error = %q", p.Apps[2].Error)
	}
	if len(p.Apps[0].Versions) != 4 || len(p.Apps[1].Versions) != 2 {
		t.Errorf("other apps not planned: %+v", p.Apps[:2])
	}
	for _, j := range p.Jobs {
		if j.App == "twostep" {
			t.Errorf("job for the failed app: %s", j.ID)
		}
	}
}
