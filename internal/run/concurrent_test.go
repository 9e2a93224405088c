package run

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/lease"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// Two syncs started at once on one target (cron overlap, two replicas) share the apps through
// their leases: every job is built exactly once between them, each app by one run, the other
// run lists it as held, and the registry ends complete with latest right — as after one run.
func TestConcurrentSyncs(t *testing.T) {
	cfg := fakeWorld(t)
	fbs := []*fakeBuilder{{t: t}, {t: t}}
	reps := make([]Report, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			<-start
			reps[i], errs[i] = Sync(context.Background(), cfg, SyncOptions{Parallel: 4, NewBuilder: func(config.Node) build.Builder { return fbs[i] }})
		})
	}
	close(start)
	wg.Wait()
	built := map[string]int{}
	for i := range 2 {
		if errs[i] != nil || reps[i].Failed() {
			t.Fatalf("run %d: %v\n%s", i, errs[i], describe(reps[i]))
		}
		for _, id := range fbs[i].builtIDs {
			built[id]++
		}
	}
	if len(built) != 20 {
		t.Errorf("%d distinct jobs built, want the fixture's 20", len(built))
	}
	for id, n := range built {
		if n != 1 {
			t.Errorf("%s built %d times", id, n)
		}
	}
	// An app is built by one run; the other held it, or found it done when it looked.
	held := 0
	for _, a := range cfg.Apps {
		for i, r := range reps {
			other := reps[1-i]
			if !slices.ContainsFunc(r.Jobs, func(j JobResult) bool { return j.App == a.Name }) {
				continue
			}
			if slices.ContainsFunc(other.Jobs, func(j JobResult) bool { return j.App == a.Name }) {
				t.Errorf("%s: both runs built jobs of it", a.Name)
			}
			for _, h := range other.Held {
				if h.App == a.Name {
					held++
					if !strings.Contains(h.Holder, "archmirror-") {
						t.Errorf("%s held by %q: no run id", a.Name, h.Holder)
					}
				}
			}
		}
	}
	t.Logf("apps held by the other run: %d of %d", held, len(cfg.Apps))
	if held == 0 {
		t.Error("no app was held by the other run: the runs did not overlap, the test proves nothing")
	}

	// The leases were released: one more run takes every app, and finds nothing to do.
	fb := &fakeBuilder{t: t}
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 4, NewBuilder: func(config.Node) build.Builder { return fb }})
	if err != nil || rep.Failed() || len(rep.Held) != 0 || len(rep.Jobs) != 0 {
		t.Fatalf("the run after: %v, held %v, %d jobs\n%s", err, rep.Held, len(rep.Jobs), describe(rep))
	}
	tgt, err := openTarget(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range cfg.Apps {
		st, err := tgt.Inspect(t.Context(), a.Components[0].Name, lease.Tag)
		if err != nil || !st.Exists || !strings.Contains(st.Annotations[lease.AnnotationExpires], "T") {
			t.Errorf("%s: lease tag %+v, %v", a.Name, st, err)
		}
	}
	for _, c := range []struct{ repo, version string }{{"hello", "2.1.0"}, {"twostep", "0.3.0"}} {
		st, err := tgt.Inspect(t.Context(), c.repo, publish.LatestTag)
		if err != nil || st.Annotations[publish.AnnotationVersion] != c.version || len(st.Platforms) != 2 {
			t.Errorf("%s:latest = %s %v (%v), want complete %s", c.repo, st.Annotations[publish.AnnotationVersion], st.Platforms, err, c.version)
		}
	}
}

// interleave runs before, once, just before the first request for which match is true goes
// out: another writer acting inside this run's read-to-write window.
type interleave struct {
	next   http.RoundTripper
	match  func(*http.Request) bool
	before func()
	once   sync.Once
	fired  atomic.Bool
}

func (i *interleave) RoundTrip(r *http.Request) (*http.Response, error) {
	if i.match(r) {
		i.once.Do(func() { i.before(); i.fired.Store(true) })
	}
	return i.next.RoundTrip(r)
}

// Latest is not lost to a race with another run: here the other run publishes a higher version
// (2.1.0, whose build failed in this run) and moves latest to it between this run's guard
// check of latest and its PUT of 2.0.0. The PUT overwrites it — registries have no
// compare-and-swap — and the run must notice after its write and move latest on to 2.1.0.
func TestLatestNotLostToAnotherRun(t *testing.T) {
	cfg := fakeWorld(t)
	if err := cfg.Select("hello"); err != nil {
		t.Fatal(err)
	}
	other, err := target.New(config.Target{Registry: cfg.Target.Registry})
	if err != nil {
		t.Fatal(err)
	}
	var otherDigest string
	hook := &interleave{
		next: http.DefaultTransport,
		match: func(r *http.Request) bool {
			return r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/hello/manifests/latest")
		},
		before: func() {
			built := map[string]string{}
			for _, p := range []string{"linux/amd64", "linux/arm64"} {
				img := testenv.Image(t, p)
				d, _ := img.Digest()
				ref, err := name.NewDigest(cfg.Target.Registry + "/hello@" + d.String())
				if err != nil {
					t.Fatal(err)
				}
				if err := remote.Write(ref, img); err != nil {
					t.Fatal(err)
				}
				built[p] = d.String()
			}
			res, err := publish.New(other).Publish(context.Background(), publish.Unit{
				Repo: "hello", Version: "2.1.0", Platforms: cfg.Apps[0].Platforms, Built: built, Stable: true,
			})
			if err != nil || !res.Latest {
				t.Errorf("the other run's publish: %+v, %v", res, err)
			}
			otherDigest = res.Digest
		},
	}
	fb := &fakeBuilder{t: t, fail: func(s build.Spec) bool { return strings.Contains(s.JobID, "/2.1.0/") }}
	rep, err := Sync(context.Background(), cfg, SyncOptions{
		Options:    Options{Target: []target.Option{target.WithTransport(hook)}},
		Parallel:   4,
		NewBuilder: func(config.Node) build.Builder { return fb },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !hook.fired.Load() {
		t.Fatalf("the other run never acted: no PUT of latest\n%s", describe(rep))
	}
	st, err := other.Inspect(t.Context(), "hello", publish.LatestTag)
	if err != nil {
		t.Fatal(err)
	}
	if st.Digest != otherDigest {
		t.Errorf("latest = %s (%s), want the other run's 2.1.0 %s: its update was lost", st.Digest, st.Annotations[publish.AnnotationVersion], otherDigest)
	}
}
