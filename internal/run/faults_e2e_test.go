package run

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/publish"
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
	fp := testenv.NewFaultProxy(t, w.Registry, testenv.Faults{
		Seed: 7, ServerError: 0.10, Reset: 0.05, TooMany: 0.03, Only: archmirrorOnly,
	})
	bk := testenv.BuildKit(t, fp.Addr, w.Registry)
	text, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(text), "registry: "+strconv.Quote(w.Namespace), "registry: "+strconv.Quote(fp.Addr+"/mirror"), 1)
	s = strings.Replace(s, strconv.Quote(w.BuildKit), strconv.Quote(bk), 1)
	cfg, err := config.Parse(w.ConfigPath, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Select("hello"); err != nil {
		t.Fatal(err)
	}
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
