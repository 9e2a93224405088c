// Package provenance builds the in-toto statements archmirror attaches to what it publishes:
// SLSA v1 build provenance for each built image, and the mirror predicate
// (MirrorPredicateType, documented in docs/mirror-predicate.md) for each published index.
//
// Statements are returned unsigned; internal/attest/sign wraps them in DSSE envelopes.
package provenance

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/redact"
)

// SLSAPredicateType is the predicateType of SLSA v1 provenance.
const SLSAPredicateType = "https://slsa.dev/provenance/v1"

// BuildType identifies how archmirror builds: one BuildKit dockerfile.v0 solve of an upstream
// source at a ref, with archmirror's Dockerfile patches and build args, for one platform.
// Its externalParameters are described on Build.
const BuildType = "https://archmirror.dev/buildtypes/buildkit-dockerfile/v1"

// BuilderIDPrefix is runDetails.builder.id without the BuildKit version ("@v0.34.2").
const BuilderIDPrefix = "https://archmirror.dev/builder/buildkit"

// Build is what went into one image build. Plain values, so callers need not know in-toto.
type Build struct {
	App         string // config app name ("mattermost")
	Component   string // config component name ("server")
	Version     string // the mirrored version and image tag ("10.3.1")
	UpstreamTag string // the upstream tag ("v10.3.1")
	Platform    string // "linux/arm64"

	SourceURL    string // git URL or local directory of the build context
	SourceRef    string // the ref checked out ("refs/tags/v10.3.1" or "v10.3.1")
	SourceCommit string // 40-hex git commit the ref resolved to; "" when not known
	Dockerfile   string // relative to the context
	Patches      []string
	Args         map[string]string // build args; redacted with redact.Args before they are recorded

	BaseImages []build.BaseImage // images the Dockerfile's FROM lines resolved to
	Artifacts  []build.Artifact  // release files downloaded during the build

	BuilderEndpoint string // BuildKit address (recorded as an internal parameter, userinfo stripped)
	BuilderVersion  string // BuildKit version, part of the builder id ("v0.34.2")

	InvocationID      string // the run's job id
	Started, Finished time.Time
	ArchmirrorVersion string
}

// externalParameters is the documented shape of BuildType's externalParameters.
type externalParameters struct {
	App         string            `json:"app"`
	Component   string            `json:"component,omitempty"`
	Version     string            `json:"version"`
	UpstreamTag string            `json:"upstreamTag,omitempty"`
	Platform    string            `json:"platform,omitempty"`
	Platforms   []string          `json:"platforms,omitempty"`
	Source      source            `json:"source"`
	Dockerfile  string            `json:"dockerfile,omitempty"`
	Patches     []string          `json:"patches,omitempty"`
	BuildArgs   map[string]string `json:"buildArgs,omitempty"`
}

type source struct {
	URL string `json:"url"`
	Ref string `json:"ref,omitempty"`
}

type internalParameters struct {
	BuilderEndpoint   string `json:"builderEndpoint,omitempty"`
	ArchmirrorVersion string `json:"archmirrorVersion,omitempty"`
}

// Statement returns the SLSA v1 provenance statement for an image built from b. subjectName is
// the image's repository ("ghcr.io/acme/mirror/mattermost"), subjectDigest its manifest digest.
// Build args are passed through redact.Args, and URL passwords are stripped.
func Statement(subjectName string, subjectDigest v1.Hash, b Build) (*intoto.Statement, error) {
	if b.App == "" || b.Version == "" || b.Platform == "" || b.SourceURL == "" {
		return nil, errors.New("provenance: app, version, platform and source URL are required")
	}
	return slsaStatement(subjectName, subjectDigest, BuildType, b, externalParameters{
		App:         b.App,
		Component:   b.Component,
		Version:     b.Version,
		UpstreamTag: b.UpstreamTag,
		Platform:    b.Platform,
		Source:      source{URL: redact.Value(b.SourceURL), Ref: b.SourceRef},
		Dockerfile:  b.Dockerfile,
		Patches:     b.Patches,
		BuildArgs:   redact.Args(b.Args),
	}, nil)
}

