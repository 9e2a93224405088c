package publish_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/publish"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

const (
	amd64 = "linux/amd64"
	arm64 = "linux/arm64"
)

var both = []platform.Platform{{OS: "linux", Arch: "amd64"}, {OS: "linux", Arch: "arm64"}}

// env is one target to publish to: a real registry (distribution) or an OCI layout.
type env struct {
	root    string
	layout  string // the layout directory, "" for a registry
	tgt     target.Target
	counter *testenv.Counter // the registry target's requests; nil for a layout
	logs    *bytes.Buffer
	pub     *publish.Publisher
}

type backend struct {
	name string
	new  func(t *testing.T) *env
}

var backends = []backend{
	{"registry", func(t *testing.T) *env {
		c := &testenv.Counter{}
		e := &env{root: testenv.Registry(t) + "/mirror", counter: c}
		return e.open(t, target.WithTransport(c))
	}},
	{"layout", func(t *testing.T) *env {
		dir := t.TempDir()
		e := &env{root: "oci:" + dir, layout: dir}
		return e.open(t)
	}},
}

func (e *env) open(t *testing.T, opts ...target.Option) *env {
	t.Helper()
	tgt, err := target.New(config.Target{Registry: e.root}, append([]target.Option{target.WithCacheDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e.tgt, e.logs = tgt, &bytes.Buffer{}
	e.pub = publish.New(tgt, publish.WithLogger(slog.New(slog.NewTextHandler(e.logs, nil))))
	return e
}

// run runs f against each backend.
func run(t *testing.T, f func(t *testing.T, e *env)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b.new(t)) })
	}
}

// build pushes an image for platform p to repo by digest, as a builder does.
func (e *env) build(t *testing.T, repo, p string) string {
	t.Helper()
	return testenv.PushUntagged(t, e.root+"/"+repo, p).String()
}

// built builds every platform of ps ("linux/arm64/v8" keeps its variant in the config) and
// returns Unit.Built.
func (e *env) built(t *testing.T, repo string, ps ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range ps {
		key := strings.TrimSuffix(p, "/v8")
		out[key] = e.build(t, repo, p)
	}
	return out
}

