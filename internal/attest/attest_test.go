package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/attest/provenance"
	"github.com/archmirror/archmirror/internal/attest/sbom"
	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/redact"
	"github.com/archmirror/archmirror/internal/target"
)

// memStore is an in-memory Store for unit tests; the real target is tested end to end.
type memStore struct {
	mu        sync.Mutex
	manifests map[v1.Hash][]byte
	blobs     map[v1.Hash][]byte
	referrers map[v1.Hash][]v1.Descriptor
	attaches  int
}

func newMemStore() *memStore {
	return &memStore{manifests: map[v1.Hash][]byte{}, blobs: map[v1.Hash][]byte{}, referrers: map[v1.Hash][]v1.Descriptor{}}
}

func (m *memStore) Ref(repo string) string { return "registry.test/ns/" + repo }

func (m *memStore) Image(context.Context, string, v1.Hash) (v1.Image, error) {
	return nil, errors.New("memStore has no layers; use a fake cataloguer")
}

func (m *memStore) Manifest(_ context.Context, _ string, d v1.Hash) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.manifests[d]
	if !ok {
		return nil, fmt.Errorf("manifest %s not found", d)
	}
	return b, nil
}

func (m *memStore) Blob(_ context.Context, _ string, d v1.Hash, max int64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return nil, fmt.Errorf("blob %s not found", d)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("blob %s too large", d)
	}
	return b, nil
}

func (m *memStore) Referrers(_ context.Context, _ string, d v1.Hash) ([]v1.Descriptor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]v1.Descriptor(nil), m.referrers[d]...), nil
}

func (m *memStore) Attach(_ context.Context, _ string, arts ...target.Artifact) ([]v1.Descriptor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []v1.Descriptor
	for _, art := range arts {
		var man v1.Manifest
		if err := json.Unmarshal(art.Manifest, &man); err != nil {
			return nil, err
		}
		if _, ok := m.manifests[man.Subject.Digest]; !ok {
			return nil, fmt.Errorf("subject %s not found", man.Subject.Digest)
		}
		for _, b := range art.Blobs {
			h, _, _ := v1.SHA256(bytes.NewReader(b))
			m.blobs[h] = b
		}
		for _, l := range append([]v1.Descriptor{man.Config}, man.Layers...) {
			if _, ok := m.blobs[l.Digest]; !ok {
				return nil, fmt.Errorf("blob %s not uploaded", l.Digest)
			}
		}
		h, n, _ := v1.SHA256(bytes.NewReader(art.Manifest))
		m.manifests[h] = art.Manifest
		d := v1.Descriptor{MediaType: man.MediaType, Digest: h, Size: n, ArtifactType: man.ArtifactType, Annotations: man.Annotations}
		m.referrers[man.Subject.Digest] = append(m.referrers[man.Subject.Digest], d)
		out = append(out, d)
	}
	m.attaches++
	return out, nil
}

// put stores a manifest and returns its digest.
func (m *memStore) put(t *testing.T, v any) v1.Hash {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	h, _, _ := v1.SHA256(bytes.NewReader(b))
	m.manifests[h] = b
	return h
}

// drop removes d's referrers of one predicate type, as if it had never been attached.
func (m *memStore) drop(d v1.Hash, predicateType string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keep []v1.Descriptor
	for _, r := range m.referrers[d] {
		if r.Annotations[PredicateTypeAnnotation] != predicateType {
			keep = append(keep, r)
		}
	}
	m.referrers[d] = keep
}

// fakeCat returns packages named after the image, so the index SBOM shows both.
type fakeCat struct {
	mu    sync.Mutex
	calls int
}

func (c *fakeCat) Catalogue(context.Context, v1.Image) ([]sbom.Package, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return []sbom.Package{{Kind: sbom.Deb, Name: "busybox", Version: "1:1.37.0-4", Arch: fmt.Sprint("arch", c.calls), Location: "/var/lib/dpkg/status"}}, nil
}

// catImageStore makes Image return an empty image so the fake cataloguer is reached.
type catImageStore struct{ *memStore }

func (catImageStore) Image(context.Context, string, v1.Hash) (v1.Image, error) { return nil, nil }

