package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// BenchmarkBuilders mirrors the fixture apps (20 platform images, arm64 under QEMU) into a fresh
// namespace per iteration, with one BuildKit node for every job versus one node per platform
// (linux/amd64 and linux/arm64 on two buildkitd processes). Both nodes run on this one machine,
// so the figure shows the routing's cost and the parallelism two daemons give, not what native
// arm64 hardware would.
func BenchmarkBuilders(b *testing.B) {
	w := testenv.NewWorld(b)
	second := testenv.BuildKit(b, w.Registry)
	n := 0 // namespaces used so far: every run of a sub-benchmark mirrors into new ones
	text, err := os.ReadFile(w.ConfigPath)
	if err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct{ name, builders string }{
		{"one-node", `builders: {default: ` + strconv.Quote(w.BuildKit) + `}`},
		{"node-per-platform", `builders: {linux/amd64: ` + strconv.Quote(w.BuildKit) + `, linux/arm64: ` + strconv.Quote(second) + `}`},
	} {
		b.Run(mode.name, func(b *testing.B) {
			cfg, err := config.Parse(w.ConfigPath, []byte(strings.Replace(string(text), `builders: {default: `+strconv.Quote(w.BuildKit)+`}`, mode.builders, 1)), discover.SourceKinds())
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				n++
				c, err := cfg.With(config.Overrides{Target: fmt.Sprintf("%s/%s-%d", w.Registry, mode.name, n)})
				if err != nil {
					b.Fatal(err)
				}
				rep, err := run.Sync(context.Background(), c, run.SyncOptions{Parallel: 4})
				if err != nil || rep.Failed() || len(rep.Jobs) != 20 {
					b.Fatalf("sync: %v, %d jobs", err, len(rep.Jobs))
				}
			}
		})
	}
}

// BenchmarkRecordOverhead measures what the CI fan-out costs in registry traffic over a single
// sync of the same work (hello: 4 versions, 8 jobs): each `build --job` plans (discovery and
// inspection), checks and writes its recording tag, and publish reads the recordings. Reported
// per job: archmirror's own registry requests and the bytes it sends (not BuildKit's pushes,
// the same in both).
func BenchmarkRecordOverhead(b *testing.B) {
	w := testenv.NewWorld(b)
	n := 0
	base, err := config.Load(w.ConfigPath, discover.SourceKinds())
	if err != nil {
		b.Fatal(err)
	}
	if err := base.Select("hello"); err != nil {
		b.Fatal(err)
	}
	var syncReq, fanReq, syncB, fanB, syncT, fanT float64
	for b.Loop() {
		n++
		measure := func(ns string, f func(cfg *config.Config, o run.SyncOptions)) (req, bytes, secs float64) {
			cfg, err := base.With(config.Overrides{Target: fmt.Sprintf("%s/%s-%d", w.Registry, ns, n)})
			if err != nil {
				b.Fatal(err)
			}
			c := &testenv.Counter{}
			o := run.SyncOptions{Options: run.Options{Target: []target.Option{target.WithTransport(c)}}, Parallel: 4}
			t0 := time.Now()
			f(cfg, o)
			return float64(c.Count()), float64(c.Sent()), time.Since(t0).Seconds()
		}
		r, by, s := measure("sync", func(cfg *config.Config, o run.SyncOptions) {
			if rep, err := run.Sync(context.Background(), cfg, o); err != nil || rep.Failed() {
				b.Fatalf("sync: %v", err)
			}
		})
		syncReq, syncB, syncT = syncReq+r, syncB+by, syncT+s
		r, by, s = measure("fanout", func(cfg *config.Config, o run.SyncOptions) {
			p, err := run.Plan(context.Background(), cfg, o.Options)
			if err != nil {
				b.Fatal(err)
			}
			for _, j := range p.Jobs {
				if rep, err := run.BuildJob(context.Background(), cfg, o, j.ID); err != nil || rep.Failed() {
					b.Fatalf("build %s: %v", j.ID, err)
				}
			}
			if rep, err := run.Publish(context.Background(), cfg, o); err != nil || rep.Failed() {
				b.Fatalf("publish: %v", err)
			}
		})
		fanReq, fanB, fanT = fanReq+r, fanB+by, fanT+s
	}
	const jobs = 8
	b.ReportMetric(syncReq/float64(n)/jobs, "sync-req/job")
	b.ReportMetric(fanReq/float64(n)/jobs, "fanout-req/job")
	b.ReportMetric(syncB/float64(n)/jobs, "sync-sent-B/job")
	b.ReportMetric(fanB/float64(n)/jobs, "fanout-sent-B/job")
	b.ReportMetric(syncT/float64(n), "sync-s")
	b.ReportMetric(fanT/float64(n), "fanout-serial-s")
}
