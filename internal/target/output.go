package target

import (
	"strings"

	"github.com/archmirror/archmirror/internal/build"
)

// The target describes itself to the rest of the pipeline here: how a builder writes repo's
// images into it, and how reports and provenance name repo. Whether the target is a registry
// or an OCI layout is decided in this package alone.

// Output is a push by digest to "host/namespace/repo".
func (r *registry) Output(repo string) build.Output {
	return build.Output{Push: r.Ref(repo), Insecure: r.Insecure()}
}

// Name is "host/namespace/repo".
func (r *registry) Name(repo string) string { return r.Ref(repo) }

// Location is the registry host and "namespace/repo".
func (r *registry) Location(repo string) (string, string) {
	host, path, ok := strings.Cut(r.Ref(repo), "/")
	if !ok {
		return "", host
	}
	return host, path
}

// Output adds the image's blobs to the layout at root/repo.
func (l *layoutTarget) Output(repo string) build.Output { return build.Output{Layout: l.Ref(repo)} }

// Name is "oci:root/repo".
func (l *layoutTarget) Name(repo string) string { return "oci:" + l.Ref(repo) }

// Location is "oci:root" and repo.
func (l *layoutTarget) Location(repo string) (string, string) { return "oci:" + l.root, repo }
