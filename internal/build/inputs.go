package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/content/proxy"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/archmirror/archmirror/internal/redact"
)

// Inputs is what BuildKit resolved and used, from its own provenance record of the build.
type Inputs struct {
	SourceCommit      string      // 40-hex commit of a git context; "" for a local directory
	BaseImages        []BaseImage // FROM images: Ref as BuildKit resolved it (no digest), Digest "sha256:…"
	Artifacts         []Artifact  // http(s) sources BuildKit fetched, with sha256 when recorded
	Started, Finished time.Time
	BuilderVersion    string // buildkitd's version ("v0.34.2"), from client.Info
}

// BaseImage is a resolved FROM image.
type BaseImage struct {
	Ref    string // as written or resolved ("docker.io/library/alpine:3.20")
	Digest string // "sha256:<hex>" of what was pulled (index or manifest)
}

// Artifact is a downloaded file.
type Artifact struct {
	URI    string `json:"uri"`
	SHA256 string `json:"sha256,omitempty"` // hex, or "sha256:<hex>"; "" when not known
}

const (
	// defaultInputsTimeout bounds reading a finished build's inputs (version, history record,
	// provenance blob): a slow or old buildkitd costs a warning, never a stuck job.
	defaultInputsTimeout = 5 * time.Second

	// maxProvenance bounds the provenance blob read from buildkitd. mode=max records carry
	// the whole LLB definition: a few hundred KiB for a large Dockerfile.
	maxProvenance = 32 << 20

	predicateTypeAnnotation = "in-toto.io/predicate-type"
	slsaV1                  = "https://slsa.dev/provenance/v1"
	slsaV02                 = "https://slsa.dev/provenance/v0.2"
)

// gitPin is how buildkitd resolved a git context's ref before the build (see gitDockerfile).
// For an annotated tag BuildKit pins, and records in provenance, the tag object; commit is
// the commit it points to.
type gitPin struct {
	checksum string // what BuildKit pins the ref to: a commit, or an annotated tag object
	commit   string // the commit
	err      error  // why the ref could not be resolved
}

// inputs gathers what the finished solve ref used: BuildKit's version and its provenance
// record of the build. It never fails: whatever cannot be read is left out and written to log
// as a warning. See inputsFrom for the other arguments.
func (b *BuildKit) inputs(ctx context.Context, c *client.Client, ref string, started, finished time.Time, pin *gitPin, args map[string]string, log io.Writer) Inputs {
	ctx, cancel := context.WithTimeout(ctx, b.o.inputsTimeout)
	defer cancel()
	var warnings []error
	pred, err := readProvenance(ctx, c, ref)
	if err != nil {
		warnings = append(warnings, err)
	}
	in, more := inputsFrom(pred, pin, started, finished, args)
	warnings = append(warnings, more...)
	if in.BuilderVersion, err = b.version(ctx, c); err != nil {
		warnings = append(warnings, err)
	}
	for _, w := range warnings {
		fmt.Fprintf(log, "WARNING: provenance of build %s is incomplete: %s\n", ref, redact.Value(w.Error()))
	}
	return in
}

// inputsFrom makes a build's Inputs from the provenance predicate BuildKit recorded for it
// (nil if none could be read), and lists what it had to leave out. pin is how the git
// context's ref was resolved before the build (nil for a local context); started and
// finished are the builder's own clock around the solve, used when the record has no times;
// args are the build args, whose secret-looking values are scrubbed from what is returned.
func inputsFrom(pred []byte, pin *gitPin, started, finished time.Time, args map[string]string) (Inputs, []error) {
	var in Inputs
	var warnings []error
	if pred != nil {
		var err error
		if in, err = parseProvenance(pred); err != nil {
			warnings = append(warnings, fmt.Errorf("buildkit's provenance record: %w", err))
		}
		switch {
		case in.SourceCommit != "":
			if in.SourceCommit, err = peel(in.SourceCommit, pin); err != nil {
				warnings = append(warnings, err)
			}
		case pin != nil:
			warnings = append(warnings, errors.New("buildkit recorded no commit for the git context"))
		}
	}
	if in.Started.IsZero() || in.Finished.IsZero() || in.Finished.Before(in.Started) {
		in.Started, in.Finished = started, finished
	}
	scrub(&in, args)
	return in, warnings
}

// peel turns the git object BuildKit recorded for the context into the commit: BuildKit
// records an annotated tag's object, not its commit, so the record alone cannot tell; the
// resolution made before the build (pin) can, when it saw the same object.
func peel(recorded string, pin *gitPin) (string, error) {
	switch {
	case pin == nil:
		return "", fmt.Errorf("buildkit recorded git object %s for a local context", recorded)
	case pin.checksum == "":
		return "", fmt.Errorf("git object %s: the ref was not resolved before the build (%v), so whether it is a commit or an annotated tag is unknown", recorded, pin.err)
	case !strings.EqualFold(recorded, pin.checksum):
		return "", fmt.Errorf("git object %s: the ref resolved to %s when the Dockerfile was read (did it move during the build?)", recorded, pin.checksum)
	}
	return strings.ToLower(pin.commit), nil
}

