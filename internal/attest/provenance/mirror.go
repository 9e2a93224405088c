package provenance

import (
	"errors"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	intoto "github.com/in-toto/attestation/go/v1"

	"github.com/archmirror/archmirror/internal/redact"
)

// MirrorPredicateType is the predicateType of archmirror's mirror predicate, which says which
// upstream release a published image index mirrors. See docs/mirror-predicate.md.
const MirrorPredicateType = "https://archmirror.dev/attestations/mirror/v1"

// Mirror is the mirror predicate. Field names are a published contract: add, never rename.
type Mirror struct {
	Upstream   Upstream   `json:"upstream"`
	Registry   string     `json:"registry"`   // where it was published ("ghcr.io", or "oci:./mirror")
	Repository string     `json:"repository"` // the repository within it ("acme/mirror/mattermost")
	Platforms  []string   `json:"platforms"`  // platforms in the index ("linux/amd64", "linux/arm64")
	Archmirror Archmirror `json:"archmirror"`
}

// Upstream is the release that was mirrored.
type Upstream struct {
	Repository string `json:"repository"`       // source URL ("https://github.com/mattermost/mattermost")
	Version    string `json:"version"`          // the version, also the image tag ("10.3.1")
	Ref        string `json:"ref"`              // the upstream git ref or tag ("v10.3.1")
	Commit     string `json:"commit,omitempty"` // the commit the ref resolved to, when known
}

// Archmirror identifies the tool that published the mirror.
type Archmirror struct {
	Version string `json:"version"`
}

// MirrorStatement returns an in-toto statement with the mirror predicate about one subject,
// normally the published image index (subjectName is its repository, subjectDigest its digest).
func MirrorStatement(subjectName string, subjectDigest v1.Hash, m Mirror) (*intoto.Statement, error) {
	if m.Upstream.Repository == "" || m.Upstream.Version == "" {
		return nil, errors.New("mirror predicate: upstream repository and version are required")
	}
	if m.Repository == "" {
		return nil, errors.New("mirror predicate: repository is required")
	}
	if len(m.Platforms) == 0 {
		return nil, errors.New("mirror predicate: at least one platform is required")
	}
	m.Upstream.Repository = redact.Value(m.Upstream.Repository)
	return statement(subjectName, subjectDigest, MirrorPredicateType, m)
}

// Generic wraps any predicate (a JSON-marshalable value, or raw JSON as json.RawMessage) in an
// in-toto v1 statement about one subject: for predicates archmirror does not define itself,
// such as an SPDX document or cosign's signature predicate.
func Generic(subjectName string, subjectDigest v1.Hash, predicateType string, predicate any) (*intoto.Statement, error) {
	if predicateType == "" {
		return nil, errors.New("statement: empty predicate type")
	}
	return statement(subjectName, subjectDigest, predicateType, predicate)
}