func (e *env) inspect(t *testing.T, repo, tag string) target.State {
	t.Helper()
	st, err := e.tgt.Inspect(t.Context(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (e *env) index(t *testing.T, repo, tag string) *v1.IndexManifest {
	t.Helper()
	st := e.inspect(t, repo, tag)
	if !st.Exists {
		t.Fatalf("%s:%s does not exist", repo, tag)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(st.Manifest))
	if err != nil {
		t.Fatal(err)
	}
	return im
}

func (e *env) publish(t *testing.T, u publish.Unit) publish.Result {
	t.Helper()
	res, err := e.pub.Publish(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func unit(repo, version string, built map[string]string) publish.Unit {
	return publish.Unit{
		Repo: repo, Version: version, Platforms: both, Built: built, Stable: true,
		Annotations: map[string]string{
			"org.opencontainers.image.title":  repo,
			"org.opencontainers.image.source": "https://github.com/acme/" + repo,
		},
	}
}

func TestPublishMissing(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		built := e.built(t, "app", amd64, "linux/arm64/v8") // arm64's config says v8
		res := e.publish(t, unit("app", "1.0.0", built))
		if res.Status != publish.Published || !res.Latest || res.Missing != nil {
			t.Errorf("Result = %+v", res)
		}
		st := e.inspect(t, "app", "1.0.0")
		if st.Digest != res.Digest || st.MediaType != string(types.OCIImageIndex) || !slices.Equal(st.Platforms, []string{amd64, arm64}) {
			t.Errorf("State = %+v", st)
		}
		im := e.index(t, "app", "1.0.0")
		var got []string
		for _, m := range im.Manifests {
			got = append(got, m.Platform.String())
			if m.MediaType != types.OCIManifestSchema1 || m.Size <= 0 || len(m.Annotations) != 0 {
				t.Errorf("entry %+v", m)
			}
		}
		if want := []string{amd64, arm64}; !slices.Equal(got, want) { // exactly these, in Unit order: no variant, no unknown/unknown
			t.Errorf("entries = %q, want %q", got, want)
		}
		if im.Manifests[0].Digest.String() != built[amd64] || im.Manifests[1].Digest.String() != built[arm64] {
			t.Errorf("children = %v, built %v", im.Manifests, built)
		}
		want := map[string]string{
			"org.opencontainers.image.title":   "app",
			"org.opencontainers.image.source":  "https://github.com/acme/app",
			"org.opencontainers.image.version": "1.0.0",
		}
		if !mapsEqual(im.Annotations, want) || im.MediaType != types.OCIImageIndex || im.SchemaVersion != 2 {
			t.Errorf("index = %+v", im)
		}
		if l := e.inspect(t, "app", "latest"); l.Digest != res.Digest {
			t.Errorf("latest = %+v", l)
		}
	})
}

func TestPublishIncomplete(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		res := e.publish(t, unit("app", "1.0.0", e.built(t, "app", amd64)))
		if res.Status != publish.Incomplete || !slices.Equal(res.Missing, []string{arm64}) || res.Digest != "" || res.Latest {
			t.Errorf("Result = %+v", res)
		}
		for _, tag := range []string{"1.0.0", "latest"} {
			if st := e.inspect(t, "app", tag); st.Exists {
				t.Errorf("%s was tagged: %+v", tag, st)
			}
		}
		// An incomplete tag that exists stays as it was.
		old := testenv.PushIndex(t, e.root+"/app:1.1.0", amd64).String()
		res = e.publish(t, unit("app", "1.1.0", e.built(t, "app", amd64)))
		if res.Status != publish.Incomplete || res.Digest != old || !slices.Equal(res.Missing, []string{arm64}) {
			t.Errorf("over an incomplete tag: Result = %+v", res)
		}
		if st := e.inspect(t, "app", "1.1.0"); st.Digest != old {
			t.Errorf("the incomplete tag changed: %+v", st)
		}
	})
}

func TestPublishUnchanged(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		first := e.publish(t, unit("app", "1.0.0", e.built(t, "app", amd64, arm64)))
		// New builds of a complete version: never used, the index is not rewritten.
		rebuilt := e.built(t, "app", amd64, arm64)
		before := e.snapshot(t)
		res := e.publish(t, unit("app", "1.0.0", rebuilt))
		if res.Status != publish.Unchanged || res.Digest != first.Digest || !res.Latest {
			t.Errorf("Result = %+v, first %+v", res, first)
		}
		e.unchangedSince(t, before)
		if st := e.inspect(t, "app", "1.0.0"); st.Digest != first.Digest {
			t.Errorf("tag = %s, want %s", st.Digest, first.Digest)
		}
		if !strings.Contains(e.logs.String(), "left unreferenced") || !strings.Contains(e.logs.String(), rebuilt[arm64]) {
			t.Errorf("the unused builds are not logged:\n%s", e.logs.String())
		}
		// A complete version someone else published (attestations and a v8 variant in it) is
		// complete too.
		other := testenv.PushIndex(t, e.root+"/app:2.0.0", amd64, testenv.Attestation, "linux/arm64/v8", testenv.Attestation).String()
		if res := e.publish(t, unit("app", "2.0.0", nil)); res.Status != publish.Unchanged || res.Digest != other {
			t.Errorf("foreign complete index: %+v", res)
		}
	})
}

// snapshot is what tells that nothing was written: the registry's request count, or the
// layout's index.json.
type snapshot struct {
	requests int
	index    []byte
}

