// Package publish assembles per-platform images into one OCI index per version and component,
// tags it, and moves `latest`. It never tags a partial index, never rewrites a complete
// version, and never moves `latest` backwards.
package publish

import "github.com/archmirror/archmirror/internal/platform"

// Unit is one version of one component to publish.
type Unit struct {
	Repo        string              // the component's repository, relative to the target ("outline")
	Version     string              // the version tag ("0.82.0")
	Platforms   []platform.Platform // every platform the index must have
	Built       map[string]string   // platform ("linux/arm64") → manifest digest built this run
	Annotations map[string]string   // the index's annotations (org.opencontainers.image.*)
	Stable      bool                // a stable semver: may become latest
	KeepLatest  bool                // leave latest alone: the caller moves it once, with Latest, after a batch
}

// Status says what Publish did.
type Status string

const (
	Published  Status = "published"  // a new version tag
	Repaired   Status = "repaired"   // an incomplete index re-published with its missing platforms
	Unchanged  Status = "unchanged"  // already complete: left as it was
	Incomplete Status = "incomplete" // platforms still missing: nothing was tagged
)

// Complete reports whether the version's tag points at a complete index after a Publish with
// this status (Published, Repaired or Unchanged): one that latest may point at.
func (s Status) Complete() bool { return s == Published || s == Repaired || s == Unchanged }

// Result is what Publish did for one Unit.
type Result struct {
	Status  Status   `json:"status"`
	Digest  string   `json:"digest,omitempty"`  // the version's index (for Incomplete: what the tag still points at, if anything)
	Missing []string `json:"missing,omitempty"` // platforms still missing when Status is Incomplete
	Latest  bool     `json:"latest,omitempty"`  // latest points at this index after Publish
}
