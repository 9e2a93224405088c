package attest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/archmirror/archmirror/internal/attest/sign"
	"github.com/archmirror/archmirror/internal/platform"
)

// maxBundle bounds the bundle blob Verify reads (an SBOM of a large image is a few MB).
const maxBundle = 64 << 20

// Check is how one predicate type of one subject fared.
type Check struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"` // why not: missing, or the verification error
}

// SubjectReport is what Verify found on one subject: the index ("index") or a platform image.
type SubjectReport struct {
	Subject string           `json:"subject"` // "index" or "linux/amd64"
	Digest  string           `json:"digest"`
	Checks  map[string]Check `json:"checks"` // by predicate type, all of PredicateTypes
}

// OK reports whether every predicate type verified.
func (s SubjectReport) OK() bool {
	for _, t := range PredicateTypes {
		if !s.Checks[t].OK {
			return false
		}
	}
	return true
}

// Report is the result of verifying one published version.
type Report struct {
	Ref       string          `json:"ref"` // repository@index digest
	Platforms []string        `json:"platforms"`
	Missing   []string        `json:"missing_platforms,omitempty"` // expected but not in the index
	Extra     []string        `json:"unexpected_entries,omitempty"`
	Subjects  []SubjectReport `json:"subjects"`
	Error     string          `json:"error,omitempty"` // the index could not be read
}

// OK reports whether the index is complete and every subject verified.
func (r Report) OK() bool {
	if r.Error != "" || len(r.Missing) > 0 || len(r.Extra) > 0 || len(r.Subjects) == 0 {
		return false
	}
	for _, s := range r.Subjects {
		if !s.OK() {
			return false
		}
	}
	return true
}

// Verify checks the index d in repo: that it has exactly one image for each of want (an
// "unknown/unknown" attestation entry, or any platform not wanted, is reported as unexpected),
// and that the index and every image have a signature, SBOM, provenance and mirror bundle that
// v verifies — signed as v expects, about that very digest. It reads only; errors about single
// subjects are in the report, and the error return is for a store that cannot answer at all.
func Verify(ctx context.Context, store Store, v *sign.Verifier, repo string, d v1.Hash, want []string) Report {
	r := Report{Ref: store.Ref(repo) + "@" + d.String(), Platforms: want}
	raw, err := store.Manifest(ctx, repo, d)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil || !idx.MediaType.IsIndex() {
		r.Error = fmt.Sprintf("%s is not an image index", r.Ref)
		return r
	}
	r.Subjects = append(r.Subjects, verifySubject(ctx, store, v, repo, "index", d))
	found := map[string]bool{}
	for _, m := range idx.Manifests {
		p := "unknown"
		if m.Platform != nil {
			p = normalise(m.Platform)
		}
		if !slices.Contains(want, p) || found[p] {
			r.Extra = append(r.Extra, p+" "+m.Digest.String())
			continue
		}
		found[p] = true
		r.Subjects = append(r.Subjects, verifySubject(ctx, store, v, repo, p, m.Digest))
	}
	for _, p := range want {
		if !found[p] {
			r.Missing = append(r.Missing, p)
		}
	}
	return r
}

// normalise spells an index entry's platform as the config does (arm64 without variant).
func normalise(p *v1.Platform) string {
	if n, err := platform.FromParts(p.OS, p.Architecture, p.Variant); err == nil {
		return n.String()
	}
	return strings.TrimSuffix(p.OS+"/"+p.Architecture+"/"+p.Variant, "/")
}

// verifySubject verifies every bundle referring to d and records, per predicate type, whether
// one verified.
func verifySubject(ctx context.Context, store Store, v *sign.Verifier, repo, subject string, d v1.Hash) SubjectReport {
	s := SubjectReport{Subject: subject, Digest: d.String(), Checks: map[string]Check{}}
	for _, t := range PredicateTypes {
		s.Checks[t] = Check{Error: "missing"}
	}
	refs, err := store.Referrers(ctx, repo, d)
	if err != nil {
		for _, t := range PredicateTypes {
			s.Checks[t] = Check{Error: "referrers: " + err.Error()}
		}
		return s
	}
	for _, ref := range refs {
		if !isBundle(ref) {
			continue
		}
		st, err := verifyReferrer(ctx, store, v, repo, ref.Digest, d)
		t := ref.Annotations[PredicateTypeAnnotation]
		if err == nil {
			t = st.PredicateType
		}
		c, known := s.Checks[t]
		if !known || c.OK {
			continue
		}
		if err != nil {
			s.Checks[t] = Check{Error: err.Error()}
			continue
		}
		s.Checks[t] = Check{OK: true}
	}
	return s
}

// verifyReferrer reads the referrer manifest m, its bundle layer, and verifies the bundle is
// about subject.
func verifyReferrer(ctx context.Context, store Store, v *sign.Verifier, repo string, m, subject v1.Hash) (sign.Statement, error) {
	raw, err := store.Manifest(ctx, repo, m)
	if err != nil {
		return sign.Statement{}, err
	}
	var man v1.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return sign.Statement{}, fmt.Errorf("referrer %s: %w", m, err)
	}
	if man.Subject == nil || man.Subject.Digest != subject {
		return sign.Statement{}, fmt.Errorf("referrer %s: subject is not %s", m, subject)
	}
	for _, l := range man.Layers {
		if l.MediaType != BundleMediaType {
			continue
		}
		b, err := store.Blob(ctx, repo, l.Digest, maxBundle)
		if err != nil {
			return sign.Statement{}, fmt.Errorf("referrer %s: bundle: %w", m, err)
		}
		st, err := v.Verify(b, subject)
		if err != nil {
			return sign.Statement{}, fmt.Errorf("referrer %s: %w", m, err)
		}
		return st, nil
	}
	return sign.Statement{}, fmt.Errorf("referrer %s: no bundle layer", m)
}
