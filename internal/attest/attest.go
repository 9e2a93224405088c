// Package attest is the pipeline's last stage: it attaches to a published version — its image
// index and every platform image in it — an SPDX SBOM, SLSA v1 provenance, the mirror predicate
// and a cosign signature, each an in-toto statement in a Sigstore bundle (cosign v3's default
// format), stored as an OCI 1.1 referrer of its subject. `cosign verify --key` and `cosign
// verify-attestation --type spdxjson|slsaprovenance1|<mirror type>` accept every digest.
//
// Attesting is idempotent: a subject that already has a referrer of a predicate type, made by the
// same signer (the dev.archmirror.signer annotation), gets no second one; so a re-run, or a run
// after a failed one, adds only what is missing.
package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	intoto "github.com/in-toto/attestation/go/v1"

	"github.com/archmirror/archmirror/internal/attest/provenance"
	"github.com/archmirror/archmirror/internal/attest/sbom"
	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/target"
)

// Predicate types archmirror attaches, as cosign names them.
const (
	// SignPredicateType is cosign v3's image signature: an in-toto statement with an empty
	// predicate about the signed digest (`cosign sign` with the new bundle format).
	SignPredicateType = "https://sigstore.dev/cosign/sign/v1"
	// SPDXPredicateType is `cosign verify-attestation --type spdxjson`.
	SPDXPredicateType = "https://spdx.dev/Document"
	// SLSAPredicateType is `--type slsaprovenance1`.
	SLSAPredicateType = provenance.SLSAPredicateType
	// MirrorPredicateType is archmirror's own (docs/mirror-predicate.md).
	MirrorPredicateType = provenance.MirrorPredicateType
)

// PredicateTypes are the four every subject carries, in the order they are made.
var PredicateTypes = []string{SPDXPredicateType, SLSAPredicateType, MirrorPredicateType, SignPredicateType}

// Shown names the predicate types as `verify` shows them (a column each), in its order.
var Shown = []struct{ Name, Type string }{
	{"SIGNATURE", SignPredicateType}, {"SBOM", SPDXPredicateType},
	{"PROVENANCE", SLSAPredicateType}, {"MIRROR", MirrorPredicateType},
}

// Referrer manifest shape, as cosign's WriteAttestationNewBundleFormat writes it.
const (
	BundleMediaType         = "application/vnd.dev.sigstore.bundle.v0.3+json"
	PredicateTypeAnnotation = "dev.sigstore.bundle.predicateType"
	ContentAnnotation       = "dev.sigstore.bundle.content"
	// SignerAnnotation names who signed the bundle: "key:<hint>" (base64 SHA-256 of the public
	// key) or "keyless". It lets a run tell, from the referrers listing alone, whether its own
	// signer already attested a subject; a new key attests again.
	SignerAnnotation  = "dev.archmirror.signer"
	CreatedAnnotation = "org.opencontainers.image.created"
	emptyConfig       = "{}"
	emptyMediaType    = "application/vnd.oci.empty.v1+json"
)

// Store is where published images and their referrers live: a target.Target.
type Store interface {
	Ref(repo string) string
	Image(ctx context.Context, repo string, d v1.Hash) (v1.Image, error)
	Manifest(ctx context.Context, repo string, d v1.Hash) ([]byte, error)
	Blob(ctx context.Context, repo string, d v1.Hash, max int64) ([]byte, error)
	Referrers(ctx context.Context, repo string, d v1.Hash) ([]v1.Descriptor, error)
	Attach(ctx context.Context, repo string, arts ...target.Artifact) ([]v1.Descriptor, error)
}

// Version is one published version of one component: what to attest.
type Version struct {
	Repo   string  // the component's repository in the store ("mattermost")
	Index  v1.Hash // the published index
	Images []Image // its platform images
	// Build describes the version for the index's provenance (its Platform is not used).
	Build provenance.Build
	// Mirror is the mirror predicate of the index; each image's says its own platform.
	Mirror provenance.Mirror
}

