package target_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/retry"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// refBackend is a target kind the referrer tests run against: docker-registry (no referrers
// API: the tag-schema fallback), go-containerregistry's registry with the referrers API, and
// an OCI layout.
type refBackend struct {
	name string
	root func(t *testing.T) string // the config's target.registry
	kind string                    // "fallback", "api" or "layout"
}

var refBackends = []refBackend{
	{"docker-registry", func(t *testing.T) string { return testenv.Registry(t) + "/mirror" }, "fallback"},
	{"referrers-api", func(t *testing.T) string { return testenv.ReferrersRegistry(t) + "/mirror" }, "api"},
	{"layout", func(t *testing.T) string { return "oci:" + t.TempDir() }, "layout"},
}

const (
	sign       = "https://sigstore.dev/cosign/sign/v1"
	provenance = "https://slsa.dev/provenance/v1"
)

// pushSubject pushes a single-platform image to root/repo:tag and returns its descriptor.
func pushSubject(t *testing.T, tgt target.Target, root, repo, tag string) v1.Descriptor {
	t.Helper()
	d := testenv.PushImage(t, repoRef(root, repo)+":"+tag, amd64)
	raw, err := tgt.Manifest(t.Context(), repo, d)
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: int64(len(raw))}
}

// listed is what a referrers listing must show for r.
func listed(r testenv.Referrer, predicateType string) v1.Descriptor {
	return v1.Descriptor{
		MediaType:    types.OCIManifestSchema1,
		Digest:       r.Digest,
		Size:         int64(len(r.Manifest)),
		ArtifactType: testenv.SigstoreBundle,
		Annotations:  map[string]string{testenv.AnnotationPredicateType: predicateType},
	}
}

func referrersOK(t *testing.T, tgt target.Target, repo string, d v1.Hash) []v1.Descriptor {
	t.Helper()
	descs, err := tgt.Referrers(t.Context(), repo, d)
	if err != nil {
		t.Fatal(err)
	}
	if descs == nil {
		t.Error("Referrers returned nil, want an empty list")
	}
	return descs
}

func attachOK(t *testing.T, tgt target.Target, repo string, r testenv.Referrer) v1.Descriptor {
	t.Helper()
	descs, err := tgt.Attach(t.Context(), repo, target.Artifact{Manifest: r.Manifest, Blobs: r.Blobs})
	if err != nil {
		t.Fatal(err)
	}
	desc := descs[0]
	return desc
}

func byDigest(descs ...v1.Descriptor) []v1.Descriptor {
	slices.SortFunc(descs, func(a, b v1.Descriptor) int { return strings.Compare(a.Digest.String(), b.Digest.String()) })
	return descs
}

// writesOf counts what a target wrote: the registry's non-GET/HEAD requests, or for a layout
// the changes to index.json.
type writesOf func() string

