package run

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/archmirror/archmirror/internal/attest"
	"github.com/archmirror/archmirror/internal/attest/provenance"
	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/platform"
)

// PasswordEnv is where an encrypted cosign key's password comes from when the config names
// none, as for cosign itself.
const PasswordEnv = "COSIGN_PASSWORD"

// Signer returns the signer the config asks for; nil when signing is off. Errors name the
// secret's reference, never its value.
func Signer(s config.Sign) (*sign.Signer, error) {
	switch {
	case s.Off:
		return nil, nil
	case s.Keyless:
		token := sign.AmbientIDToken(nil)
		if s.IdentityToken.IsSet() {
			token = func(context.Context) (string, error) { return s.IdentityToken.Value() }
		}
		return sign.NewKeylessSigner(sign.Keyless{FulcioURL: s.Fulcio, RekorURL: s.Rekor, IDToken: token})
	}
	pemText, err := s.Key.Value()
	if err != nil {
		return nil, fmt.Errorf("sign.key: %w", err)
	}
	password := func() ([]byte, error) {
		if s.Password.IsSet() {
			v, err := s.Password.Value()
			return []byte(v), err
		}
		if v, ok := os.LookupEnv(PasswordEnv); ok {
			return []byte(v), nil
		}
		return nil, fmt.Errorf("the key is encrypted: set %s or sign.password", PasswordEnv)
	}
	k, err := sign.LoadKey([]byte(pemText), password)
	if err != nil {
		return nil, fmt.Errorf("sign.key %s: %w", s.Key.Ref, err)
	}
	return sign.NewKeySigner(k), nil
}

// AttestResult is the attestation of one published version of one component.
type AttestResult struct {
	App       string `json:"app"`
	Component string `json:"component"`
	Version   string `json:"version"`
	Digest    string `json:"digest"`
	attest.Result
	Error string `json:"error,omitempty"`
}

// built is what this run built for one job, for its provenance.
type built struct {
	spec    build.Spec
	res     build.Result
	builder string
}

// attestAll attests every complete version of the window — published by this run or before it
// — that lacks any of its bundles. Versions are attested concurrently, --parallel at a time;
// one failing does not stop the others.
func (s *syncer) attestAll(ctx context.Context, signer *sign.Signer) []AttestResult {
	a := attest.New(s.tgt, signer, attest.WithVersion(s.o.Version), attest.WithLogger(s.log))
	type todo struct {
		app   *plan.App
		comp  *config.Component
		ver   string
		index string
	}
	var work []todo
	for i := range s.apps {
		app := &s.apps[i]
		if app.Err != nil {
			continue
		}
		for _, v := range app.Discovery.Versions {
			for _, c := range app.App.Components {
				if d, ok := s.index(unitKey{app.App.Name, c.Name, v.Version}); ok {
					work = append(work, todo{app, c, v.Version, d})
				}
			}
		}
	}
	results := make([]AttestResult, len(work))
	var g errgroup.Group
	g.SetLimit(max(s.o.Parallel, 1))
	for i, w := range work {
		g.Go(func() error {
			if err := ctx.Err(); err != nil {
				results[i] = AttestResult{App: w.app.App.Name, Component: w.comp.Name, Version: w.ver, Digest: w.index, Error: err.Error()}
				return nil
			}
			results[i] = s.attestOne(ctx, a, w.app, w.comp, w.ver, w.index)
			return nil
		})
	}
	_ = g.Wait()
	return results
}

func (s *syncer) attestOne(ctx context.Context, a *attest.Attester, app *plan.App, comp *config.Component, ver, index string) AttestResult {
	r := AttestResult{App: app.App.Name, Component: comp.Name, Version: ver, Digest: index}
	v, err := s.attestVersion(ctx, app, comp, ver, index)
	if err == nil {
		r.Result, err = a.Attest(ctx, v)
	}
	if err != nil {
		r.Error = err.Error()
		s.log.Error("attest failed", "repo", s.tgt.Ref(comp.Name), "version", ver, "err", err)
		return r
	}
	if r.Added > 0 {
		s.log.Info("attested", "repo", s.tgt.Ref(comp.Name), "version", ver, "digest", index, "added", r.Added)
	}
	return r
}