// Image is one platform image of a Version and how it was built.
type Image struct {
	Platform string
	Digest   v1.Hash
	Build    provenance.Build // with the inputs BuildKit recorded, or what the config says when it was built in another run
}

// Result counts what Attest did for one version.
type Result struct {
	Added   int      `json:"added"`   // bundles written
	Present int      `json:"present"` // bundles that were there already
	Types   []string `json:"types,omitempty"`
}

// Attester attests versions in one Store with one signer. It is safe for concurrent use.
type Attester struct {
	store    Store
	signer   *sign.Signer
	signerID string
	cat      sbom.Cataloguer
	tool     string
	now      func() time.Time
	log      *slog.Logger

	mu   sync.Mutex
	pkgs map[v1.Hash][]sbom.Package // catalogued images, for an index SBOM after its images'
}

// Option configures New.
type Option func(*Attester)

// WithCataloguer replaces the default SBOM cataloguer (sbom.New()).
func WithCataloguer(c sbom.Cataloguer) Option { return func(a *Attester) { a.cat = c } }

// WithVersion is the archmirror version recorded as the SBOM's creator tool and in predicates.
func WithVersion(v string) Option { return func(a *Attester) { a.tool = "archmirror-" + v } }

// WithLogger receives progress at Debug level and skipped files at Warn.
func WithLogger(l *slog.Logger) Option { return func(a *Attester) { a.log = l } }

// WithClock sets the clock of creation times (tests).
func WithClock(now func() time.Time) Option { return func(a *Attester) { a.now = now } }

// New returns an Attester writing to store, signing with signer.
func New(store Store, signer *sign.Signer, opts ...Option) *Attester {
	a := &Attester{store: store, signer: signer, tool: "archmirror", now: time.Now, log: slog.Default(),
		pkgs: map[v1.Hash][]sbom.Package{}}
	for _, o := range opts {
		o(a)
	}
	if a.cat == nil {
		a.cat = sbom.New(sbom.WithLogger(a.log))
	}
	a.signerID = signer.ID()
	return a
}

