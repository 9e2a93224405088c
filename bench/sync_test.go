package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/fakeupstream"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/testenv"
)

func sync1(b *testing.B, path string, apps ...string) run.Report {
	b.Helper()
	cfg, err := config.Load(path, discover.SourceKinds())
	if err != nil {
		b.Fatal(err)
	}
	if err := cfg.Select(apps...); err != nil {
		b.Fatal(err)
	}
	rep, err := run.Sync(context.Background(), cfg, run.SyncOptions{Parallel: 4})
	if err != nil || rep.Failed() {
		b.Fatalf("sync: %v %+v", err, rep.Jobs)
	}
	return rep
}

// BenchmarkSync mirrors the fixture apps (3 apps, 8 versions, 20 platform images) once, then:
// noop — a sync with nothing to do; new-version — one new upstream release of hello appears
// and is mirrored: bytes uploaded versus the size of the new version's two images.
func BenchmarkSync(b *testing.B) {
	w := testenv.NewWorld(b)
	t0 := time.Now()
	first := sync1(b, w.ConfigPath)
	b.Logf("first sync: %d jobs in %.1fs, %d bytes uploaded", len(first.Jobs), time.Since(t0).Seconds(), w.Uploaded.Load())

	b.Run("noop", func(b *testing.B) {
		for b.Loop() {
			if rep := sync1(b, w.ConfigPath); len(rep.Jobs) != 0 {
				b.Fatalf("no-op sync ran %d jobs", len(rep.Jobs))
			}
		}
	})

	progs, err := fixture.Programs(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	b.Run("new-version", func(b *testing.B) {
		var uploaded, size int64
		var runs int64
		for b.Loop() {
			b.StopTimer()
			n++
			v := release(b, w, progs, n)
			before := w.Uploaded.Load()
			b.StartTimer()
			rep := sync1(b, w.ConfigPath, "hello")
			b.StopTimer()
			if len(rep.Jobs) != 2 {
				b.Fatalf("a new version ran %d jobs, want 2", len(rep.Jobs))
			}
			uploaded += w.Uploaded.Load() - before
			size += imageBytes(b, w.Namespace+"/hello:"+v)
			runs++
			b.StartTimer()
		}
		b.ReportMetric(float64(uploaded)/float64(runs), "uploaded-B/op")
		b.ReportMetric(float64(size)/float64(runs), "image-B/op")
	})
}

// release makes hello's upstream publish version 3.<n>.0, with its per-arch tarballs, and
// returns the version.
func release(b *testing.B, w *testenv.World, progs map[string][]byte, n int) string {
	b.Helper()
	v := fmt.Sprintf("3.%d.0", n)
	rels := append([]fakeupstream.Release{{Tag: "v" + v, Name: "v" + v, Published: fixture.Epoch.AddDate(1, 0, n)}}, fixture.Fixture().GitHub["acme/hello"]...)
	w.Upstream.SetReleases("acme/hello", rels)
	for arch, prog := range progs {
		tb, err := fixture.Tarball(v, prog)
		if err != nil {
			b.Fatal(err)
		}
		w.Upstream.SetFile(fixture.TarballPath(v, arch), tb)
	}
	return v
}

// imageBytes is the stored size of a version: its index, and each platform's manifest, config
// and layers.
func imageBytes(b *testing.B, ref string) int64 {
	b.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		b.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := idx.RawManifest()
	total := int64(len(raw))
	m, _ := idx.IndexManifest()
	for _, d := range m.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			b.Fatal(err)
		}
		mf, _ := img.Manifest()
		total += d.Size + mf.Config.Size
		for _, l := range mf.Layers {
			total += l.Size
		}
	}
	return total
}

// BenchmarkBuildVersion builds one version of hello for both platforms at once on a fresh
// buildkitd (nothing cached locally), without and with the registry build cache.
func BenchmarkBuildVersion(b *testing.B) {
	w := testenv.NewWorld(b)
	cfg, err := config.Load(w.ConfigPath, discover.SourceKinds())
	if err != nil {
		b.Fatal(err)
	}
	comp := cfg.App("hello").Components[0]
	srvURL := cfg.App("hello").Source.API
	specs := func(cache string) []build.Spec {
		var out []build.Spec
		for _, arch := range fixture.Arches {
			out = append(out, build.Spec{
				JobID: "bench/" + arch, Platform: platform.Platform{OS: "linux", Arch: arch},
				Context: filepath.Join(w.Dir, "contexts", "hello"), Dockerfile: "Dockerfile", Patches: comp.Patches,
				Args:     map[string]string{"PACKAGE": srvURL + "/files/" + fixture.TarballPath("2.1.0", arch)},
				Output:   build.Output{Push: w.Namespace + "/bench", Insecure: true},
				CacheRef: cache,
			})
		}
		return out
	}
	buildBoth := func(b *testing.B, bk build.Builder, specs []build.Spec) {
		var wg sync.WaitGroup
		errs := make([]error, len(specs))
		for i, s := range specs {
			wg.Add(1)
			go func() { defer wg.Done(); _, errs[i] = bk.Build(context.Background(), s) }()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, mode := range []string{"no-cache", "registry-cache"} {
		b.Run(mode, func(b *testing.B) {
			cache := ""
			if mode == "registry-cache" {
				cache = w.Namespace + "/bench:cache"
				// Fill the cache once, as an earlier run of the same inputs would have.
				buildBoth(b, build.NewBuildKit(testenv.BuildKit(b, w.Registry)), specs(cache))
			}
			for b.Loop() {
				b.StopTimer()
				bk := build.NewBuildKit(testenv.BuildKit(b, w.Registry)) // fresh: no local cache
				b.StartTimer()
				buildBoth(b, bk, specs(cache))
			}
		})
	}
}
