package run

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/testenv"
)

// TestSyncThroughFaults syncs through a proxy that answers 10 % of archmirror's registry requests
// with a 5xx, resets 5 % mid-answer and rate-limits 3 % (429, Retry-After 1 s) — every kind the
// retry policy must absorb. BuildKit's own pushes pass untouched (its retries are BuildKit's).
// The run must succeed as if nothing happened, with every version complete and latest right.
func TestSyncThroughFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images")
	}
	w := testenv.NewWorld(t)
	archmirrorOnly := func(r *http.Request) bool {
		ua := strings.ToLower(r.UserAgent())
		return !strings.Contains(ua, "buildkit") && !strings.Contains(ua, "containerd")
	}
	fp, cfg := behindProxy(t, w, testenv.Faults{
		Seed: 7, ServerError: 0.10, Reset: 0.05, TooMany: 0.03, Only: archmirrorOnly,
	})
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() {
		t.Fatalf("sync through faults failed:\n%s\nfaults: %v", describe(rep), fp.Counts())
	}
	if fp.Injected.Load() == 0 {
		t.Fatalf("no fault was injected in %d requests: the test proves nothing", fp.Requests.Load())
	}
	published := 0
	for _, u := range rep.Units {
		if u.Status == publish.Published {
			published++
		}
	}
	if published != 4 {
		t.Fatalf("%d versions published, want 4:\n%s", published, describe(rep))
	}
	t.Logf("%d of %d archmirror requests got a fault: %v", fp.Injected.Load(), fp.Requests.Load(), fp.Counts())

	// A second sync through the same faults finds everything complete.
	rep, err = Sync(context.Background(), cfg, SyncOptions{Parallel: 4})
	if err != nil || rep.Failed() || len(rep.Jobs) != 0 {
		t.Fatalf("second sync: %v\n%s", err, describe(rep))
	}
}

// TestSyncThroughBuildKitPushFaults: the registry answers BuildKit's first 150 writes (blob
// uploads, manifest PUTs) with a 5xx: an outage longer than BuildKit's own retries last (it
// rides out a dozen failures or resets by itself), so some jobs fail their push. Those are built
// again (from BuildKit's cache) and the run succeeds as if nothing happened.
func TestSyncThroughBuildKitPushFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images")
	}
	w := testenv.NewWorld(t)
	var failed atomic.Int32
	outage := func(r *http.Request) bool {
		ua := strings.ToLower(r.UserAgent())
		write := r.Method != http.MethodGet && r.Method != http.MethodHead
		return (strings.Contains(ua, "buildkit") || strings.Contains(ua, "containerd")) && write && failed.Add(1) <= 150
	}
	fp, cfg := behindProxy(t, w, testenv.Faults{Seed: 1, ServerError: 1, Only: outage})
	rep, err := Sync(context.Background(), cfg, SyncOptions{Parallel: 4, PushRetry: retry.Policy{Base: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if fp.Injected.Load() < 150 {
		t.Fatalf("%d of BuildKit's writes failed, want 150: the test proves nothing", fp.Injected.Load())
	}
	if rep.Failed() {
		t.Fatalf("sync with BuildKit's first pushes failing:\n%s\nfaults: %v", describe(rep), fp.Counts())
	}
	retried := 0
	for _, j := range rep.Jobs {
		b, _ := os.ReadFile(j.Log)
		if strings.Contains(string(b), "the push failed") {
			retried++
		}
	}
	if retried == 0 {
		t.Error("no job log says its push failed and it was built again")
	}
	t.Logf("%d of BuildKit's writes failed; %d jobs built again", fp.Injected.Load(), retried)
}

// behindProxy puts a FaultProxy with faults in front of w's registry, and a buildkitd that
// pushes through it, and returns the proxy and w's config of the hello app using both.
func behindProxy(t *testing.T, w *testenv.World, faults testenv.Faults) (*testenv.FaultProxy, *config.Config) {
	t.Helper()
	fp := testenv.NewFaultProxy(t, w.Registry, faults)
	bk := testenv.BuildKit(t, fp.Addr, w.Registry)
	text, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(text), "registry: "+strconv.Quote(w.Namespace), "registry: "+strconv.Quote(fp.Addr+"/mirror"), 1)
	s = strings.Replace(s, strconv.Quote(w.BuildKit), strconv.Quote(bk), 1)
	cfg, err := config.Parse(w.ConfigPath, []byte(s), discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Select("hello"); err != nil {
		t.Fatal(err)
	}
	return fp, cfg
}