func (e *env) snapshot(t *testing.T) snapshot {
	t.Helper()
	if e.counter != nil {
		return snapshot{requests: len(e.counter.Requests())}
	}
	b, err := os.ReadFile(filepath.Join(e.layout, "app", "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{index: b}
}

func (e *env) unchangedSince(t *testing.T, s snapshot) {
	t.Helper()
	if e.counter != nil {
		for _, r := range e.counter.Requests()[s.requests:] {
			if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
				t.Errorf("a write: %s", r)
			}
		}
		return
	}
	if now := e.snapshot(t); !bytes.Equal(now.index, s.index) {
		t.Errorf("index.json changed:\n%s\nwas\n%s", now.index, s.index)
	}
}

func TestPublishRepair(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		// 1.0.0 tagged with amd64 only (a run that could not build arm64 and an older tool
		// that tagged anyway).
		old := testenv.PushIndex(t, e.root+"/app:1.0.0", amd64)
		oldChildren := e.index(t, "app", "1.0.0").Manifests
		res := e.publish(t, unit("app", "1.0.0", e.built(t, "app", "linux/arm64/v8")))
		if res.Status != publish.Repaired || res.Digest == old.String() {
			t.Errorf("Result = %+v", res)
		}
		im := e.index(t, "app", "1.0.0")
		if len(im.Manifests) != 2 || im.Manifests[0].Digest != oldChildren[0].Digest || im.Manifests[0].Size != oldChildren[0].Size ||
			im.Manifests[0].Platform.String() != amd64 || im.Manifests[1].Platform.String() != arm64 {
			t.Errorf("repaired index = %+v, amd64 child was %s", im.Manifests, oldChildren[0].Digest)
		}
		// Rebuilt amd64 alongside: the existing amd64 child is still the one kept.
		testenv.PushIndex(t, e.root+"/app:1.1.0", amd64)
		kept := e.index(t, "app", "1.1.0").Manifests[0].Digest
		res = e.publish(t, unit("app", "1.1.0", e.built(t, "app", amd64, arm64)))
		if im := e.index(t, "app", "1.1.0"); res.Status != publish.Repaired || im.Manifests[0].Digest != kept {
			t.Errorf("repair with a rebuilt amd64: %+v, amd64 child %s, want %s", res, im.Manifests[0].Digest, kept)
		}
		// A single-platform image as the version tag is repaired into an index around it.
		img := testenv.PushImage(t, e.root+"/app:1.2.0", amd64)
		res = e.publish(t, unit("app", "1.2.0", e.built(t, "app", arm64)))
		if im := e.index(t, "app", "1.2.0"); res.Status != publish.Repaired || im.Manifests[0].Digest != img || len(im.Manifests) != 2 {
			t.Errorf("repair of a single image: %+v, %+v", res, im.Manifests)
		}
	})
}

func TestLatest(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		latest := func() string { return e.inspect(t, "app", "latest").Digest }
		r1 := e.publish(t, unit("app", "1.0.0", e.built(t, "app", amd64, arm64)))
		if !r1.Latest || latest() != r1.Digest {
			t.Fatalf("1.0.0: %+v, latest %s", r1, latest())
		}
		v2 := e.publish(t, unit("app", "2.0.0", e.built(t, "app", amd64, arm64)))
		if !v2.Latest || latest() != v2.Digest {
			t.Errorf("2.0.0: %+v, latest %s", v2, latest())
		}
		// A backport: published, latest stays on 2.0.0.
		v15 := e.publish(t, unit("app", "1.5.0", e.built(t, "app", amd64, arm64)))
		if v15.Status != publish.Published || v15.Latest || latest() != v2.Digest {
			t.Errorf("1.5.0: %+v, latest %s", v15, latest())
		}
		// The same version again: unchanged, and latest already.
		if r := e.publish(t, unit("app", "2.0.0", nil)); r.Status != publish.Unchanged || !r.Latest {
			t.Errorf("2.0.0 again: %+v", r)
		}
		// Lower by semver precedence, even when the caller calls it stable.
		if r := e.publish(t, unit("app", "2.0.0-0", e.built(t, "app", amd64, arm64))); r.Latest || latest() != v2.Digest {
			t.Errorf("2.0.0-0 marked stable: %+v", r)
		}
		// A pre-release never becomes latest, however high.
		rc := unit("app", "3.0.0-rc.1", e.built(t, "app", amd64, arm64))
		rc.Stable = false
		if r := e.publish(t, rc); r.Status != publish.Published || r.Latest || latest() != v2.Digest {
			t.Errorf("3.0.0-rc.1: %+v, latest %s", r, latest())
		}
		if r := e.publish(t, unit("app", "10.0.0", e.built(t, "app", amd64, arm64))); !r.Latest || latest() != r.Digest {
			t.Errorf("10.0.0 (semver order, not string order): %+v", r)
		}
	})
}

// latest as another tool left it: an index without a version annotation, or with one that is
// not semver, is as good as absent; one with an equal version is not lower.
func TestLatestForeign(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		for i, ann := range []map[string]string{nil, {publish.AnnotationVersion: "nightly"}} {
			idx := mutate.Annotations(testenv.Index(t, amd64, arm64), ann).(v1.ImageIndex)
			testenv.Push(t, e.root+"/app:latest", idx)
			r := e.publish(t, unit("app", "0.1."+strconv.Itoa(i), e.built(t, "app", amd64, arm64)))
			if !r.Latest || e.inspect(t, "app", "latest").Digest != r.Digest {
				t.Errorf("over %v: Result = %+v", ann, r)
			}
		}
		idx := mutate.Annotations(testenv.Index(t, amd64, arm64), map[string]string{publish.AnnotationVersion: "v2.0.0"}).(v1.ImageIndex)
		same := testenv.Push(t, e.root+"/app:latest", idx).String()
		r := e.publish(t, unit("app", "2.0.0", e.built(t, "app", amd64, arm64)))
		if r.Latest || e.inspect(t, "app", "latest").Digest != same {
			t.Errorf("over an equal version: Result = %+v", r)
		}
	})
}

