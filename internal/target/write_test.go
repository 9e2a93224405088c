package target_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/target"
	"github.com/archmirror/archmirror/internal/testenv"
)

// backend is a target kind the write tests run against: a real registry and an OCI layout.
type backend struct {
	name string
	root func(t *testing.T) string // the config's target.registry
}

var backends = []backend{
	{"registry", func(t *testing.T) string { return testenv.Registry(t) + "/mirror" }},
	{"layout", func(t *testing.T) string { return "oci:" + t.TempDir() }},
}

// newTarget returns a target on root with a cache, and where images of repo are pushed.
func newTarget(t *testing.T, root string, opts ...target.Option) target.Target {
	t.Helper()
	tgt, err := target.New(config.Target{Registry: root}, append([]target.Option{target.WithCacheDir(t.TempDir())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return tgt
}

func repoRef(root, repo string) string { return root + "/" + repo }

// index is an OCI index of descs, annotated.
func index(ann map[string]string, descs ...v1.Descriptor) *v1.IndexManifest {
	return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: descs, Annotations: ann}
}

func describe(t *testing.T, tgt target.Target, repo string, d v1.Hash) v1.Descriptor {
	t.Helper()
	desc, err := tgt.Describe(t.Context(), repo, d)
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

func TestDescribeChild(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			root := b.root(t)
			tgt := newTarget(t, root)
			amd := testenv.PushUntagged(t, repoRef(root, "app"), amd64)
			arm := testenv.PushUntagged(t, repoRef(root, "app"), "linux/arm64/v8")

			d := describe(t, tgt, "app", arm)
			if d.MediaType != types.OCIManifestSchema1 || d.Digest != arm || d.Size <= 0 {
				t.Errorf("descriptor = %+v", d)
			}
			if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != "arm64" || d.Platform.Variant != "" {
				t.Errorf("platform = %+v, want linux/arm64 without variant", d.Platform)
			}
			if d := describe(t, tgt, "app", amd); d.Platform.String() != amd64 {
				t.Errorf("amd64 platform = %v", d.Platform)
			}

			idx := testenv.PushIndex(t, repoRef(root, "app")+":1.0.0", amd64, arm64)
			if _, err := tgt.Describe(t.Context(), "app", idx); err == nil || !strings.Contains(err.Error(), "an index, not a single-platform image") {
				t.Errorf("index: err = %v", err)
			}
			absent := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
			if _, err := tgt.Describe(t.Context(), "app", absent); err == nil || !strings.Contains(err.Error(), absent.String()) {
				t.Errorf("absent: err = %v", err)
			}
			if _, err := tgt.Describe(t.Context(), "../app", amd); err == nil {
				t.Error("../app: no error")
			}
		})
	}
}