func watchWrites(t *testing.T, b refBackend, root string, c *testenv.Counter) writesOf {
	if b.kind != "layout" {
		return func() string { return strconv.FormatInt(c.Writes(), 10) }
	}
	dir := filepath.Join(strings.TrimPrefix(root, "oci:"), "app")
	return func() string {
		fi, err := os.Stat(filepath.Join(dir, "index.json"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		return fi.ModTime().String() + string(b)
	}
}

// TestAttachAndReferrers runs the same assertions on the three kinds of target.
func TestAttachAndReferrers(t *testing.T) {
	for _, b := range refBackends {
		t.Run(b.name, func(t *testing.T) {
			root := b.root(t)
			c := &testenv.Counter{}
			tgt := newTarget(t, root, target.WithTransport(c))
			ctx := t.Context()
			sub := pushSubject(t, tgt, root, "app", "1.0.0")
			other := pushSubject(t, tgt, root, "app", "2.0.0")

			if got := referrersOK(t, tgt, "app", sub.Digest); len(got) != 0 {
				t.Errorf("before any attach: %+v", got)
			}
			sig := testenv.NewReferrer(t, sub, sign)
			prov := testenv.NewReferrer(t, sub, provenance)

			desc := attachOK(t, tgt, "app", sig)
			if want := listed(sig, sign); !reflect.DeepEqual(desc, want) {
				t.Errorf("Attach = %+v\nwant     %+v", desc, want)
			}
			if got, want := referrersOK(t, tgt, "app", sub.Digest), []v1.Descriptor{listed(sig, sign)}; !reflect.DeepEqual(got, want) {
				t.Errorf("Referrers = %+v\nwant        %+v", got, want)
			}

			// Two referrers of one subject are both listed, sorted by digest.
			attachOK(t, tgt, "app", prov)
			want := byDigest(listed(sig, sign), listed(prov, provenance))
			if got := referrersOK(t, tgt, "app", sub.Digest); !reflect.DeepEqual(got, want) {
				t.Errorf("Referrers = %+v\nwant        %+v", got, want)
			}

			// Attaching again writes nothing.
			writes := watchWrites(t, b, root, c)
			before := writes()
			time.Sleep(10 * time.Millisecond) // a layout rewrite would show in the mtime
			if again := attachOK(t, tgt, "app", sig); !reflect.DeepEqual(again, listed(sig, sign)) {
				t.Errorf("Attach again = %+v", again)
			}
			if after := writes(); after != before {
				t.Errorf("attaching again wrote: %s, then %s", before, after)
			}

			// The referrer's manifest and blobs are in the repo.
			if raw, err := tgt.Manifest(ctx, "app", sig.Digest); err != nil || !bytes.Equal(raw, sig.Manifest) {
				t.Errorf("Manifest(referrer) = %s, %v", raw, err)
			}
			for _, blob := range sig.Blobs {
				sum := sha256.Sum256(blob)
				d := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
				if got, err := tgt.Blob(ctx, "app", d, 1<<20); err != nil || !bytes.Equal(got, blob) {
					t.Errorf("Blob(%s) = %q, %v", d, got, err)
				}
			}

			// Another subject, and a repo that does not exist, have none.
			if got := referrersOK(t, tgt, "app", other.Digest); len(got) != 0 {
				t.Errorf("other subject: %+v", got)
			}
			if got := referrersOK(t, tgt, "nothing", sub.Digest); len(got) != 0 {
				t.Errorf("absent repo: %+v", got)
			}

			// A subject that is not in the repo.
			ghost := sub
			ghost.Digest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
			g := testenv.NewReferrer(t, ghost, sign)
			_, err := tgt.Attach(ctx, "app", target.Artifact{Manifest: g.Manifest, Blobs: g.Blobs})
			if err == nil || !strings.Contains(err.Error(), "attach ") || !strings.Contains(err.Error(), "@"+g.Digest.String()+": subject "+ghost.Digest.String()+": not in the") {
				t.Errorf("missing subject: err = %v", err)
			}
			if _, err := tgt.Attach(ctx, "nothing", target.Artifact{Manifest: sig.Manifest, Blobs: sig.Blobs}); err == nil || !strings.Contains(err.Error(), "subject "+sub.Digest.String()) {
				t.Errorf("absent repo: err = %v", err)
			}

			// The fallback tag: an OCI index of the referrers on a registry without the
			// API, nothing on one with it.
			if b.kind != "layout" {
				tag, err := name.NewTag(root + "/app:sha256-" + sub.Digest.Hex)
				if err != nil {
					t.Fatal(err)
				}
				got, err := remote.Get(tag, remote.WithContext(ctx))
				switch b.kind {
				case "fallback":
					if err != nil {
						t.Fatalf("fallback tag: %v", err)
					}
					im, err := got.ImageIndex()
					var m *v1.IndexManifest
					if err == nil {
						m, err = im.IndexManifest()
					}
					if err != nil || got.MediaType != types.OCIImageIndex || !reflect.DeepEqual(m.Manifests, want) {
						t.Errorf("fallback index %s: %+v, %v\nwant entries %+v", got.MediaType, m, err, want)
					}
				case "api":
					if err == nil {
						t.Errorf("a registry with the referrers API got a fallback tag: %s", got.Manifest)
					}
				}
			}
		})
	}
}

// TestReferrersProbe: the target asks a registry whether it has the referrers API once, even
// when its first calls come at once; one with the API is asked each listing through it.
func TestReferrersProbe(t *testing.T) {
	count := func(reqs []string, part string) int {
		n := 0
		for _, r := range reqs {
			if strings.Contains(r, part) {
				n++
			}
		}
		return n
	}
	for _, b := range refBackends[:2] {
		t.Run(b.name, func(t *testing.T) {
			root := b.root(t)
			c := &testenv.Counter{}
			tgt := newTarget(t, root, target.WithTransport(c))
			subs := []v1.Descriptor{pushSubject(t, tgt, root, "app", "1.0.0"), pushSubject(t, tgt, root, "other", "1.0.0")}
			repos := []string{"app", "other"}

			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() { _, errs[i] = tgt.Referrers(t.Context(), repos[i%2], subs[i%2].Digest) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			for i, sub := range subs {
				attachOK(t, tgt, repos[i], testenv.NewReferrer(t, sub, sign))
				referrersOK(t, tgt, repos[i], sub.Digest)
			}
			reqs := c.Requests()
			probes, fallbacks := count(reqs, "/referrers/"), count(reqs, "/manifests/sha256-")
			switch b.kind {
			case "fallback":
				if probes != 1 || fallbacks == 0 {
					t.Errorf("%d requests to the referrers API (want 1), %d to fallback tags:\n%s", probes, fallbacks, strings.Join(reqs, "\n"))
				}
			case "api":
				// 8 listings, one per Attach, one after each.
				if probes != 8+2+2 || fallbacks != 0 {
					t.Errorf("%d requests to the referrers API (want 12), %d to fallback tags (want 0):\n%s", probes, fallbacks, strings.Join(reqs, "\n"))
				}
			}
		})
	}
}

// TestImageManifestBlob reads an image back, on the three kinds of target.
func TestImageManifestBlob(t *testing.T) {
	for _, b := range refBackends {
		t.Run(b.name, func(t *testing.T) {
			root := b.root(t)
			tgt := newTarget(t, root)
			ctx := t.Context()
			d := testenv.PushImage(t, repoRef(root, "app")+":1.0.0", "linux/arm64/v8")
			untagged := testenv.PushUntagged(t, repoRef(root, "app"), amd64)
			idx := testenv.PushIndex(t, repoRef(root, "app")+":2.0.0", amd64, arm64)

			raw, err := tgt.Manifest(ctx, "app", d)
			if sum := sha256.Sum256(raw); err != nil || hex.EncodeToString(sum[:]) != d.Hex {
				t.Fatalf("Manifest = %s, %v", raw, err)
			}
			for _, want := range []v1.Hash{d, untagged} {
				img, err := tgt.Image(ctx, "app", want)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := img.Digest(); err != nil || got != want {
					t.Errorf("image digest = %s, %v; want %s", got, err, want)
				}
				cf, err := img.ConfigFile()
				if err != nil || cf.OS != "linux" {
					t.Fatalf("config = %+v, %v", cf, err)
				}
				layers, err := img.Layers()
				if err != nil || len(layers) != 1 {
					t.Fatalf("layers = %v, %v", layers, err)
				}
				for _, l := range layers {
					ld, _ := l.Digest()
					rc, err := l.Compressed()
					if err != nil {
						t.Fatal(err)
					}
					content, err := io.ReadAll(rc)
					rc.Close()
					if sum := sha256.Sum256(content); err != nil || hex.EncodeToString(sum[:]) != ld.Hex {
						t.Errorf("layer %s: %d bytes, %v", ld, len(content), err)
					}
					// The filesystem, as the SBOM cataloguer reads it.
					u, err := l.Uncompressed()
					if err != nil {
						t.Fatal(err)
					}
					if n, err := io.Copy(io.Discard, u); err != nil || n == 0 {
						t.Errorf("layer %s uncompressed: %d bytes, %v", ld, n, err)
					}
					u.Close()
				}

				// Blob: the config, within and over the bound.
				cfgRaw, _ := img.RawConfigFile()
				m, _ := img.Manifest()
				if got, err := tgt.Blob(ctx, "app", m.Config.Digest, int64(len(cfgRaw))); err != nil || !bytes.Equal(got, cfgRaw) {
					t.Errorf("Blob(config) = %s, %v", got, err)
				}
				if _, err := tgt.Blob(ctx, "app", m.Config.Digest, int64(len(cfgRaw))-1); err == nil || !strings.Contains(err.Error(), "larger than") {
					t.Errorf("Blob over max: err = %v", err)
				}
			}

			if _, err := tgt.Image(ctx, "app", idx); err == nil || !strings.Contains(err.Error(), "an index, not a single-platform image") {
				t.Errorf("Image(index): err = %v", err)
			}
			absent := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
			if _, err := tgt.Manifest(ctx, "app", absent); err == nil || !strings.Contains(err.Error(), absent.String()) {
				t.Errorf("Manifest(absent): err = %v", err)
			}
			if _, err := tgt.Blob(ctx, "app", absent, 1<<20); err == nil || !strings.Contains(err.Error(), absent.String()) {
				t.Errorf("Blob(absent): err = %v", err)
			}
			if _, err := tgt.Image(ctx, "app", absent); err == nil {
				t.Error("Image(absent): no error")
			}
			bad := v1.Hash{Algorithm: "sha256", Hex: "../../etc"}
			if _, err := tgt.Blob(ctx, "app", bad, 1<<20); err == nil {
				t.Error("Blob(bad digest): no error")
			}
			if _, err := tgt.Manifest(ctx, "../app", d); err == nil {
				t.Error("Manifest(../app): no error")
			}
		})
	}
}

// TestAttachInvalid: what Attach refuses, before writing anything.
func TestAttachInvalid(t *testing.T) {
	for _, b := range refBackends[1:] { // nothing here needs docker-registry
		t.Run(b.name, func(t *testing.T) {
			root := b.root(t)
			tgt := newTarget(t, root)
			sub := pushSubject(t, tgt, root, "app", "1.0.0")
			good := testenv.NewReferrer(t, sub, sign)
			edit := func(f func(m map[string]any)) []byte {
				var m map[string]any
				if err := json.Unmarshal(good.Manifest, &m); err != nil {
					t.Fatal(err)
				}
				f(m)
				b, _ := json.Marshal(m)
				return b
			}
			for _, c := range []struct {
				name  string
				repo  string
				raw   []byte
				blobs [][]byte
				want  string
			}{
				{"not JSON", "app", []byte("nope"), nil, "manifest: "},
				{"an index", "app", edit(func(m map[string]any) { m["mediaType"] = string(types.OCIImageIndex) }), good.Blobs, "media type"},
				{"no subject", "app", edit(func(m map[string]any) { delete(m, "subject") }), good.Blobs, "no subject"},
				{"empty config without artifactType", "app", edit(func(m map[string]any) { delete(m, "artifactType") }), good.Blobs, "no artifactType"},
				{"a blob it does not reference", "app", good.Manifest, append(slices.Clone(good.Blobs), []byte("stray")), "does not reference it"},
				{"a blob neither given nor there", "app", good.Manifest, good.Blobs[:1], "not given"},
				{"bad repo", "../app", good.Manifest, good.Blobs, `repo "../app"`},
			} {
				_, err := tgt.Attach(t.Context(), c.repo, target.Artifact{Manifest: c.raw, Blobs: c.blobs})
				if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "attach ") {
					t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
				}
			}
			if got := referrersOK(t, tgt, "app", sub.Digest); len(got) != 0 {
				t.Errorf("refused attaches left referrers: %+v", got)
			}
			// The blob that was there stays usable: the good one attaches.
			attachOK(t, tgt, "app", good)
		})
	}
}

// TestAttachConcurrent: goroutines of two targets (as two runs in one process would have)
// attach many referrers to one subject on a registry without the referrers API; the
// fallback index ends up listing every one.
func TestAttachConcurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("the updates of one fallback tag take turns, with a wait each: seconds")
	}
	host := testenv.Registry(t)
	root := host + "/mirror"
	first, second := newTarget(t, root), newTarget(t, root)
	sub := pushSubject(t, first, root, "app", "1.0.0")
	const n = 24
	refs := make([]testenv.Referrer, n)
	var want []v1.Descriptor
	for i := range refs {
		pt := fmt.Sprintf("https://example.com/predicate/%d", i)
		refs[i] = testenv.NewReferrer(t, sub, pt)
		want = append(want, listed(refs[i], pt))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, r := range refs {
		tgt := first
		if i%2 == 1 {
			tgt = second
		}
		wg.Go(func() {
			_, errs[i] = tgt.Attach(t.Context(), "app", target.Artifact{Manifest: r.Manifest, Blobs: r.Blobs})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("referrer %d: %v", i, err)
		}
	}
	fresh := newTarget(t, root)
	if got := referrersOK(t, fresh, "app", sub.Digest); !reflect.DeepEqual(got, byDigest(want...)) {
		t.Errorf("%d referrers listed, want %d:\n%+v", len(got), n, got)
	}
}

// helperEnv hands TestAttachHelperProcess its part of TestAttachAcrossProcesses.
const helperEnv = "ARCHMIRROR_TEST_ATTACH_HELPER"

// TestAttachAcrossProcesses: separate processes, which share no lock, attach referrers to
// one subject on a registry without the referrers API at once; the fallback index ends up
// listing every one (each process checks its entry after its PUT and adds it again when
// another's PUT dropped it).
func TestAttachAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	host := testenv.Registry(t)
	root := host + "/mirror"
	tgt := newTarget(t, root)
	sub := pushSubject(t, tgt, root, "app", "1.0.0")
	subJSON, err := json.Marshal(sub)
	if err != nil {
		t.Fatal(err)
	}
	const procs, each = 3, 8
	cmds := make([]*exec.Cmd, procs)
	outs := make([]bytes.Buffer, procs)
	for p := range procs {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestAttachHelperProcess$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), helperEnv+"="+strings.Join([]string{root, string(subJSON), strconv.Itoa(p * each), strconv.Itoa(each)}, "\n"))
		cmd.Stdout, cmd.Stderr = &outs[p], &outs[p]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[p] = cmd
	}
	readded := 0
	for p, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("process %d: %v\n%s", p, err, outs[p].String())
		}
		for _, line := range strings.Split(outs[p].String(), "\n") {
			if n, ok := strings.CutPrefix(line, "re-added "); ok {
				k, _ := strconv.Atoi(strings.TrimSpace(n))
				readded += k
			}
		}
	}
	t.Logf("entries dropped by another process's PUT and added again: %d", readded)
	var want []v1.Descriptor
	for i := range procs * each {
		pt := fmt.Sprintf("https://example.com/predicate/%d", i)
		want = append(want, listed(testenv.NewReferrer(t, sub, pt), pt))
	}
	if got := referrersOK(t, tgt, "app", sub.Digest); !reflect.DeepEqual(got, byDigest(want...)) {
		t.Errorf("%d referrers listed, want %d:\n%+v", len(got), len(want), got)
	}
}