type fixtureVersion struct {
	store           *memStore
	index           v1.Hash
	amd64, arm64    v1.Hash
	version         Version
	signer, signer2 *sign.Signer
	verifier        *sign.Verifier
}

func newKey(t *testing.T) (*sign.Signer, *sign.Verifier) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	key, err := sign.LoadKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKeyPEM()
	v, err := sign.NewKeyVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sign.NewKeySigner(key), v
}

func newFixture(t *testing.T, extraEntries ...v1.Descriptor) *fixtureVersion {
	t.Helper()
	s := newMemStore()
	img := func(arch string) (v1.Hash, int64) {
		h := s.put(t, v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
			Config: v1.Descriptor{MediaType: types.OCIConfigJSON, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(map[string]string{"amd64": "a", "arm64": "e"}[arch], 64)}, Size: 2}})
		return h, int64(len(s.manifests[h]))
	}
	amd, amdN := img("amd64")
	arm, armN := img("arm64")
	entries := []v1.Descriptor{
		{MediaType: types.OCIManifestSchema1, Digest: amd, Size: amdN, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}},
		{MediaType: types.OCIManifestSchema1, Digest: arm, Size: armN, Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
	}
	idx := s.put(t, v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: append(entries, extraEntries...)})
	pb := provenance.Build{App: "hello", Component: "hello", Version: "1.2.0", UpstreamTag: "v1.2.0",
		SourceURL: "https://git.example/hello.git", SourceRef: "v1.2.0", Dockerfile: "Dockerfile",
		Args: map[string]string{"URL": "https://dl.example/hello-1.2.0.tgz", "API_TOKEN": "hunter2"}}
	withBase := pb
	withBase.BaseImages = []build.BaseImage{{Ref: "registry.test/base:1", Digest: "sha256:" + strings.Repeat("b", 64)}}
	signer, verifier := newKey(t)
	signer2, _ := newKey(t)
	return &fixtureVersion{
		store: s, index: idx, amd64: amd, arm64: arm, signer: signer, signer2: signer2, verifier: verifier,
		version: Version{
			Repo: "hello", Index: idx, Build: pb,
			Images: []Image{{Platform: "linux/amd64", Digest: amd, Build: withBase}, {Platform: "linux/arm64", Digest: arm, Build: withBase}},
			Mirror: provenance.Mirror{Upstream: provenance.Upstream{Repository: "https://git.example/hello", Version: "1.2.0", Ref: "v1.2.0"},
				Registry: "registry.test", Repository: "ns/hello", Platforms: []string{"linux/amd64", "linux/arm64"}},
		},
	}
}

var platforms = []string{"linux/amd64", "linux/arm64"}