// Latest finishes what a run that stopped between the version tag and latest left: the version
// needs no build, latest moves to it.
func TestLatestConvergence(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		r1 := e.publish(t, unit("app", "1.0.0", e.built(t, "app", amd64, arm64)))
		// 2.0.0 is published, then the process "crashes" before latest moves.
		crashing := publish.New(&hooked{Target: e.tgt, beforeTag: func(string) error { return errors.New("killed") }}, publish.WithLogger(slog.New(slog.DiscardHandler)))
		v2, err := crashing.Publish(ctx, unit("app", "2.0.0", e.built(t, "app", amd64, arm64)))
		if err == nil || !strings.Contains(err.Error(), "killed") || v2.Status != publish.Published || v2.Latest {
			t.Fatalf("crashed publish: %+v, %v", v2, err)
		}
		if l := e.inspect(t, "app", "latest"); l.Digest != r1.Digest {
			t.Fatalf("latest moved before the crash: %+v", l)
		}
		// The next run: nothing to build for 2.0.0; latest converges.
		if here, err := e.pub.Latest(ctx, "app", "2.0.0", both); err != nil || !here {
			t.Fatalf("Latest(2.0.0) = %v, %v", here, err)
		}
		if l := e.inspect(t, "app", "latest"); l.Digest != v2.Digest {
			t.Errorf("latest = %s, want 2.0.0's %s", l.Digest, v2.Digest)
		}
		// Converged: again is a no-op, a lower version does not move it back.
		if _, err := e.pub.Latest(ctx, "app", "2.0.0", both); err != nil {
			t.Error(err)
		}
		if here, err := e.pub.Latest(ctx, "app", "1.0.0", both); err != nil || here || e.inspect(t, "app", "latest").Digest != v2.Digest {
			t.Errorf("1.0.0: %v %v, latest %s", here, err, e.inspect(t, "app", "latest").Digest)
		}
		// Missing, incomplete, pre-release: errors that say why, latest untouched.
		testenv.PushIndex(t, e.root+"/app:3.0.0", amd64)
		for v, want := range map[string]string{"4.0.0": "not published", "3.0.0": "incomplete", "2.0.0-rc.1": "not published"} {
			if _, err := e.pub.Latest(ctx, "app", v, both); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Latest(%s) = %v, want %q", v, err, want)
			}
		}
		rc := unit("app", "5.0.0-rc.1", e.built(t, "app", amd64, arm64))
		rc.Stable = false
		e.publish(t, rc)
		if _, err := e.pub.Latest(ctx, "app", "5.0.0-rc.1", both); err == nil || !strings.Contains(err.Error(), "pre-release") {
			t.Errorf("Latest(5.0.0-rc.1) = %v", err)
		}
		if l := e.inspect(t, "app", "latest"); l.Digest != v2.Digest {
			t.Errorf("latest = %s, want %s", l.Digest, v2.Digest)
		}
	})
}

// hooked runs a hook before each write of the target it wraps: another writer acting between
// the publisher's read and its write.
type hooked struct {
	target.Target
	beforeWrite func(tag string) // before WriteIndex
	beforeTag   func(tag string) error
}

func (h *hooked) WriteIndex(ctx context.Context, repo, tag string, idx *v1.IndexManifest, expect string) (v1.Descriptor, error) {
	if h.beforeWrite != nil {
		h.beforeWrite(tag)
	}
	return h.Target.WriteIndex(ctx, repo, tag, idx, expect)
}

func (h *hooked) Tag(ctx context.Context, repo, tag string, d v1.Hash, expect string) error {
	if h.beforeTag != nil {
		if err := h.beforeTag(tag); err != nil {
			return err
		}
	}
	return h.Target.Tag(ctx, repo, tag, d, expect)
}

