package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/fixture"
	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/testenv"
)

// BenchmarkAttest measures what the attest stage adds to mirroring one new version of hello
// (both platforms), and to a sync with nothing to do. new-version: each iteration publishes a new upstream release with a sync that does not
// sign, then attests it (SBOM of each image, provenance, mirror predicate and a signature on the
// index and both images: 12 bundles). Reported: the sync's and the attest's seconds, the bytes
// attest uploads, and attest's share of the two.
func BenchmarkAttest(b *testing.B) {
	for _, kind := range []struct {
		name string
		opts []testenv.WorldOption
	}{{"docker-registry", nil}, {"referrers-api", []testenv.WorldOption{testenv.WithReferrersAPI()}}} {
		b.Run(kind.name, func(b *testing.B) { benchAttest(b, kind.opts...) })
	}
}

func benchAttest(b *testing.B, opts ...testenv.WorldOption) {
	w := testenv.NewWorld(b, opts...)
	signer := benchSigner(b)
	attestAll := func() run.AttestReport {
		cfg, err := config.Load(w.ConfigPath, discover.SourceKinds())
		if err != nil {
			b.Fatal(err)
		}
		if err := cfg.Select("hello"); err != nil {
			b.Fatal(err)
		}
		rep, err := run.Attest(context.Background(), cfg, run.AttestOptions{Signer: signer, Parallel: 4})
		if err != nil || rep.Failed() {
			b.Fatalf("attest: %v %+v", err, rep.Results)
		}
		return rep
	}
	sync1(b, w.ConfigPath, "hello")
	attestAll() // the versions already there

	progs, err := fixture.Programs(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	n := 0 // versions made so far: each run of new-version makes new ones
	b.Run("new-version", func(b *testing.B) { benchNewVersion(b, w, progs, attestAll, &n) })
	// What the attest stage adds to a sync with nothing to do: the referrers of every subject of
	// every complete version are listed, and nothing is written.
	b.Run("noop", func(b *testing.B) {
		for b.Loop() {
			before := w.Uploaded.Load()
			for _, r := range attestAll().Results {
				if r.Added != 0 {
					b.Fatalf("no-op attest added %d bundles to %s", r.Added, r.Version)
				}
			}
			if w.Uploaded.Load() != before {
				b.Fatal("no-op attest uploaded bytes")
			}
		}
	})
}

func benchNewVersion(b *testing.B, w *testenv.World, progs map[string][]byte, attestAll func() run.AttestReport, n *int) {
	var syncT, attestT time.Duration
	var attestB, runs int64
	for b.Loop() {
		b.StopTimer()
		*n++
		release(b, w, progs, *n)
		t0 := time.Now()
		sync1(b, w.ConfigPath, "hello")
		syncT += time.Since(t0)
		before := w.Uploaded.Load()
		b.StartTimer()
		t0 = time.Now()
		rep := attestAll()
		attestT += time.Since(t0)
		b.StopTimer()
		added := 0
		for _, r := range rep.Results {
			added += r.Added
		}
		if added != 12 {
			b.Fatalf("attest added %d bundles for one new version, want 12", added)
		}
		attestB += w.Uploaded.Load() - before
		runs++
		b.StartTimer()
	}
	b.ReportMetric(syncT.Seconds()/float64(runs), "sync-s/op")
	b.ReportMetric(attestT.Seconds()/float64(runs), "attest-s/op")
	b.ReportMetric(float64(attestB)/float64(runs), "attest-B/op")
	b.ReportMetric(100*attestT.Seconds()/(syncT+attestT).Seconds(), "attest-%")
}

func benchSigner(b *testing.B) *sign.Signer {
	b.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	key, err := sign.LoadKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		b.Fatal(err)
	}
	return sign.NewKeySigner(key)
}