// TestAttachHelperProcess is one process of TestAttachAcrossProcesses.
func TestAttachHelperProcess(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("a process of TestAttachAcrossProcesses")
	}
	parts := strings.Split(spec, "\n")
	root := parts[0]
	var sub v1.Descriptor
	if err := json.Unmarshal([]byte(parts[1]), &sub); err != nil {
		t.Fatal(err)
	}
	first, _ := strconv.Atoi(parts[2])
	n, _ := strconv.Atoi(parts[3])
	var logs bytes.Buffer // slog's handler writes one record at a time
	tgt := newTarget(t, root, target.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	refs := make([]testenv.Referrer, n)
	for i := range refs {
		refs[i] = testenv.NewReferrer(t, sub, fmt.Sprintf("https://example.com/predicate/%d", first+i))
	}
	var wg sync.WaitGroup
	for _, r := range refs {
		wg.Go(func() {
			if _, err := tgt.Attach(t.Context(), "app", target.Artifact{Manifest: r.Manifest, Blobs: r.Blobs}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	fmt.Printf("re-added %d\n", strings.Count(logs.String(), "adding it again"))
}

// staleWriter plays another process on the way to the registry: right after each of the
// target's PUTs of the fallback tag, it PUTs the index as the target last read it (as a
// writer that read it before our PUT and wrote after would), undoing our entry, times times
// (-1: always).
type staleWriter struct {
	next  http.RoundTripper
	path  string // /v2/<repo>/manifests/sha256-<hex>
	times int

	mu     sync.Mutex
	last   []byte
	puts   int // the target's
	undone int
}

func (s *staleWriter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if err != nil || req.URL.Path != s.path {
		return resp, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case req.Method == http.MethodGet && resp.StatusCode == http.StatusOK:
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		s.last = b
		resp.Body = io.NopCloser(bytes.NewReader(b))
	case req.Method == http.MethodPut && resp.StatusCode == http.StatusCreated:
		s.puts++
		if s.last == nil || (s.times >= 0 && s.undone >= s.times) {
			break
		}
		put, err := http.NewRequest(http.MethodPut, req.URL.String(), bytes.NewReader(s.last))
		if err != nil {
			return nil, err
		}
		put.Header.Set("Content-Type", string(types.OCIImageIndex))
		stale, err := s.next.RoundTrip(put)
		if err != nil {
			return nil, err
		}
		stale.Body.Close()
		if stale.StatusCode != http.StatusCreated {
			return nil, fmt.Errorf("stale PUT: %s", stale.Status)
		}
		s.undone++
	}
	return resp, nil
}

// TestAttachFallbackOverwritten: another process's stale PUT of the fallback index drops our
// entry; Attach sees it gone when it reads the index back, and adds it again. One that keeps
// losing gives up after a bound, and attaching again repairs it.
func TestAttachFallbackOverwritten(t *testing.T) {
	host := testenv.Registry(t)
	root := host + "/mirror"
	plain := newTarget(t, root)
	sub := pushSubject(t, plain, root, "app", "1.0.0")
	theirs := testenv.NewReferrer(t, sub, "https://example.com/theirs")
	attachOK(t, plain, "app", theirs)
	path := "/v2/mirror/app/manifests/sha256-" + sub.Digest.Hex

	var logs bytes.Buffer
	logger := target.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	once := &staleWriter{next: http.DefaultTransport, path: path, times: 1}
	ours := testenv.NewReferrer(t, sub, sign)
	attachOK(t, newTarget(t, root, target.WithTransport(once), logger), "app", ours)
	if once.undone != 1 || once.puts != 2 {
		t.Errorf("stale PUTs %d, our PUTs %d; want 1 and 2", once.undone, once.puts)
	}
	if !strings.Contains(logs.String(), "another writer replaced the fallback index without these referrers; adding them again") {
		t.Errorf("no word of the lost entry; logs:\n%s", logs.String())
	}
	want := byDigest(listed(theirs, "https://example.com/theirs"), listed(ours, sign))
	if got := referrersOK(t, plain, "app", sub.Digest); !reflect.DeepEqual(got, want) {
		t.Errorf("Referrers = %+v\nwant        %+v", got, want)
	}

	if testing.Short() {
		return
	}
	always := &staleWriter{next: http.DefaultTransport, path: path, times: -1}
	lost := testenv.NewReferrer(t, sub, provenance)
	_, err := newTarget(t, root, target.WithTransport(always), logger).Attach(t.Context(), "app", target.Artifact{Manifest: lost.Manifest, Blobs: lost.Blobs})
	if err == nil || !strings.Contains(err.Error(), "fallback tag sha256-"+sub.Digest.Hex+": other writers replaced the index without these referrers 5 times") {
		t.Errorf("always overwritten: err = %v", err)
	}
	if always.puts != 5 {
		t.Errorf("%d PUTs, want 5", always.puts)
	}
	attachOK(t, plain, "app", lost)
	want = byDigest(append(want, listed(lost, provenance))...)
	if got := referrersOK(t, plain, "app", sub.Digest); !reflect.DeepEqual(got, want) {
		t.Errorf("after the repair: Referrers = %+v\nwant        %+v", got, want)
	}
}

// TestLayoutReferrerEntries: a layout keeps a referrer as an untagged index.json entry with
// its artifactType and annotations, which tags and go-containerregistry leave alone.
func TestLayoutReferrerEntries(t *testing.T) {
	dir := t.TempDir()
	root := "oci:" + dir
	tgt := newTarget(t, root)
	ctx := t.Context()
	sub := pushSubject(t, tgt, root, "app", "1.0.0")
	sig := testenv.NewReferrer(t, sub, sign)
	attachOK(t, tgt, "app", sig)
	amd := describe(t, tgt, "app", sub.Digest)
	idx, err := tgt.WriteIndex(ctx, "app", "2.0.0", index(nil, amd), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.Tag(ctx, "app", "latest", idx.Digest, ""); err != nil {
		t.Fatal(err)
	}

	lp, im := testenv.Layout(t, filepath.Join(dir, "app"))
	var entries []v1.Descriptor
	for _, m := range im.Manifests {
		if m.Digest == sig.Digest {
			entries = append(entries, m)
		}
	}
	if want := []v1.Descriptor{listed(sig, sign)}; !reflect.DeepEqual(entries, want) {
		t.Errorf("index.json entries of the referrer = %+v\nwant %+v", entries, want)
	}
	if _, err := lp.Image(sig.Digest); err != nil { // go-containerregistry reads it like any entry
		t.Errorf("go-containerregistry: %v", err)
	}
	if st := inspectOK(t, tgt, "app", "1.0.0"); st.Digest != sub.Digest.String() {
		t.Errorf("tag 1.0.0 = %+v", st)
	}
	if st := inspectOK(t, tgt, "app", "latest"); st.Digest != idx.Digest.String() {
		t.Errorf("tag latest = %+v", st)
	}
	if got := referrersOK(t, tgt, "app", sub.Digest); len(got) != 1 || got[0].Digest != sig.Digest {
		t.Errorf("Referrers after tagging = %+v", got)
	}
}

// TestAttachBearer: attaching through a Bearer registry whose first write to a repo is
// answered 401 with a push scope: the blob uploads and the manifest and fallback index PUTs
// (sent by hand) go again with their bodies.
func TestAttachBearer(t *testing.T) {
	a := newAuthRegistry(t, true)
	d := testenv.PushImage(t, a.open+"/mirror/app:1.0.0", amd64)
	tgt, err := target.New(config.Target{Registry: a.guarded + "/mirror"},
		target.WithKeychain(staticKeychain{user, pass}), target.WithCacheDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tgt.Manifest(t.Context(), "app", d)
	if err != nil {
		t.Fatal(err)
	}
	sub := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d, Size: int64(len(raw))}
	sig := testenv.NewReferrer(t, sub, sign)
	attachOK(t, tgt, "app", sig)
	if got := referrersOK(t, tgt, "app", d); !reflect.DeepEqual(got, []v1.Descriptor{listed(sig, sign)}) {
		t.Errorf("Referrers = %+v", got)
	}
}

// TestReferrersAPIAnswers: the registry's answer to the first referrers request decides, once
// and for the target's life, whether it lists referrers through the API or the fallback tag;
// an answer that decides nothing (no repo, a failure) is asked again next time.
func TestReferrersAPIAnswers(t *testing.T) {
	subject := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	entry := func(n int) v1.Descriptor {
		return v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: 100, ArtifactType: testenv.SigstoreBundle,
			Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(strconv.Itoa(n), 64)}}
	}
	index := func(w http.ResponseWriter, link string, descs ...v1.Descriptor) {
		if link != "" {
			w.Header().Set("Link", link)
		}
		w.Header().Set("Content-Type", ociIndex)
		_ = json.NewEncoder(w).Encode(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs})
	}
	status := func(code int, ct, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	fallback := []v1.Descriptor{entry(9)}
	for _, c := range []struct {
		name   string
		answer http.HandlerFunc // to GET /v2/mirror/app/referrers/<subject>
		want   []v1.Descriptor  // nil: an error
		asks   int              // referrers requests of two listings
		err    string
	}{
		{name: "plain 404", answer: status(404, "text/plain", "404 page not found"), want: fallback, asks: 1},
		{name: "400", answer: status(400, "application/json", `{"errors":[{"code":"UNSUPPORTED"}]}`), want: fallback, asks: 1},
		{name: "405", answer: status(405, "text/plain", ""), want: fallback, asks: 1},
		{name: "406", answer: status(406, "text/plain", ""), want: fallback, asks: 1},
		{name: "200 not an index", answer: status(200, "text/html", "<html>"), want: fallback, asks: 1},
		{name: "no such repo", answer: status(404, "application/json", `{"errors":[{"code":"NAME_UNKNOWN"}]}`), want: []v1.Descriptor{}, asks: 2},
		{name: "server error", answer: status(500, "application/json", `{"errors":[{"code":"UNKNOWN","message":"broke"}]}`), asks: 2,
			err: "GET: 500 Internal Server Error (UNKNOWN: broke)"},
		{name: "API", answer: func(w http.ResponseWriter, _ *http.Request) { index(w, "", entry(2), entry(1)) },
			want: []v1.Descriptor{entry(1), entry(2)}, asks: 2},
		{name: "API, two pages", answer: func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("last") == "" {
				index(w, `<`+r.URL.Path+`?n=1&last=x>; rel="next"`, entry(1))
				return
			}
			index(w, "", entry(2))
		}, want: []v1.Descriptor{entry(1), entry(2)}, asks: 4},
		{name: "API, next page elsewhere", answer: func(w http.ResponseWriter, _ *http.Request) {
			index(w, `<https://elsewhere.example/v2/x>; rel="next"`, entry(1))
		}, asks: 2, err: "next page on another host (\"elsewhere.example\")"},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := serverHost(t, apiRoot(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/v2/mirror/app/referrers/" + subject.String():
					c.answer(w, r)
				case "/v2/mirror/app/manifests/sha256-" + subject.Hex:
					index(w, "", fallback...)
				default:
					http.NotFound(w, r)
				}
			}))
			cnt := &testenv.Counter{}
			// One attempt per request: the test counts what the answers themselves cause.
			tgt, err := target.New(config.Target{Registry: host + "/mirror"}, target.WithTransport(cnt), target.WithRetry(retry.Policy{Attempts: 1}))
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				got, err := tgt.Referrers(t.Context(), "app", subject)
				switch {
				case c.err != "":
					if want := "referrers " + host + "/mirror/app@" + subject.String() + ": "; err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), c.err) {
						t.Errorf("err = %v, want %s…%s", err, want, c.err)
					}
				case err != nil:
					t.Fatal(err)
				case !reflect.DeepEqual(got, c.want):
					t.Errorf("Referrers = %+v\nwant        %+v", got, c.want)
				}
			}
			asks := 0
			for _, r := range cnt.Requests() {
				if strings.Contains(r, "/referrers/") {
					asks++
				}
			}
			if asks != c.asks {
				t.Errorf("%d referrers requests, want %d: %q", asks, c.asks, cnt.Requests())
			}
		})
	}
}