func TestVersionConflict(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		// Another publisher completes 1.0.0 between our read and our write: we see the
		// conflict, read again, and find it complete.
		var theirs string
		once := &hooked{Target: e.tgt, beforeWrite: func(tag string) {
			if theirs == "" {
				theirs = testenv.PushIndex(t, e.root+"/app:"+tag, amd64, arm64).String()
			}
		}}
		res, err := publish.New(once, publish.WithLogger(slog.New(slog.DiscardHandler))).Publish(t.Context(), unit("app", "1.0.0", e.built(t, "app", amd64, arm64)))
		if err != nil || res.Status != publish.Unchanged || res.Digest != theirs {
			t.Errorf("Result = %+v, %v; theirs %s", res, err, theirs)
		}
		if st := e.inspect(t, "app", "1.0.0"); st.Digest != theirs {
			t.Errorf("tag = %s, want theirs %s", st.Digest, theirs)
		}
		// A tag that keeps changing under us: an error, and what we had is not written.
		var last string
		always := &hooked{Target: e.tgt, beforeWrite: func(tag string) {
			last = testenv.PushIndex(t, e.root+"/app:"+tag, amd64).String()
		}}
		_, err = publish.New(always, publish.WithLogger(slog.New(slog.DiscardHandler))).Publish(t.Context(), unit("app", "2.0.0", e.built(t, "app", amd64, arm64)))
		if !errors.Is(err, target.ErrConflict) {
			t.Errorf("err = %v, want a conflict", err)
		}
		if st := e.inspect(t, "app", "2.0.0"); st.Digest != last {
			t.Errorf("tag = %s, want the other writer's %s", st.Digest, last)
		}
	})
}

func TestLatestConflict(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		quiet := publish.WithLogger(slog.New(slog.DiscardHandler))
		notLatest := func(v string) publish.Result { // published, not made latest
			u := unit("app", v, e.built(t, "app", amd64, arm64))
			u.Stable = false
			return e.publish(t, u)
		}
		r1 := e.publish(t, unit("app", "1.0.0", e.built(t, "app", amd64, arm64)))
		v15, v3 := notLatest("1.5.0"), notLatest("3.0.0")
		// move is another writer moving latest to digest.
		move := func(digest string) {
			d, err := v1.NewHash(digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.tgt.Tag(ctx, "app", "latest", d, e.inspect(t, "app", "latest").Digest); err != nil {
				t.Fatal(err)
			}
		}
		// once moves latest to digest the first time the publisher is about to move it.
		once := func(digest string) *hooked {
			done := false
			return &hooked{Target: e.tgt, beforeTag: func(tag string) error {
				if tag == publish.LatestTag && !done {
					done = true
					move(digest)
				}
				return nil
			}}
		}
		latest := func() string { return e.inspect(t, "app", "latest").Digest }

		// Moved to a lower version between our read (1.0.0) and our write: read again,
		// 2.0.0 is still higher, latest moves.
		r2, err := publish.New(once(v15.Digest), quiet).Publish(ctx, unit("app", "2.0.0", e.built(t, "app", amd64, arm64)))
		if err != nil || !r2.Latest || latest() != r2.Digest {
			t.Errorf("moved lower under us: %+v, %v; latest %s", r2, err, latest())
		}
		// Moved to a higher version between our read (2.0.0) and our write: read again, it
		// stays.
		r25, err := publish.New(once(v3.Digest), quiet).Publish(ctx, unit("app", "2.5.0", e.built(t, "app", amd64, arm64)))
		if err != nil || r25.Latest || latest() != v3.Digest {
			t.Errorf("moved higher under us: %+v, %v; latest %s", r25, err, latest())
		}
		// Moving under us every time: an error after one retry; the other writer's latest
		// stands.
		n := 0
		flip := &hooked{Target: e.tgt, beforeTag: func(string) error {
			move([]string{r1.Digest, v15.Digest}[n%2])
			n++
			return nil
		}}
		r4, err := publish.New(flip, quiet).Publish(ctx, unit("app", "4.0.0", e.built(t, "app", amd64, arm64)))
		if !errors.Is(err, target.ErrConflict) || n != 2 || r4.Status != publish.Published || r4.Latest || latest() != v15.Digest {
			t.Errorf("always moving: %+v, err = %v after %d tries; latest %s", r4, err, n, latest())
		}
	})
}