// IndexBuildType identifies how archmirror assembles a version's OCI image index: one entry per
// platform image, each platform read from the image's config. Its externalParameters are those
// of BuildType with "platforms" (every platform of the index) instead of "platform".
const IndexBuildType = "https://archmirror.dev/buildtypes/oci-index/v1"

// IndexImage is one platform image of an index.
type IndexImage struct {
	Platform string
	Digest   v1.Hash
}

// IndexStatement returns the SLSA v1 provenance statement of a published image index: b
// describes the version (b.Platform is not used), images are the index's platform images,
// recorded as resolved dependencies by digest after the source.
func IndexStatement(subjectName string, subjectDigest v1.Hash, b Build, images []IndexImage) (*intoto.Statement, error) {
	if b.App == "" || b.Version == "" || b.SourceURL == "" || len(images) == 0 {
		return nil, errors.New("provenance: app, version, source URL and platform images are required")
	}
	var platforms []string
	var deps []*intoto.ResourceDescriptor
	for _, im := range images {
		if im.Platform == "" || im.Digest.Hex == "" {
			return nil, errors.New("provenance: index image without platform or digest")
		}
		platforms = append(platforms, im.Platform)
		ann, err := structpb.NewStruct(map[string]any{"platform": im.Platform})
		if err != nil {
			return nil, fmt.Errorf("provenance: %w", err)
		}
		deps = append(deps, &intoto.ResourceDescriptor{
			Uri:         subjectName + "@" + im.Digest.String(),
			Digest:      map[string]string{im.Digest.Algorithm: im.Digest.Hex},
			Annotations: ann,
		})
	}
	b.BaseImages, b.Artifacts = nil, nil // those belong to the platform images' provenance
	return slsaStatement(subjectName, subjectDigest, IndexBuildType, b, externalParameters{
		App:         b.App,
		Component:   b.Component,
		Version:     b.Version,
		UpstreamTag: b.UpstreamTag,
		Platforms:   platforms,
		Source:      source{URL: redact.Value(b.SourceURL), Ref: b.SourceRef},
		Dockerfile:  b.Dockerfile,
		Patches:     b.Patches,
		BuildArgs:   redact.Args(b.Args),
	}, deps)
}

// slsaStatement is the SLSA v1 statement both build types share: ext as external parameters,
// b's source, base images and artifacts, then extra, as resolved dependencies.
func slsaStatement(subjectName string, subjectDigest v1.Hash, buildType string, b Build, extParams externalParameters, extra []*intoto.ResourceDescriptor) (*intoto.Statement, error) {
	ext, err := toStruct(extParams)
	if err != nil {
		return nil, fmt.Errorf("provenance: external parameters: %w", err)
	}
	internal, err := toStruct(internalParameters{
		BuilderEndpoint:   redact.Value(b.BuilderEndpoint),
		ArchmirrorVersion: b.ArchmirrorVersion,
	})
	if err != nil {
		return nil, fmt.Errorf("provenance: internal parameters: %w", err)
	}
	deps, err := resolvedDependencies(b)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	deps = append(deps, extra...)

	builderID := BuilderIDPrefix
	if b.BuilderVersion != "" {
		builderID += "@" + b.BuilderVersion
	}
	builder := &slsa.Builder{Id: builderID}
	if b.BuilderVersion != "" || b.ArchmirrorVersion != "" {
		builder.Version = map[string]string{}
		if b.BuilderVersion != "" {
			builder.Version["buildkit"] = b.BuilderVersion
		}
		if b.ArchmirrorVersion != "" {
			builder.Version["archmirror"] = b.ArchmirrorVersion
		}
	}
	meta := &slsa.BuildMetadata{InvocationId: b.InvocationID}
	if !b.Started.IsZero() {
		meta.StartedOn = timestamppb.New(b.Started.UTC())
	}
	if !b.Finished.IsZero() {
		meta.FinishedOn = timestamppb.New(b.Finished.UTC())
	}
	if !b.Started.IsZero() && !b.Finished.IsZero() && b.Finished.Before(b.Started) {
		return nil, errors.New("provenance: finished before started")
	}

	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{
			BuildType:            buildType,
			ExternalParameters:   ext,
			InternalParameters:   internal,
			ResolvedDependencies: deps,
		},
		RunDetails: &slsa.RunDetails{Builder: builder, Metadata: meta},
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return statement(subjectName, subjectDigest, SLSAPredicateType, pred)
}