// scrub replaces the values of secret-looking build args, and URL passwords, wherever they
// show in recorded URIs (an ADD URL can expand a build arg). Git URLs and build args are never
// copied from the record, so only references and URIs need it.
func scrub(in *Inputs, args map[string]string) {
	var secrets []string
	for k, v := range args {
		if redact.SecretName(k) && len(v) >= 4 {
			secrets = append(secrets, v)
		}
	}
	// longest first, so a secret that contains another is replaced whole
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	clean := func(s string) string {
		for _, v := range secrets {
			s = strings.ReplaceAll(s, v, redact.Redacted)
		}
		return redact.Value(s)
	}
	for i := range in.BaseImages {
		in.BaseImages[i].Ref = clean(in.BaseImages[i].Ref)
	}
	for i := range in.Artifacts {
		in.Artifacts[i].URI = clean(in.Artifacts[i].URI)
	}
}

// version is buildkitd's version, asked once per connection.
func (b *BuildKit) version(ctx context.Context, c *client.Client) (string, error) {
	b.mu.Lock()
	v := b.buildkitVersion
	b.mu.Unlock()
	if v != "" {
		return v, nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("buildkit version: %w", err)
	}
	v = info.BuildkitVersion.Version
	if v == "" {
		return "", errors.New("buildkit version: buildkitd reports none")
	}
	b.mu.Lock()
	if b.c == c {
		b.buildkitVersion = v
	}
	b.mu.Unlock()
	return v, nil
}

// readProvenance reads the SLSA provenance predicate buildkitd's build history recorded for
// the solve ref (what `docker buildx history inspect attachment --type provenance` shows).
func readProvenance(ctx context.Context, c *client.Client, ref string) ([]byte, error) {
	rec, err := historyRecord(ctx, c, ref)
	if err == nil && len(provenanceDescriptors(rec)) == 0 {
		// Not expected (the record is complete when the solve returns), but a daemon may
		// finish it later: ask it to finalise the record and look again.
		if _, ferr := c.ControlClient().UpdateBuildHistory(ctx, &controlapi.UpdateBuildHistoryRequest{Ref: ref, Finalize: true}); ferr == nil {
			rec, err = historyRecord(ctx, c, ref)
		}
	}
	if err != nil {
		return nil, err
	}
	descs := provenanceDescriptors(rec)
	switch {
	case len(descs) == 0:
		return nil, fmt.Errorf("buildkit's history record of build %s has no provenance attestation", ref)
	case len(descs) > 1:
		return nil, fmt.Errorf("buildkit's history record of build %s has %d provenance attestations, want one per single-platform build", ref, len(descs))
	}
	return readBlob(ctx, c, descs[0])
}

// historyRecord returns buildkitd's history record of the build ref.
func historyRecord(ctx context.Context, c *client.Client, ref string) (*controlapi.BuildHistoryRecord, error) {
	stream, err := c.ControlClient().ListenBuildHistory(ctx, &controlapi.BuildHistoryRequest{Ref: ref, EarlyExit: true})
	if err != nil {
		return nil, fmt.Errorf("buildkit build history: %w", err)
	}
	var rec *controlapi.BuildHistoryRecord
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("buildkit build history: %w", err)
		}
		if ev.GetRecord().GetRef() != ref {
			continue
		}
		if ev.Type == controlapi.BuildHistoryEventType_COMPLETE || rec == nil {
			rec = ev.Record
		}
	}
	if rec == nil {
		return nil, fmt.Errorf("buildkit kept no history record of build %s (is its build history disabled?)", ref)
	}
	return rec, nil
}

// provenanceDescriptors lists the record's SLSA provenance attestations: the result's, or
// each named result's.
func provenanceDescriptors(rec *controlapi.BuildHistoryRecord) []*controlapi.Descriptor {
	var out []*controlapi.Descriptor
	add := func(r *controlapi.BuildResultInfo) {
		for _, d := range r.GetAttestations() {
			switch d.GetAnnotations()[predicateTypeAnnotation] {
			case slsaV1, slsaV02:
				out = append(out, d)
			}
		}
	}
	add(rec.GetResult())
	keys := make([]string, 0, len(rec.GetResults()))
	for k := range rec.GetResults() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		add(rec.GetResults()[k])
	}
	return out
}

// readBlob reads a blob of buildkitd's content store and checks its digest.
func readBlob(ctx context.Context, c *client.Client, d *controlapi.Descriptor) ([]byte, error) {
	dgst, err := digest.Parse(d.GetDigest())
	if err != nil {
		return nil, fmt.Errorf("provenance attestation: %w", err)
	}
	if d.GetSize() <= 0 || d.GetSize() > maxProvenance {
		return nil, fmt.Errorf("provenance attestation %s: size %d, want 1 to %d bytes", dgst, d.GetSize(), maxProvenance)
	}
	store := proxy.NewContentStore(c.ContentClient())
	b, err := content.ReadBlob(ctx, store, ocispecs.Descriptor{MediaType: d.GetMediaType(), Digest: dgst, Size: d.GetSize()})
	if err != nil {
		return nil, fmt.Errorf("read provenance attestation %s: %w", dgst, err)
	}
	if got := dgst.Algorithm().FromBytes(b); got != dgst {
		return nil, fmt.Errorf("provenance attestation %s: content is %s", dgst, got)
	}
	return b, nil
}