// Publishing an index over children the registry has uploads no blob: the children are read
// (manifest and config, to describe them), the index and latest are PUT as manifests.
func TestPublishRequests(t *testing.T) {
	e := backends[0].new(t)
	built := e.built(t, "app", amd64, arm64)
	before := len(e.counter.Requests())
	e.publish(t, unit("app", "1.0.0", built))
	reqs := e.counter.Requests()[before:]
	var writes []string
	for _, r := range reqs {
		if strings.Contains(r, "/blobs/") && !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			t.Errorf("blob upload: %s", r)
		}
		if !strings.HasPrefix(r, "GET ") && !strings.HasPrefix(r, "HEAD ") {
			writes = append(writes, r)
		}
	}
	if want := []string{"PUT /v2/mirror/app/manifests/1.0.0", "PUT /v2/mirror/app/manifests/latest"}; !slices.Equal(writes, want) {
		t.Errorf("writes = %q, want %q", writes, want)
	}
	// The ping (https tried first, then http), HEAD the version, read both children (manifest
	// and config each), HEAD + PUT the version, HEAD latest, HEAD + PUT latest.
	if len(reqs) != 12 {
		t.Errorf("%d requests, want 12: %q", len(reqs), reqs)
	}
	t.Logf("%d requests: %q", len(reqs), reqs)
	// Publishing it again: the HEAD of the version and of latest, nothing else.
	before = len(e.counter.Requests())
	e.publish(t, unit("app", "1.0.0", nil))
	if got, want := e.counter.Requests()[before:], []string{"HEAD /v2/mirror/app/manifests/1.0.0", "HEAD /v2/mirror/app/manifests/latest"}; !slices.Equal(got, want) {
		t.Errorf("again: %q, want %q", got, want)
	}
}

// Concurrent publishes of one repo: latest ends on the highest version.
func TestConcurrentLatest(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		versions := []string{"1.0.0", "1.2.0", "2.0.0", "1.10.0", "0.9.0", "1.9.9"}
		units := make([]publish.Unit, len(versions))
		for i, v := range versions {
			units[i] = unit("app", v, e.built(t, "app", amd64, arm64))
		}
		res := make([]publish.Result, len(units))
		var wg sync.WaitGroup
		for i, u := range units {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if res[i], err = e.pub.Publish(t.Context(), u); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if l := e.inspect(t, "app", "latest"); l.Digest != res[2].Digest || l.Annotations[publish.AnnotationVersion] != "2.0.0" {
			t.Errorf("latest = %s (%s), want 2.0.0's %s", l.Digest, l.Annotations[publish.AnnotationVersion], res[2].Digest)
		}
	})
}

func TestPublishErrors(t *testing.T) {
	e := backends[1].new(t)
	amd := e.build(t, "app", amd64)
	for name, c := range map[string]struct {
		u    publish.Unit
		want string
	}{
		"no platforms":    {publish.Unit{Repo: "app", Version: "1.0.0"}, "no platforms"},
		"bad platform":    {unit("app", "1.0.0", map[string]string{"linux/amd46": amd}), "unknown architecture"},
		"bad digest":      {unit("app", "1.0.0", map[string]string{amd64: "sha256:nope"}), "built linux/amd64"},
		"wrong platform":  {unit("app", "1.0.0", map[string]string{arm64: amd, amd64: amd}), "is for linux/amd64"},
		"absent image":    {unit("app", "1.0.0", map[string]string{amd64: amd, arm64: "sha256:" + strings.Repeat("0", 64)}), "not in the layout"},
		"bad repo":        {unit("../app", "1.0.0", nil), `repo "../app"`},
		"bad version tag": {unit("app", "1.0.0/x", nil), `tag "1.0.0/x"`},
	} {
		if _, err := e.pub.Publish(t.Context(), c.u); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", name, err, c.want)
		}
	}
	if st := e.inspect(t, "app", "1.0.0"); st.Exists {
		t.Errorf("tagged after errors: %+v", st)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// KeepLatest publishes the version and leaves latest for one Latest call after the batch.
func TestPublishKeepLatest(t *testing.T) {
	run(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		both := []platform.Platform{{OS: "linux", Arch: "amd64"}, {OS: "linux", Arch: "arm64"}}
		for _, v := range []string{"1.0.0", "3.0.0", "2.0.0"} {
			u := unit("app", v, e.built(t, "app", "linux/amd64", "linux/arm64"))
			u.KeepLatest = true
			if r := e.publish(t, u); r.Status != publish.Published || r.Latest {
				t.Fatalf("%s: %+v", v, r)
			}
		}
		if l := e.inspect(t, "app", "latest"); l.Exists {
			t.Fatalf("KeepLatest moved latest to %s", l.Digest)
		}
		here, err := e.pub.Latest(ctx, "app", "3.0.0", both)
		if err != nil || !here || e.inspect(t, "app", "latest").Digest != e.inspect(t, "app", "3.0.0").Digest {
			t.Errorf("Latest(3.0.0) = %v, %v", here, err)
		}
	})
}