// TestAttachBatch: the referrers of one subject given to one Attach go into its fallback index
// in one update, and each is listed; a repeat is a no-op.
func TestAttachBatch(t *testing.T) {
	for _, b := range refBackends {
		t.Run(b.name, func(t *testing.T) {
			root := b.root(t)
			c := &testenv.Counter{}
			tgt := newTarget(t, root, target.WithTransport(c))
			sub := pushSubject(t, tgt, root, "app", "1.0.0")
			other := pushSubject(t, tgt, root, "app", "2.0.0")
			var arts []target.Artifact
			var want, wantOther []v1.Descriptor
			for _, p := range []string{sign, provenance, "https://example.com/third"} {
				r := testenv.NewReferrer(t, sub, p)
				arts = append(arts, target.Artifact{Manifest: r.Manifest, Blobs: r.Blobs})
				want = append(want, listed(r, p))
			}
			o := testenv.NewReferrer(t, other, sign)
			arts = append(arts, target.Artifact{Manifest: o.Manifest, Blobs: o.Blobs})
			wantOther = append(wantOther, listed(o, sign))

			descs, err := tgt.Attach(t.Context(), "app", arts...)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(descs, append(append([]v1.Descriptor(nil), want...), wantOther...)) {
				t.Errorf("Attach = %+v", descs)
			}
			if got := referrersOK(t, tgt, "app", sub.Digest); !reflect.DeepEqual(got, byDigest(want...)) {
				t.Errorf("Referrers(sub) = %+v", got)
			}
			if got := referrersOK(t, tgt, "app", other.Digest); !reflect.DeepEqual(got, wantOther) {
				t.Errorf("Referrers(other) = %+v", got)
			}
			if b.kind == "fallback" {
				puts := 0
				for _, r := range c.Requests() {
					if strings.HasPrefix(r, "PUT ") && strings.Contains(r, "/manifests/sha256-"+sub.Digest.Hex) {
						puts++
					}
				}
				if puts != 1 {
					t.Errorf("%d PUTs of the subject's fallback index for three referrers, want 1", puts)
				}
			}
			before := c.Writes()
			if _, err := tgt.Attach(t.Context(), "app", arts...); err != nil {
				t.Fatal(err)
			}
			if b.kind != "layout" && c.Writes() != before {
				t.Errorf("attaching the same referrers again wrote %d times", c.Writes()-before)
			}
		})
	}
}