func TestAttestThenVerify(t *testing.T) {
	f := newFixture(t)
	cat := &fakeCat{}
	a := New(catImageStore{f.store}, f.signer, WithCataloguer(cat), WithVersion("0.4.0"),
		WithClock(func() time.Time { return time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC) }))
	ctx := context.Background()
	res, err := a.Attest(ctx, f.version)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 12 || res.Present != 0 {
		t.Fatalf("first attest: %+v, want 12 added (4 on the index and on each image)", res)
	}
	if cat.calls != 2 {
		t.Fatalf("catalogued %d times, want once per image", cat.calls)
	}
	rep := Verify(ctx, f.store, f.verifier, "hello", f.index, platforms)
	if !rep.OK() {
		t.Fatalf("verify: %+v", rep)
	}
	if len(rep.Subjects) != 3 || rep.Subjects[0].Subject != "index" || rep.Subjects[2].Subject != "linux/arm64" {
		t.Fatalf("subjects: %+v", rep.Subjects)
	}

	// Every referrer is a bundle with the cosign annotations and our signer.
	for _, d := range []v1.Hash{f.index, f.amd64, f.arm64} {
		refs, _ := f.store.Referrers(ctx, "hello", d)
		if len(refs) != 4 {
			t.Fatalf("%s has %d referrers", d, len(refs))
		}
		for _, r := range refs {
			if r.ArtifactType != BundleMediaType || r.Annotations[SignerAnnotation] != f.signer.ID() ||
				r.Annotations[ContentAnnotation] != "dsse-envelope" || r.Annotations[CreatedAnnotation] != "2026-11-23T12:00:00Z" {
				t.Fatalf("referrer %+v", r)
			}
		}
	}

	// The index SBOM has both images' packages; the image provenance its base image, and no
	// secret build arg.
	idxSBOM := predicate(t, f, f.index, SPDXPredicateType)
	if n := strings.Count(idxSBOM, `"busybox"`); n != 2 {
		t.Errorf("index SBOM names busybox %d times, want once per image:\n%s", n, idxSBOM)
	}
	prov := predicate(t, f, f.arm64, SLSAPredicateType)
	for _, want := range []string{"registry.test/base:1", `"platform":"linux/arm64"`, redact.Redacted} {
		if !strings.Contains(prov, want) {
			t.Errorf("arm64 provenance lacks %s:\n%s", want, prov)
		}
	}
	if strings.Contains(prov, "hunter2") {
		t.Error("provenance carries a secret build arg")
	}
	if m := predicate(t, f, f.arm64, MirrorPredicateType); !strings.Contains(m, `"platforms":["linux/arm64"]`) {
		t.Errorf("arm64 mirror predicate: %s", m)
	}
	if m := predicate(t, f, f.index, MirrorPredicateType); !strings.Contains(m, `"platforms":["linux/amd64","linux/arm64"]`) {
		t.Errorf("index mirror predicate: %s", m)
	}

	// Idempotent: nothing is added again.
	before := f.store.attaches
	res, err = a.Attest(ctx, f.version)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 0 || res.Present != 12 || f.store.attaches != before {
		t.Fatalf("second attest: %+v, %d attaches", res, f.store.attaches-before)
	}

	// Only what is missing is added back.
	f.store.drop(f.arm64, SignPredicateType)
	rep = Verify(ctx, f.store, f.verifier, "hello", f.index, platforms)
	if rep.OK() || rep.Subjects[2].Checks[SignPredicateType].Error != "missing" || !rep.Subjects[1].OK() {
		t.Fatalf("verify with arm64 unsigned: %+v", rep.Subjects)
	}
	res, err = a.Attest(ctx, f.version)
	if err != nil || res.Added != 1 || len(res.Types) != 1 || res.Types[0] != SignPredicateType {
		t.Fatalf("repair: %+v, %v", res, err)
	}
	if rep := Verify(ctx, f.store, f.verifier, "hello", f.index, platforms); !rep.OK() {
		t.Fatalf("verify after repair: %+v", rep)
	}
}

// predicate is the verified predicate of type t on d.
func predicate(t *testing.T, f *fixtureVersion, d v1.Hash, typ string) string {
	t.Helper()
	refs, _ := f.store.Referrers(context.Background(), "hello", d)
	for _, r := range refs {
		if r.Annotations[PredicateTypeAnnotation] != typ {
			continue
		}
		st, err := verifyReferrer(context.Background(), f.store, f.verifier, "hello", r.Digest, d)
		if err != nil {
			t.Fatal(err)
		}
		// protojson varies its spacing on purpose; compare without it.
		return strings.ReplaceAll(string(st.Predicate), " ", "")
	}
	t.Fatalf("%s has no %s", d, typ)
	return ""
}

func TestVerifyWrongKeyAndNewKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := New(catImageStore{f.store}, f.signer2, WithCataloguer(&fakeCat{})).Attest(ctx, f.version); err != nil {
		t.Fatal(err)
	}
	rep := Verify(ctx, f.store, f.verifier, "hello", f.index, platforms)
	if rep.OK() {
		t.Fatal("bundles by another key verified")
	}
	for _, s := range rep.Subjects {
		for typ, c := range s.Checks {
			if c.OK || c.Error == "missing" {
				t.Errorf("%s %s: %+v, want a verification error", s.Subject, typ, c)
			}
		}
	}
	// Our signer attests again next to the other key's bundles; then verify passes.
	res, err := New(catImageStore{f.store}, f.signer, WithCataloguer(&fakeCat{})).Attest(ctx, f.version)
	if err != nil || res.Added != 12 || res.Present != 0 {
		t.Fatalf("attest with our key: %+v, %v", res, err)
	}
	if rep := Verify(ctx, f.store, f.verifier, "hello", f.index, platforms); !rep.OK() {
		t.Fatalf("verify: %+v", rep)
	}
}

