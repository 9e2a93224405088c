// Package bench holds the benchmarks behind BENCHMARKS.md. They use the real parts the tests
// use (Debian's docker-registry via internal/testenv) and the fake upstream.
package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

const (
	apps     = 50
	versions = 10
)

// world: 50 apps with 12 releases each (10 in the window), every version already mirrored as a
// complete two-platform index (distinct index per version, shared platform images).
func world(b *testing.B) (cfgText func(cacheDir string) []byte, up *fakeupstream.Server) {
	b.Helper()
	reg := testenv.Registry(b) + "/bench"
	fx := fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{}}
	base := testenv.Index(b, "linux/amd64", "linux/arm64")
	var y strings.Builder
	for a := range apps {
		app := fmt.Sprintf("app%02d", a)
		var rs []fakeupstream.Release
		for v := 11; v >= 0; v-- { // newest first
			rs = append(rs, fakeupstream.Release{Tag: fmt.Sprintf("v1.%d.0", v), Published: fixture.Epoch.AddDate(0, 0, v)})
		}
		fx.GitHub["acme/"+app] = rs
		fmt.Fprintf(&y, "  %s:\n    source: {github: acme/%s, api: \"UPSTREAM\"}\n    components:\n      %s: {context: ./ctx}\n", app, app, app)
		for v := 2; v < 12; v++ {
			ver := fmt.Sprintf("1.%d.0", v)
			idx := mutate.Annotations(base, map[string]string{"org.opencontainers.image.title": app, "org.opencontainers.image.version": ver}).(v1.ImageIndex)
			ref, err := name.NewTag(fmt.Sprintf("%s/%s:%s", reg, app, ver))
			if err != nil {
				b.Fatal(err)
			}
			if err := remote.WriteIndex(ref, idx); err != nil {
				b.Fatal(err)
			}
		}
	}
	up = fakeupstream.New(fx)
	srv := httptest.NewServer(up)
	b.Cleanup(srv.Close)
	text := strings.ReplaceAll(y.String(), "UPSTREAM", srv.URL)
	return func(cacheDir string) []byte {
		return []byte(fmt.Sprintf("target: {registry: %s}\nversions: {max: %d}\ncache: {dir: %s}\napps:\n%s", reg, versions, cacheDir, text))
	}, up
}

func plan(b *testing.B, cfgText []byte, reg *testenv.Counter) {
	cfg, err := config.Parse("bench.yaml", cfgText, discover.SourceKinds())
	if err != nil {
		b.Fatal(err)
	}
	p, err := run.Plan(context.Background(), cfg, run.Options{Target: []target.Option{target.WithTransport(reg)}})
	if err != nil {
		b.Fatal(err)
	}
	if p.Failed() || len(p.Jobs) != 0 || len(p.Apps) != apps {
		b.Fatalf("plan: failed=%v, %d jobs, %d apps (want every version complete)", p.Failed(), len(p.Jobs), len(p.Apps))
	}
}

// BenchmarkPlan50x10x2 plans 50 apps × 10 versions × 2 platforms, all complete.
// cold: empty ETag and manifest caches; repeat: both warm (every upstream answer a 304).
func BenchmarkPlan50x10x2(b *testing.B) {
	cfgText, up := world(b)
	measure := func(b *testing.B, fresh bool) {
		warmDir := b.TempDir()
		plan(b, cfgText(warmDir), &testenv.Counter{}) // fill the caches
		var upReqs, up304, regReqs, n int64
		var wall time.Duration
		for b.Loop() {
			dir := warmDir
			if fresh {
				b.StopTimer()
				dir = b.TempDir()
				b.StartTimer()
			}
			reg := &testenv.Counter{}
			u0, nm0 := up.Requests.Load(), up.NotModified.Load()
			t0 := time.Now()
			plan(b, cfgText(dir), reg)
			wall += time.Since(t0)
			upReqs += up.Requests.Load() - u0
			up304 += up.NotModified.Load() - nm0
			regReqs += reg.Count()
			n++
		}
		b.ReportMetric(float64(upReqs)/float64(n), "upstream-req/op")
		b.ReportMetric(float64(up304)/float64(n), "upstream-304/op")
		b.ReportMetric(float64(regReqs)/float64(n), "registry-req/op")
		b.ReportMetric(float64(regReqs)/float64(n)/(apps*versions), "registry-req/version")
		b.ReportMetric(wall.Seconds()/float64(n), "s/op")
	}
	b.Run("cold", func(b *testing.B) { measure(b, true) })
	b.Run("repeat", func(b *testing.B) { measure(b, false) })
}