// TestAttachThroughBrokenUploads attaches through a proxy that truncates 15 % of the upload
// requests (POST, PATCH, PUT with a body) and fails 5 % of all requests with a 5xx: every
// referrer must be attached and listed, its blobs whole, because a broken blob upload starts
// over in a new session. The same faults with a policy of a single try must fail: the test
// can tell the difference.
func TestAttachThroughBrokenUploads(t *testing.T) {
	reg := testenv.Registry(t)
	attach := func(t *testing.T, p retry.Policy, seed uint64) (*testenv.FaultProxy, error) {
		fp := testenv.NewFaultProxy(t, reg, testenv.Faults{Seed: seed, TruncateUpload: 0.15, ServerError: 0.05})
		root := fp.Addr + "/mirror"
		p.Sleep = func(context.Context, time.Duration) error { return nil }
		tgt := newTarget(t, root, target.WithRetry(p))
		sub := pushSubject(t, tgt, reg+"/mirror", "app", "1.0.0")
		var errs []error
		for i := range 6 {
			r := testenv.NewReferrer(t, sub, fmt.Sprintf("https://example.com/predicate/%d", i))
			if _, err := tgt.Attach(t.Context(), "app", target.Artifact{Manifest: r.Manifest, Blobs: r.Blobs}); err != nil {
				errs = append(errs, err)
				continue
			}
			for _, b := range r.Blobs {
				ref, err := name.NewDigest(reg + "/mirror/app@" + digestOf(b).String())
				if err != nil {
					t.Fatal(err)
				}
				got, err := remote.Layer(ref)
				if err != nil {
					t.Fatal(err)
				}
				rc, err := got.Compressed()
				if err != nil {
					t.Fatalf("referrer %d: blob %s: %v", i, digestOf(b), err)
				}
				body, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || !bytes.Equal(body, b) {
					t.Fatalf("referrer %d: blob %s is not what was uploaded (%d bytes of %d, %v)", i, digestOf(b), len(body), len(b), err)
				}
			}
		}
		if len(errs) == 0 {
			if got := referrersOK(t, tgt, "app", sub.Digest); len(got) != 6 {
				t.Errorf("%d referrers listed, want 6", len(got))
			}
		}
		return fp, errors.Join(errs...)
	}

	fp, err := attach(t, retry.Policy{Attempts: 8}, 3)
	if err != nil {
		t.Fatalf("attach through broken uploads: %v\nfaults: %v", err, fp.Counts())
	}
	if fp.Counts()[testenv.FaultTruncate] == 0 {
		t.Fatalf("no upload was truncated: the test proves nothing (faults %v)", fp.Counts())
	}
	t.Logf("faults absorbed: %v", fp.Counts())

	if _, err := attach(t, retry.Policy{Attempts: 1}, 3); err == nil {
		t.Error("with a single try the same faults went unnoticed: the test cannot fail")
	}
}

func digestOf(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}