// Attest makes sure v's index and each of its images carry the four bundles, adding what is
// missing. Images come first, so a failure part way leaves the index without its signature
// sooner than an image (verify checks them all). An error names the subject and step.
func (a *Attester) Attest(ctx context.Context, v Version) (Result, error) {
	var res Result
	if len(v.Images) == 0 {
		return res, fmt.Errorf("attest %s@%s: no platform images", a.store.Ref(v.Repo), v.Index)
	}
	name := a.store.Ref(v.Repo)
	indexMissing, err := a.missing(ctx, v.Repo, v.Index, &res)
	if err != nil {
		return res, err
	}
	// The images in parallel (each its own fallback index); the index after them, as its SBOM
	// is theirs together. The first error in image order is returned.
	pkgs := make([][]sbom.Package, len(v.Images))
	errs := make([]error, len(v.Images))
	var wg sync.WaitGroup
	for i, im := range v.Images {
		wg.Go(func() {
			pkgs[i], errs[i] = a.attestImage(ctx, v, im, indexMissing[SPDXPredicateType], &res)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("attest %s@%s (%s): %w", name, im.Digest, im.Platform, errs[i])
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return res, err
		}
	}
	all := slices.Concat(pkgs...)
	images := make([]provenance.IndexImage, len(v.Images))
	for i, im := range v.Images {
		images[i] = provenance.IndexImage{Platform: im.Platform, Digest: im.Digest}
	}
	stmts := map[string]func() (*intoto.Statement, error){
		SPDXPredicateType:   func() (*intoto.Statement, error) { return a.sbomStatement(name, v.Index, "", all) },
		SLSAPredicateType:   func() (*intoto.Statement, error) { return provenance.IndexStatement(name, v.Index, v.Build, images) },
		MirrorPredicateType: func() (*intoto.Statement, error) { return provenance.MirrorStatement(name, v.Index, v.Mirror) },
		SignPredicateType:   func() (*intoto.Statement, error) { return signStatement(name, v.Index) },
	}
	if err := a.add(ctx, v.Repo, v.Index, indexMissing, stmts, &res); err != nil {
		return res, fmt.Errorf("attest %s@%s: %w", name, v.Index, err)
	}
	slices.Sort(res.Types)
	res.Types = slices.Compact(res.Types)
	return res, nil
}

// attestImage adds what image im lacks, and returns its packages when its SBOM or the index's
// (indexSBOM) is to be made.
func (a *Attester) attestImage(ctx context.Context, v Version, im Image, indexSBOM bool, res *Result) ([]sbom.Package, error) {
	name := a.store.Ref(v.Repo)
	miss, err := a.missing(ctx, v.Repo, im.Digest, res)
	if err != nil {
		return nil, err
	}
	var pkgs []sbom.Package
	if miss[SPDXPredicateType] || indexSBOM {
		if pkgs, err = a.catalogue(ctx, v.Repo, im.Digest); err != nil {
			return nil, fmt.Errorf("sbom: %w", err)
		}
	}
	mirror := v.Mirror
	mirror.Platforms = []string{im.Platform}
	build := im.Build
	build.Platform = im.Platform
	stmts := map[string]func() (*intoto.Statement, error){
		SPDXPredicateType:   func() (*intoto.Statement, error) { return a.sbomStatement(name, im.Digest, im.Platform, pkgs) },
		SLSAPredicateType:   func() (*intoto.Statement, error) { return provenance.Statement(name, im.Digest, build) },
		MirrorPredicateType: func() (*intoto.Statement, error) { return provenance.MirrorStatement(name, im.Digest, mirror) },
		SignPredicateType:   func() (*intoto.Statement, error) { return signStatement(name, im.Digest) },
	}
	return pkgs, a.add(ctx, v.Repo, im.Digest, miss, stmts, res)
}

// missing lists the referrers of d and returns the predicate types our signer has not attached.
func (a *Attester) missing(ctx context.Context, repo string, d v1.Hash, res *Result) (map[string]bool, error) {
	refs, err := a.store.Referrers(ctx, repo, d)
	if err != nil {
		return nil, fmt.Errorf("attest %s@%s: referrers: %w", a.store.Ref(repo), d, err)
	}
	miss := map[string]bool{}
	for _, t := range PredicateTypes {
		miss[t] = true
	}
	for _, r := range refs {
		if !isBundle(r) || r.Annotations[SignerAnnotation] != a.signerID {
			continue
		}
		if t := r.Annotations[PredicateTypeAnnotation]; miss[t] {
			miss[t] = false
			a.mu.Lock()
			res.Present++
			a.mu.Unlock()
		}
	}
	return miss, nil
}

// isBundle reports whether a referrers listing entry is a Sigstore bundle. The target gives
// every listing the manifest's artifactType, even from registries that list the config's media
// type instead.
func isBundle(r v1.Descriptor) bool { return r.ArtifactType == BundleMediaType }

// add makes and signs the statement of each missing predicate type, in order, and attaches
// them in one call (one update of a fallback index).
func (a *Attester) add(ctx context.Context, repo string, d v1.Hash, miss map[string]bool, stmts map[string]func() (*intoto.Statement, error), res *Result) error {
	var subject *v1.Descriptor
	var arts []target.Artifact
	var types []string
	for _, t := range PredicateTypes {
		if !miss[t] {
			continue
		}
		if subject == nil {
			desc, err := a.describe(ctx, repo, d)
			if err != nil {
				return err
			}
			subject = &desc
		}
		st, err := stmts[t]()
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		payload, err := provenance.JSON(st)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		bundle, err := a.signer.Bundle(ctx, payload)
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		raw, err := referrerManifest(*subject, t, a.signerID, bundle, a.now())
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		arts = append(arts, target.Artifact{Manifest: raw, Blobs: [][]byte{[]byte(emptyConfig), bundle}})
		types = append(types, t)
	}
	if len(arts) == 0 {
		return nil
	}
	if _, err := a.store.Attach(ctx, repo, arts...); err != nil {
		return err
	}
	a.mu.Lock()
	res.Added += len(arts)
	res.Types = append(res.Types, types...)
	a.mu.Unlock()
	a.log.Debug("attached", "subject", a.store.Ref(repo)+"@"+d.String(), "predicateTypes", types)
	return nil
}

// describe is the subject descriptor of manifest d: media type, size, digest.
func (a *Attester) describe(ctx context.Context, repo string, d v1.Hash) (v1.Descriptor, error) {
	raw, err := a.store.Manifest(ctx, repo, d)
	if err != nil {
		return v1.Descriptor{}, fmt.Errorf("subject: %w", err)
	}
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return v1.Descriptor{}, fmt.Errorf("subject: %w", err)
	}
	if m.MediaType == "" {
		return v1.Descriptor{}, errors.New("subject: manifest without a mediaType")
	}
	return v1.Descriptor{MediaType: m.MediaType, Size: int64(len(raw)), Digest: d}, nil
}

