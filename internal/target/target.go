// Package target reads (and, in later stages, writes) the place mirrors are published to: a
// registry namespace or an OCI layout directory, behind one interface.
//
// New picks the implementation from the form of config.Target.Registry: "oci:./dir" is an OCI
// layout directory (one image layout per repo, at dir/<repo>), anything else is a registry
// namespace ("ghcr.io/acme/mirror"). Both turn what a tag points at into a State with the same
// code, so the embedded default and a real registry answer the same way.
package target

import "context"

// State is what the target holds under one repo:tag.
type State struct {
	Exists      bool
	Digest      string            // of the manifest or index the tag points at
	MediaType   string            // of that manifest
	Platforms   []string          // "linux/amd64", normalised (arm64 without variant), sorted
	Annotations map[string]string // the index's (or manifest's) annotations
}

// Target is a registry namespace or an OCI layout directory. repo is relative to the target's
// root: the component name ("outline-base").
type Target interface {
	// Inspect reports what repo:tag points at. A missing repo or tag is State{Exists: false}
	// and no error; an error means the target could not answer.
	Inspect(ctx context.Context, repo, tag string) (State, error)
}