func TestWriteIndexAndTag(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			root := b.root(t)
			tgt := newTarget(t, root)
			ctx := t.Context()
			amd := describe(t, tgt, "app", testenv.PushUntagged(t, repoRef(root, "app"), amd64))
			arm := describe(t, tgt, "app", testenv.PushUntagged(t, repoRef(root, "app"), arm64))
			ann := map[string]string{"org.opencontainers.image.version": "1.0.0"}

			// A new tag: expect "" (absent).
			one, err := tgt.WriteIndex(ctx, "app", "1.0.0", index(ann, amd), "")
			if err != nil {
				t.Fatal(err)
			}
			st := inspectOK(t, tgt, "app", "1.0.0")
			if st.Digest != one.Digest.String() || st.MediaType != ociIndex || !slices.Equal(st.Platforms, []string{amd64}) || st.Annotations["org.opencontainers.image.version"] != "1.0.0" {
				t.Errorf("after write: %+v", st)
			}
			if one.MediaType != types.OCIImageIndex || one.Size != int64(len(st.Manifest)) {
				t.Errorf("descriptor = %+v (manifest is %d bytes)", one, len(st.Manifest))
			}
			// The same index again is done, whatever was expected.
			if again, err := tgt.WriteIndex(ctx, "app", "1.0.0", index(ann, amd), ""); err != nil || again.Digest != one.Digest {
				t.Errorf("same index again: %+v, %v", again, err)
			}

			// Another index over a tag that exists, expecting it absent: a conflict, nothing written.
			_, err = tgt.WriteIndex(ctx, "app", "1.0.0", index(ann, amd, arm), "")
			var cerr *target.ConflictError
			if !errors.Is(err, target.ErrConflict) || !errors.As(err, &cerr) || cerr.Actual != one.Digest.String() || cerr.Expected != "" {
				t.Errorf("expecting absent: err = %v", err)
			}
			if st := inspectOK(t, tgt, "app", "1.0.0"); st.Digest != one.Digest.String() {
				t.Errorf("the conflict changed the tag: %+v", st)
			}
			// Expecting a wrong digest: a conflict too.
			if _, err := tgt.WriteIndex(ctx, "app", "1.0.0", index(ann, amd, arm), arm.Digest.String()); !errors.Is(err, target.ErrConflict) {
				t.Errorf("expecting a wrong digest: err = %v", err)
			}
			// Expecting what is there: the repair.
			two, err := tgt.WriteIndex(ctx, "app", "1.0.0", index(ann, amd, arm), one.Digest.String())
			if err != nil {
				t.Fatal(err)
			}
			if st := inspectOK(t, tgt, "app", "1.0.0"); st.Digest != two.Digest.String() || !slices.Equal(st.Platforms, []string{amd64, arm64}) {
				t.Errorf("after repair: %+v", st)
			}

			// A child that is not in the repo: refused, the tag left absent.
			ghost := amd
			ghost.Digest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}
			if _, err := tgt.WriteIndex(ctx, "app", "2.0.0", index(nil, ghost), ""); err == nil {
				t.Error("index with a missing child: no error")
			}
			if st := inspectOK(t, tgt, "app", "2.0.0"); st.Exists {
				t.Errorf("index with a missing child was tagged: %+v", st)
			}
			// Not an index.
			bad := index(nil, amd)
			bad.MediaType = types.OCIManifestSchema1
			if _, err := tgt.WriteIndex(ctx, "app", "2.0.0", bad, ""); err == nil || !strings.Contains(err.Error(), "not an image index") {
				t.Errorf("not an index: err = %v", err)
			}

			// Tag: latest to the first index, then moved under the guard.
			if err := tgt.Tag(ctx, "app", "latest", one.Digest, ""); err != nil {
				t.Fatal(err)
			}
			if st := inspectOK(t, tgt, "app", "latest"); st.Digest != one.Digest.String() {
				t.Errorf("latest = %+v", st)
			}
			if err := tgt.Tag(ctx, "app", "latest", two.Digest, ""); !errors.Is(err, target.ErrConflict) {
				t.Errorf("moving latest expecting it absent: err = %v", err)
			}
			if err := tgt.Tag(ctx, "app", "latest", two.Digest, one.Digest.String()); err != nil {
				t.Fatal(err)
			}
			if st := inspectOK(t, tgt, "app", "latest"); st.Digest != two.Digest.String() {
				t.Errorf("latest after the move = %+v", st)
			}
			if err := tgt.Tag(ctx, "app", "latest", two.Digest, one.Digest.String()); err != nil {
				t.Errorf("tagging what is there already: %v", err)
			}
			// A single image can be tagged too.
			if err := tgt.Tag(ctx, "app", "amd64-only", amd.Digest, ""); err != nil {
				t.Fatal(err)
			}
			if st := inspectOK(t, tgt, "app", "amd64-only"); st.MediaType != ociManifest || !slices.Equal(st.Platforms, []string{amd64}) {
				t.Errorf("single image tag = %+v", st)
			}
			if err := tgt.Tag(ctx, "app", "ghost", ghost.Digest, ""); err == nil {
				t.Error("tagging a missing manifest: no error")
			}
			if err := tgt.Tag(ctx, "app", "bad tag", one.Digest, ""); err == nil {
				t.Error("tagging an invalid tag: no error")
			}
		})
	}
}