// catalogue lists the packages of image d, once per Attester.
func (a *Attester) catalogue(ctx context.Context, repo string, d v1.Hash) ([]sbom.Package, error) {
	a.mu.Lock()
	p, ok := a.pkgs[d]
	a.mu.Unlock()
	if ok {
		return p, nil
	}
	img, err := a.store.Image(ctx, repo, d)
	if err != nil {
		return nil, err
	}
	p, err = a.cat.Catalogue(ctx, img)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.pkgs[d] = p
	a.mu.Unlock()
	return p, nil
}

// sbomStatement is the SPDX document of subject d as an in-toto statement. platform "" is an
// index: its packages are those of all its images.
func (a *Attester) sbomStatement(name string, d v1.Hash, platform string, pkgs []sbom.Package) (*intoto.Statement, error) {
	doc, err := sbom.Document(name, d, platform, pkgs, a.now(), a.tool)
	if err != nil {
		return nil, err
	}
	b, err := sbom.JSON(doc)
	if err != nil {
		return nil, err
	}
	return provenance.Generic(name, d, SPDXPredicateType, json.RawMessage(b))
}

// signStatement is cosign's signature statement: the digest, an empty predicate.
func signStatement(name string, d v1.Hash) (*intoto.Statement, error) {
	return provenance.Generic(name, d, SignPredicateType, struct{}{})
}

// referrerManifest is the OCI image manifest that stores one bundle as a referrer of subject:
// the empty config, the bundle as its one layer, artifactType and annotations as cosign writes.
func referrerManifest(subject v1.Descriptor, predicateType, signerID string, bundle []byte, created time.Time) ([]byte, error) {
	cfg, _, err := v1.SHA256(bytes.NewReader([]byte(emptyConfig)))
	if err != nil {
		return nil, err
	}
	layer, _, err := v1.SHA256(bytes.NewReader(bundle))
	if err != nil {
		return nil, err
	}
	ann := map[string]string{
		PredicateTypeAnnotation: predicateType,
		ContentAnnotation:       "dsse-envelope",
		SignerAnnotation:        signerID,
		CreatedAnnotation:       created.UTC().Format(time.RFC3339),
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  BundleMediaType,
		Config:        v1.Descriptor{MediaType: emptyMediaType, Size: int64(len(emptyConfig)), Digest: cfg},
		Layers:        []v1.Descriptor{{MediaType: BundleMediaType, Size: int64(len(bundle)), Digest: layer}},
		Annotations:   maps.Clone(ann),
		Subject:       &subject,
	}
	return json.Marshal(m)
}