func TestVerifyIndexShape(t *testing.T) {
	att := v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}, Size: 10,
		Platform: &v1.Platform{OS: "unknown", Architecture: "unknown"}}
	f := newFixture(t, att)
	ctx := context.Background()
	if _, err := New(catImageStore{f.store}, f.signer, WithCataloguer(&fakeCat{})).Attest(ctx, f.version); err != nil {
		t.Fatal(err)
	}
	rep := Verify(ctx, f.store, f.verifier, "hello", f.index, []string{"linux/amd64", "linux/arm64", "linux/riscv64"})
	if rep.OK() || len(rep.Extra) != 1 || !strings.HasPrefix(rep.Extra[0], "unknown/unknown") ||
		len(rep.Missing) != 1 || rep.Missing[0] != "linux/riscv64" {
		t.Fatalf("report: extra %v missing %v", rep.Extra, rep.Missing)
	}
	// Not an index at all.
	rep = Verify(ctx, f.store, f.verifier, "hello", f.amd64, platforms)
	if rep.OK() || !strings.Contains(rep.Error, "not an image index") {
		t.Fatalf("verify of an image manifest: %+v", rep)
	}
}

func TestAttestErrorsNameTheSubject(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	v := f.version
	v.Images = nil
	if _, err := New(f.store, f.signer).Attest(ctx, v); err == nil {
		t.Fatal("attested a version without images")
	}
	// The cataloguer cannot read the image: the error says which one and nothing is attached.
	_, err := New(f.store, f.signer).Attest(ctx, f.version)
	if err == nil || !strings.Contains(err.Error(), f.amd64.String()) || !strings.Contains(err.Error(), "linux/amd64") {
		t.Fatalf("err = %v", err)
	}
	if f.store.attaches != 0 {
		t.Fatalf("%d bundles attached before the error", f.store.attaches)
	}
}

// TestBundleIsCosignShaped checks the referrer manifest against what cosign's
// WriteAttestationNewBundleFormat writes and its verifier reads.
func TestBundleIsCosignShaped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := New(catImageStore{f.store}, f.signer, WithCataloguer(&fakeCat{})).Attest(ctx, f.version); err != nil {
		t.Fatal(err)
	}
	refs, _ := f.store.Referrers(ctx, "hello", f.amd64)
	raw, _ := f.store.Manifest(ctx, "hello", refs[0].Digest)
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.MediaType != types.OCIManifestSchema1 || m.ArtifactType != BundleMediaType || m.Config.MediaType != emptyMediaType ||
		len(m.Layers) != 1 || m.Layers[0].MediaType != BundleMediaType || m.Subject.Digest != f.amd64 || m.Subject.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("referrer manifest %s", raw)
	}
	bundle, _ := f.store.Blob(ctx, "hello", m.Layers[0].Digest, 1<<20)
	var b struct {
		MediaType    string `json:"mediaType"`
		DSSEEnvelope struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		} `json:"dsseEnvelope"`
		VerificationMaterial struct {
			PublicKey struct {
				Hint string `json:"hint"`
			} `json:"publicKey"`
		} `json:"verificationMaterial"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	if b.MediaType != BundleMediaType || b.DSSEEnvelope.PayloadType != sign.InTotoPayloadType ||
		"key:"+b.VerificationMaterial.PublicKey.Hint != f.signer.ID() {
		t.Fatalf("bundle %s", bundle)
	}
	payload, _ := base64.StdEncoding.DecodeString(b.DSSEEnvelope.Payload)
	if !strings.Contains(string(payload), `"sha256":"`+f.amd64.Hex+`"`) {
		t.Fatalf("statement subject: %s", payload)
	}
}

// TestShownCoversEveryType: verify's table has a column for every predicate type a subject
// carries, once each, so a new attestation type cannot be left out of it.
func TestShownCoversEveryType(t *testing.T) {
	seen := map[string]int{}
	for _, c := range Shown {
		if c.Name == "" {
			t.Errorf("%s has no column name", c.Type)
		}
		seen[c.Type]++
	}
	for _, typ := range PredicateTypes {
		if seen[typ] != 1 {
			t.Errorf("%s is shown %d times, want once", typ, seen[typ])
		}
		delete(seen, typ)
	}
	for typ := range seen {
		t.Errorf("%s is shown but not attested", typ)
	}
}