func inspectOK(t *testing.T, tgt target.Target, repo, tag string) target.State {
	t.Helper()
	st, err := tgt.Inspect(t.Context(), repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestRefAndInsecure(t *testing.T) {
	for _, c := range []struct {
		cfg      config.Target
		ref      string
		insecure bool
	}{
		{config.Target{Registry: "ghcr.io/acme/mirror"}, "ghcr.io/acme/mirror/app", false},
		{config.Target{Registry: "registry.example:5000/m", Insecure: true}, "registry.example:5000/m/app", true},
		{config.Target{Registry: "127.0.0.1:5000/mirror"}, "127.0.0.1:5000/mirror/app", true},
		{config.Target{Registry: "localhost:5000"}, "localhost:5000/app", true},
		{config.Target{Registry: "oci:/var/lib/mirror"}, "/var/lib/mirror/app", false},
		{config.Target{Registry: "oci:./mirror"}, "mirror/app", false},
	} {
		tgt, err := target.New(c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := tgt.Ref("app"); got != c.ref {
			t.Errorf("%s: Ref = %q, want %q", c.cfg.Registry, got, c.ref)
		}
		if got := tgt.Insecure(); got != c.insecure {
			t.Errorf("%s: Insecure = %v, want %v", c.cfg.Registry, got, c.insecure)
		}
	}
}

// Publishing an index over children the registry has costs the guard's HEAD and the PUT of
// the index: no blob is uploaded.
func TestWriteIndexRequests(t *testing.T) {
	host := testenv.Registry(t)
	root := host + "/mirror"
	amdD := testenv.PushUntagged(t, repoRef(root, "app"), amd64)
	armD := testenv.PushUntagged(t, repoRef(root, "app"), arm64)
	c := newCounter()
	tgt := newTarget(t, root, target.WithTransport(c))
	amd, arm := describe(t, tgt, "app", amdD), describe(t, tgt, "app", armD)
	c.take()

	desc, err := tgt.WriteIndex(t.Context(), "app", "1.0.0", index(nil, amd, arm), "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.take(), []string{"HEAD /v2/mirror/app/manifests/1.0.0", "PUT /v2/mirror/app/manifests/1.0.0"}; !slices.Equal(got, want) {
		t.Errorf("requests = %q\nwant       %q", got, want)
	}
	// The index written is in the cache: inspecting it costs its HEAD.
	inspectOK(t, tgt, "app", "1.0.0")
	if got := c.take(); !slices.Equal(got, []string{"HEAD /v2/mirror/app/manifests/1.0.0"}) {
		t.Errorf("inspect after write: requests = %q", got)
	}
	// Moving a tag to it: HEAD and PUT, the manifest coming from the cache.
	if err := tgt.Tag(t.Context(), "app", "latest", desc.Digest, ""); err != nil {
		t.Fatal(err)
	}
	if got, want := c.take(), []string{"HEAD /v2/mirror/app/manifests/latest", "PUT /v2/mirror/app/manifests/latest"}; !slices.Equal(got, want) {
		t.Errorf("tag: requests = %q\nwant  %q", got, want)
	}
}

// The layout keeps one index.json entry per tag, leaves no temporary files, and stays a
// layout go-containerregistry reads.
func TestLayoutIndexJSON(t *testing.T) {
	dir := t.TempDir()
	root := "oci:" + dir
	tgt := newTarget(t, root)
	ctx := t.Context()
	// An image with an untagged index.json entry, as other tools leave them.
	testenv.PushIndex(t, repoRef(root, "app")+":old", amd64)
	amd := describe(t, tgt, "app", testenv.PushUntagged(t, repoRef(root, "app"), amd64))
	one, err := tgt.WriteIndex(ctx, "app", "1.0.0", index(nil, amd), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := tgt.Tag(ctx, "app", "latest", one.Digest, ""); err != nil {
		t.Fatal(err)
	}
	arm := describe(t, tgt, "app", testenv.PushUntagged(t, repoRef(root, "app"), arm64))
	two, err := tgt.WriteIndex(ctx, "app", "1.0.0", index(nil, amd, arm), one.Digest.String())
	if err != nil {
		t.Fatal(err)
	}

	ii, im := testenv.Layout(t, filepath.Join(dir, "app"))
	tags := map[string]string{}
	for _, m := range im.Manifests {
		tag := m.Annotations["org.opencontainers.image.ref.name"]
		if _, dup := tags[tag]; dup {
			t.Errorf("tag %q twice in index.json", tag)
		}
		tags[tag] = m.Digest.String()
	}
	if len(tags) != 3 || tags["1.0.0"] != two.Digest.String() || tags["latest"] != one.Digest.String() || tags["old"] == "" {
		t.Errorf("index.json tags = %v", tags)
	}
	child, err := ii.ImageIndex(two.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := child.IndexManifest()
	if err != nil || len(cm.Manifests) != 2 {
		t.Fatalf("written index: %+v, %v", cm, err)
	}
	if _, err := child.Image(cm.Manifests[1].Digest); err != nil {
		t.Errorf("child image: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "app", ".*"))
	more, _ := filepath.Glob(filepath.Join(dir, "app", "blobs", "sha256", ".*"))
	if len(leftovers)+len(more) != 0 {
		t.Errorf("temporary files left: %v %v", leftovers, more)
	}
}

// A layout with blobs and no index.json (an image written, nothing tagged yet) gets one, and
// its oci-layout file.
func TestLayoutWithoutIndexJSON(t *testing.T) {
	dir := t.TempDir()
	root := "oci:" + dir
	d := testenv.PushUntagged(t, repoRef(root, "app"), amd64)
	for _, f := range []string{"index.json", "oci-layout"} {
		if err := os.Remove(filepath.Join(dir, "app", f)); err != nil {
			t.Fatal(err)
		}
	}
	tgt := newTarget(t, root)
	if st := inspectOK(t, tgt, "app", "1.0.0"); st.Exists {
		t.Fatalf("before: %+v", st)
	}
	desc, err := tgt.WriteIndex(t.Context(), "app", "1.0.0", index(nil, describe(t, tgt, "app", d)), "")
	if err != nil {
		t.Fatal(err)
	}
	if st := inspectOK(t, tgt, "app", "1.0.0"); st.Digest != desc.Digest.String() {
		t.Errorf("after: %+v", st)
	}
	b, err := os.ReadFile(filepath.Join(dir, "app", "oci-layout"))
	var ol struct{ ImageLayoutVersion string }
	if err != nil || json.Unmarshal(b, &ol) != nil || ol.ImageLayoutVersion != "1.0.0" {
		t.Errorf("oci-layout = %s, %v", b, err)
	}
	// No layout at all: an error that says so.
	if _, err := tgt.WriteIndex(t.Context(), "nothing", "1.0.0", index(nil, describe(t, tgt, "app", d)), ""); err == nil || !strings.Contains(err.Error(), "no layout at") {
		t.Errorf("no layout: err = %v", err)
	}
}

// Writers of one layout tag exclude each other: of many expecting the tag absent, one wins
// and the others see the conflict.
func TestLayoutConcurrentWriters(t *testing.T) {
	root := "oci:" + t.TempDir()
	tgt := newTarget(t, root)
	var descs []v1.Descriptor
	for range 8 {
		descs = append(descs, describe(t, tgt, "app", testenv.PushUntagged(t, repoRef(root, "app"), amd64)))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(descs))
	won := make([]v1.Descriptor, len(descs))
	for i, d := range descs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A second target, as another process would have.
			other := newTarget(t, root)
			won[i], errs[i] = other.WriteIndex(t.Context(), "app", "1.0.0", index(nil, d), "")
		}()
	}
	wg.Wait()
	winners := 0
	var winner string
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winner = won[i].Digest.String()
		case !errors.Is(err, target.ErrConflict):
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Errorf("%d writers won, want 1", winners)
	}
	if st := inspectOK(t, tgt, "app", "1.0.0"); st.Digest != winner {
		t.Errorf("tag = %s, the winner wrote %s", st.Digest, winner)
	}
}
