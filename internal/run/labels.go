package run

import (
	"regexp"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
)

var commitSHA = regexp.MustCompile(`^[0-9a-f]{40}$`)

// annotations are the OCI labels of every image and the annotations of its index, plus
// archmirror's own naming the upstream.
func (s *syncer) annotations(app *config.App, c *config.Component, v discover.Version) map[string]string {
	a := map[string]string{
		"org.opencontainers.image.version":  v.Version,
		"org.opencontainers.image.title":    c.Name,
		"org.opencontainers.image.source":   discover.Homepage(app.Source),
		"io.archmirror.upstream.repository": discover.Homepage(app.Source),
		"io.archmirror.upstream.version":    v.Version,
		"io.archmirror.upstream.ref":        v.Tag,
	}
	if commitSHA.MatchString(v.Commit) {
		a["org.opencontainers.image.revision"] = v.Commit
	}
	if !v.Published.IsZero() {
		a["org.opencontainers.image.created"] = v.Published.UTC().Format(time.RFC3339)
	}
	return a
}
