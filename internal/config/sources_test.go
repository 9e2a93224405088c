package config_test

import (
	"strings"
	"testing"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/discover"
)

const sourceBase = `target: {registry: oci:./mirror}
apps:
  app:
    source: {github: acme/app}
    components:
      app: {context: ./ctx}
`

// TestSourceKinds: the loader reports what discover's table finds wrong with a source, at
// the source's file:line: field. (The messages that list kinds are whole in discover's
// TestKindsMessages: a new kind changes them.)
func TestSourceKinds(t *testing.T) {
	tests := []struct {
		name   string
		source string
		want   string
	}{
		{"no source", "{}", "c.yaml:4: apps.app.source: needs exactly one of github: owner/repo, gitlab: group/project, "},
		{"two sources", "{github: acme/app, git: ./x}", "apps.app.source: needs exactly one of"},
		{"bad github repo", "{github: 'acme'}", "c.yaml:4: apps.app.source.github: \"acme\": want owner/repo"},
		{"github repo starting with -", "{github: '-foo/bar'}", "apps.app.source.github: \"-foo/bar\": want owner/repo"},
		{"host on github", "{github: acme/app, host: gitlab.example}", "apps.app.source.host: host is for gitlab"},
		{"bad gitlab project", "{gitlab: 'g/../p'}", "apps.app.source.gitlab: \"g/../p\": want group/project (subgroups allowed)"},
		{"bad gitlab host", "{gitlab: g/p, host: 'x y'}", "apps.app.source.host: \"x y\" is not a host name"},
		{"git option", "{git: '--upload-pack=x'}", "apps.app.source.git: a git URL or path cannot start with '-'"},
		{"bad registry", "{registry: 'UPPER/x'}", "apps.app.source.registry: \"UPPER/x\" is not an image repository"},
		{"token on a registry source", "{registry: docker.io/library/nginx, token: none}", "apps.app.source.token: token is for github"},
		{"token on a git source", "{git: 'https://example.org/x.git', token: env://T}", "apps.app.source.token: token is for github"},
		{"insecure on github", "{github: acme/app, insecure: true}", "c.yaml:4: apps.app.source.insecure: insecure is for registry sources"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("c.yaml", []byte(strings.Replace(sourceBase, "{github: acme/app}", tt.source, 1)), discover.SourceKinds())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v\nwant %q", err, tt.want)
			}
		})
	}
}

// TestSourceDefaults: a gitlab source's host defaults to gitlab.com.
func TestSourceDefaults(t *testing.T) {
	cfg, err := config.Parse("c.yaml", []byte(strings.Replace(sourceBase, "{github: acme/app}", "{gitlab: g/p}", 1)), discover.SourceKinds())
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.Apps[0].Source.Host; h != "gitlab.com" {
		t.Errorf("host = %q, want gitlab.com", h)
	}
}