// attestVersion gathers what Attest needs for one version: the index's platform images, and
// for each how it was built — from this run's build, or, for an image built in an earlier run,
// from the config (the same rendering a build would use, without what only BuildKit knew).
func (s *syncer) attestVersion(ctx context.Context, app *plan.App, comp *config.Component, ver, index string) (attest.Version, error) {
	d, err := v1.NewHash(index)
	if err != nil {
		return attest.Version{}, err
	}
	raw, err := s.tgt.Manifest(ctx, comp.Name, d)
	if err != nil {
		return attest.Version{}, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return attest.Version{}, fmt.Errorf("index %s: %w", index, err)
	}
	u := &unit{app: app, comp: comp, version: version(app, ver)}
	refs := func(name string) (string, error) { return s.ref(u, name) }
	v := attest.Version{Repo: comp.Name, Index: d}
	var platforms []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		p, err := platform.FromParts(m.Platform.OS, m.Platform.Architecture, m.Platform.Variant)
		if err != nil {
			return attest.Version{}, fmt.Errorf("index %s: entry %s: %w", index, m.Digest, err)
		}
		id := plan.JobID(app.App.Name, comp.Name, ver, p.Slug())
		b, ok := s.builtJob(id)
		if !ok {
			spec, err := s.spec(u, plan.Job{ID: id, Platform: p.String()}, refs)
			if err != nil {
				return attest.Version{}, fmt.Errorf("%s: %w", id, err)
			}
			b = built{spec: spec} // the node that built it in an earlier run is not known
		}
		platforms = append(platforms, p.String())
		v.Images = append(v.Images, attest.Image{Platform: p.String(), Digest: m.Digest, Build: s.provenanceBuild(u, id, b)})
	}
	if len(v.Images) == 0 {
		return attest.Version{}, fmt.Errorf("index %s has no platform images", index)
	}
	v.Build = v.Images[0].Build
	v.Build.Platform, v.Build.BaseImages, v.Build.Artifacts = "", nil, nil
	v.Build.InvocationID = s.runID
	v.Mirror = provenance.Mirror{
		Upstream: provenance.Upstream{
			Repository: discover.Homepage(app.App.Source), Version: ver, Ref: u.version.Tag, Commit: commitOrEmpty(u.version.Commit),
		},
		Platforms:  platforms,
		Archmirror: provenance.Archmirror{Version: s.o.Version},
	}
	v.Mirror.Registry, v.Mirror.Repository = s.tgt.Location(comp.Name)
	return v, nil
}

// provenanceBuild is the provenance of job id from what built it.
func (s *syncer) provenanceBuild(u *unit, id string, b built) provenance.Build {
	src, ref := splitContext(b.spec.Context)
	var patches []string
	for _, p := range b.spec.Patches {
		patches = append(patches, p.String())
	}
	pb := provenance.Build{
		App: u.app.App.Name, Component: u.comp.Name, Version: u.version.Version, UpstreamTag: u.version.Tag,
		Platform: b.spec.Platform.String(), SourceURL: src, SourceRef: ref, Dockerfile: b.spec.Dockerfile,
		Patches: patches, Args: b.spec.Args, BuilderEndpoint: b.builder,
		InvocationID: s.runID + "/" + id, ArchmirrorVersion: s.o.Version,
	}
	in := b.res.Inputs
	pb.SourceCommit, pb.BaseImages, pb.Artifacts = in.SourceCommit, in.BaseImages, in.Artifacts
	pb.BuilderVersion, pb.Started, pb.Finished = in.BuilderVersion, in.Started, in.Finished
	if pb.SourceCommit == "" && ref == u.version.Tag {
		pb.SourceCommit = commitOrEmpty(u.version.Commit)
	}
	return pb
}

func (s *syncer) builtJob(id string) (built, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.built[id]
	return b, ok
}

func commitOrEmpty(c string) string {
	if commitSHA.MatchString(c) {
		return c
	}
	return ""
}

// splitContext splits a build context into its source and ref: "https://h/r.git#v1:sub" →
// ("https://h/r.git", "v1"); a local directory has no ref.
func splitContext(c string) (string, string) {
	src, frag, ok := strings.Cut(c, "#")
	if !ok {
		return c, ""
	}
	ref, _, _ := strings.Cut(frag, ":")
	return src, ref
}

// AttestOptions tune a standalone attest run.
type AttestOptions struct {
	Options
	Parallel int          // versions attested at once; default 2
	Signer   *sign.Signer // default: Signer(cfg.Sign)
}

// AttestReport is what a standalone attest run did.
type AttestReport struct {
	Plan    plan.Plan      `json:"plan"`
	Results []AttestResult `json:"attestations"`
}

// Failed reports whether any app could not be planned or any version not attested.
func (r AttestReport) Failed() bool {
	return r.Plan.Failed() || attestFailed(r.Results)
}

func attestFailed(rs []AttestResult) bool {
	return slices.ContainsFunc(rs, func(a AttestResult) bool { return a.Error != "" })
}

// Attest attests every complete version the config's window finds in the target, adding only
// the bundles that are missing: for re-attesting versions published before signing was set up,
// or with a new key. Images built in earlier runs get provenance from the config alone (no base
// image digests or build times: only the build that made them knew those).
func Attest(ctx context.Context, cfg *config.Config, o AttestOptions) (AttestReport, error) {
	var rep AttestReport
	signer := o.Signer
	if signer == nil {
		if cfg.Sign.Off {
			return rep, errors.New("sign: off in the config: nothing to attest with")
		}
		var err error
		if signer, err = Signer(cfg.Sign); err != nil {
			return rep, err
		}
	}
	var sr Report
	sr.Started = time.Now()
	s, err := prepare(ctx, cfg, SyncOptions{Options: o.Options, Parallel: o.Parallel}, &sr)
	rep.Plan = sr.Plan
	if err != nil {
		return rep, err
	}
	rep.Results = s.attestAll(ctx, signer)
	return rep, nil
}
