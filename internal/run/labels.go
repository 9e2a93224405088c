package run

import (
	"regexp"
	"strings"
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
		"org.opencontainers.image.source":   upstreamURL(app.Source),
		"io.archmirror.upstream.repository": upstreamURL(app.Source),
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

// upstreamURL names an app's upstream for labels. It never carries credentials: the config's
// URLs are validated without them, and git URLs are stripped of any user info.
func upstreamURL(src config.Source) string {
	switch src.Kind() {
	case "github":
		base := "https://github.com"
		if src.API != "" && !strings.Contains(src.API, "api.github.com") {
			base = strings.TrimSuffix(strings.TrimSuffix(src.API, "/"), "/api/v3")
		}
		return base + "/" + src.GitHub
	case "gitlab":
		return "https://" + src.Host + "/" + src.GitLab
	case "git":
		if i := strings.Index(src.Git, "@"); i >= 0 && strings.Contains(src.Git[:i], "://") {
			return src.Git[:strings.Index(src.Git, "://")+3] + src.Git[i+1:]
		}
		return src.Git
	}
	return src.Registry
}