var gitCommitRE = regexp.MustCompile(`^[0-9a-f]{40}$`)

func resolvedDependencies(b Build) ([]*intoto.ResourceDescriptor, error) {
	var deps []*intoto.ResourceDescriptor

	src := &intoto.ResourceDescriptor{Name: "source", Uri: sourceURI(redact.Value(b.SourceURL), b.SourceRef)}
	if b.SourceCommit != "" {
		c := strings.ToLower(b.SourceCommit)
		if !gitCommitRE.MatchString(c) {
			return nil, fmt.Errorf("source commit %q is not a 40-hex git commit", b.SourceCommit)
		}
		src.Digest = map[string]string{string(intoto.AlgorithmGitCommit): c}
	}
	deps = append(deps, src)

	for _, bi := range b.BaseImages {
		rd := &intoto.ResourceDescriptor{Uri: bi.Ref}
		if bi.Digest != "" {
			h, err := v1.NewHash(bi.Digest)
			if err != nil {
				return nil, fmt.Errorf("base image %s: %w", bi.Ref, err)
			}
			rd.Digest = map[string]string{h.Algorithm: h.Hex}
		}
		if rd.Uri == "" && rd.Digest == nil {
			return nil, errors.New("base image with neither reference nor digest")
		}
		deps = append(deps, rd)
	}

	for _, a := range b.Artifacts {
		if a.URI == "" {
			return nil, errors.New("downloaded artifact without URI")
		}
		rd := &intoto.ResourceDescriptor{Uri: redact.Value(a.URI)}
		if a.SHA256 != "" {
			h := strings.ToLower(strings.TrimPrefix(a.SHA256, "sha256:"))
			if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
				return nil, fmt.Errorf("artifact %s: sha256 %q is not 64 hex digits", a.URI, a.SHA256)
			}
			rd.Digest = map[string]string{string(intoto.AlgorithmSHA256): h}
		}
		deps = append(deps, rd)
	}
	return deps, nil
}

// sourceURI is the SLSA convention for git sources: "git+https://host/repo@ref". Local
// directories and URLs that already name git keep their form.
func sourceURI(u, ref string) string {
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "ssh://") {
		u = "git+" + u
	}
	if ref != "" {
		u += "@" + ref
	}
	return u
}

// statement wraps a predicate (a proto message or any JSON-marshalable value) in an in-toto v1
// statement about one subject, and validates it.
func statement(subjectName string, d v1.Hash, predicateType string, pred any) (*intoto.Statement, error) {
	if subjectName == "" {
		return nil, errors.New("provenance: empty subject name")
	}
	if d.Algorithm == "" || d.Hex == "" {
		return nil, errors.New("provenance: empty subject digest")
	}
	ps, err := toStruct(pred)
	if err != nil {
		return nil, fmt.Errorf("provenance: predicate: %w", err)
	}
	st := &intoto.Statement{
		Type: intoto.StatementTypeUri,
		Subject: []*intoto.ResourceDescriptor{{
			Name:   subjectName,
			Digest: map[string]string{d.Algorithm: d.Hex},
		}},
		PredicateType: predicateType,
		Predicate:     ps,
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: statement: %w", err)
	}
	return st, nil
}

// toStruct converts a proto message or a JSON-marshalable value to a structpb.Struct.
func toStruct(v any) (*structpb.Struct, error) {
	var (
		b   []byte
		err error
	)
	if m, ok := v.(proto.Message); ok {
		b, err = protojson.Marshal(m)
	} else {
		b, err = json.Marshal(v)
	}
	if err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(b, s); err != nil {
		return nil, err
	}
	return s, nil
}

// JSON returns a statement's canonical-enough JSON (in-toto field names, keys sorted, no
// insignificant whitespace): the payload to sign. protojson's own output is deliberately
// unstable, so it is re-encoded.
func JSON(st *intoto.Statement) ([]byte, error) {
	b, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("statement json: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("statement json: %w", err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("statement json: %w", err)
	}
	return out, nil
}
