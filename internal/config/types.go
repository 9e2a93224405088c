package config

import (
	"fmt"
	"regexp"
	"text/template"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/archmirror/archmirror/internal/platform"
)

// Config is one archmirror file: a target, defaults, and the apps to mirror.
// Field names are the user-facing contract (see DESIGN.md); add, never rename.
type Config struct {
	Path      string              `yaml:"-"`
	Target    Target              `yaml:"target"`
	Platforms []platform.Platform `yaml:"-"`
	Versions  Versions            `yaml:"versions"`
	Schedule  string              `yaml:"schedule"`
	Timezone  string              `yaml:"timezone"`
	Builders  map[string]Nodes    `yaml:"builders"` // "default" or a platform → its BuildKit nodes
	// Emulation lets jobs without a native node run on builders.default (QEMU); false makes
	// them fail instead. Default true.
	Emulation bool              `yaml:"-"`
	Runners   map[string]string `yaml:"runners"`
	Sign      Sign              `yaml:"sign"`
	Cache     Cache             `yaml:"cache"`
	Timeouts  Timeouts          `yaml:"timeouts"`
	Apps      []*App            `yaml:"-"` // in file order
}

// Timeouts bound every wait on a peer, so one stalled server fails its own app and never a
// whole run. Header is how long a request may wait for the answer's headers; Request bounds a
// whole request (a git ls-remote, an API page, a manifest; blob bodies instead fail after
// Header without a byte); Run bounds one run of serve (and of sync).
type Timeouts struct {
	Header  Duration `yaml:"header"`  // default 30s
	Request Duration `yaml:"request"` // default 90s
	Run     Duration `yaml:"run"`     // default 6h
}

// Default timeouts.
const (
	DefaultHeaderTimeout  = 30 * time.Second
	DefaultRequestTimeout = 90 * time.Second
	DefaultRunTimeout     = 6 * time.Hour
)

// Duration is a time.Duration written as Go writes one ("30s", "2m", "1h30m").
type Duration struct{ time.Duration }

// Target is where mirrors are published: a registry namespace or an OCI layout directory.
type Target struct {
	Registry string `yaml:"registry"` // "ghcr.io/acme/mirror" or "oci:./mirror"
	Insecure bool   `yaml:"insecure"`
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}

// Layout reports whether the target is an OCI layout directory, and its path.
func (t Target) Layout() (string, bool) {
	if len(t.Registry) > 4 && t.Registry[:4] == "oci:" {
		return t.Registry[4:], true
	}
	return "", false
}

// Versions is the window of upstream versions kept mirrored.
type Versions struct {
	Max        int    `yaml:"max"`        // default 10
	Order      string `yaml:"order"`      // "published" (default) or "semver"
	Constraint string `yaml:"constraint"` // optional semver constraint, e.g. ">= 9.0"

	Constraints *semver.Constraints `yaml:"-"`
}

// Order values.
const (
	OrderPublished = "published"
	OrderSemver    = "semver"
)

// Sign says how published indexes are signed: a key, keyless (OIDC), or off.
// A key is a cosign key file or a PEM private key (the secret holds the PEM itself); an encrypted
// cosign key opens with password, default env://COSIGN_PASSWORD. Keyless signing gets an OIDC
// token from identity_token, else $SIGSTORE_ID_TOKEN or GitHub Actions' ambient provider, and
// uses the public-good Fulcio and Rekor unless fulcio / rekor name others (rekor: off for none).
type Sign struct {
	Off           bool   `yaml:"-"`
	Key           Secret `yaml:"key"`
	Password      Secret `yaml:"password"`
	Keyless       bool   `yaml:"keyless"`
	Fulcio        string `yaml:"fulcio"`
	Rekor         string `yaml:"rekor"`
	IdentityToken Secret `yaml:"identity_token"`
}

// Node is one BuildKit endpoint and how many jobs it takes at once (0: sync's --per-builder).
type Node struct {
	Addr string   `yaml:"addr"`
	Max  int      `yaml:"max"`
	TLS  *NodeTLS `yaml:"tls"` // tcp:// only
}

// NodeTLS is mutual TLS to a tcp:// node, as BuildKit's deployment guide exposes one: the CA
// that signed buildkitd's certificate (unset: the system's roots), the client certificate and
// its key (together or neither), all PEM from file:///path or env://NAME, and the name the
// server's certificate is checked against (default: the address's host).
type NodeTLS struct {
	CA         Secret `yaml:"ca"`
	Cert       Secret `yaml:"cert"`
	Key        Secret `yaml:"key"`
	ServerName string `yaml:"server_name"`
}

// Nodes are the endpoints of one builders key, in config order. In YAML: an address, a list
// of addresses, or a list of {addr, max, tls}.
type Nodes []Node

// Cache holds local caches (HTTP ETags, manifests by digest).
type Cache struct {
	Dir string `yaml:"dir"` // default $XDG_CACHE_HOME/archmirror
}

// App is one upstream application and the components built from it.
type App struct {
	Name       string              `yaml:"-"`
	Source     Source              `yaml:"source"`
	Require    []Require           `yaml:"require"`
	Versions   *Versions           `yaml:"versions"` // overrides the top-level window
	Platforms  []platform.Platform `yaml:"-"`        // overrides the top-level platforms
	Components []*Component        `yaml:"-"`        // in file order

	Line int `yaml:"-"` // where the app starts in the file, for messages
}

// Source is where an app's versions come from. Exactly one kind's key is set (GitHub, GitLab,
// Git, Registry): the kinds are discover's table (discover.SourceKinds), which the loader
// checks sources with. A new kind adds its key here, and nothing else in config.
type Source struct {
	GitHub   string `yaml:"github"`   // owner/repo
	GitLab   string `yaml:"gitlab"`   // group/subgroup/project
	Git      string `yaml:"git"`      // URL or local path for git ls-remote
	Registry string `yaml:"registry"` // an upstream image repository, e.g. docker.io/library/nginx

	API  string `yaml:"api"`  // API base URL (GitHub Enterprise, tests); default https://api.github.com
	Host string `yaml:"host"` // GitLab host, default gitlab.com
	// Token is the API token of a github or gitlab source: a secret reference, or none. Unset,
	// $GITHUB_TOKEN goes to api.github.com and $GITLAB_TOKEN to gitlab.com, and no token
	// anywhere else.
	Token Token `yaml:"token"`
	// Insecure lets a registry source use plain HTTP (and unverified TLS) with its registry.
	Insecure bool `yaml:"insecure"`

	Include  string `yaml:"include"`   // regex a tag must match
	Exclude  string `yaml:"exclude"`   // regex a tag must not match
	Version  string `yaml:"version"`   // regex whose first capture (or group "version") is the version
	MaxPages int    `yaml:"max_pages"` // pagination bound, default 10

	IncludeRE *regexp.Regexp `yaml:"-"`
	ExcludeRE *regexp.Regexp `yaml:"-"`
	VersionRE *regexp.Regexp `yaml:"-"`
}

// SourceKinds checks what the loader cannot check without knowing the kinds of source:
// discover.SourceKinds() is the one implementation. CheckSource finds what is wrong with s
// (a FieldError's Field is a key under source:, "" for the source itself; its Line is left to
// the loader), and fills the defaults of s's kind.
type SourceKinds interface {
	CheckSource(s *Source) []FieldError
}

// Require is a gate a version must pass: another place must have it too.
type Require struct {
	GitLabTag *GitLabTag `yaml:"gitlab-tag"`
	URL       *Template  `yaml:"url"` // must answer 200, checked for each platform
}

// GitLabTag is a tag that must exist in a GitLab project.
type GitLabTag struct {
	Host    string    `yaml:"host"`
	Project string    `yaml:"project"`
	Tag     *Template `yaml:"tag"`
}

// Component is one image built for each version of an app.
type Component struct {
	Name       string               `yaml:"-"`
	Context    *Template            `yaml:"context"`
	Dockerfile string               `yaml:"dockerfile"`
	Patches    []Patch              `yaml:"patches"`
	Args       map[string]*Template `yaml:"args"`
	Depends    []string             `yaml:"depends"` // extra ordering; {{ref "x"}} in args adds x
	Cache      string               `yaml:"cache"`   // "" or "registry"

	Line    int      `yaml:"-"`
	deps    []string // see Dependencies
	depsErr error
}

// Patch is one Dockerfile edit. Exactly one kind is set.
type Patch struct {
	UnpinDigests bool
	InsertAfter  *InsertAfter `yaml:"insert-after"`
	Replace      *Replace     `yaml:"replace"`
}

// String describes the patch as the config wrote it, for provenance and logs:
// "unpin-digests", "insert-after /MATCH/: LINE", "replace /MATCH/ with WITH".
func (p Patch) String() string {
	switch {
	case p.UnpinDigests:
		return "unpin-digests"
	case p.InsertAfter != nil:
		return fmt.Sprintf("insert-after /%s/: %s", p.InsertAfter.Match, p.InsertAfter.Line)
	case p.Replace != nil:
		return fmt.Sprintf("replace /%s/ with %s", p.Replace.Match, p.Replace.With)
	}
	return ""
}

// InsertAfter inserts Line after every line matching Match.
type InsertAfter struct {
	Match string `yaml:"match"`
	Line  string `yaml:"line"`

	MatchRE *regexp.Regexp `yaml:"-"`
}

// Replace substitutes With for Match (a regex, per line).
type Replace struct {
	Match string `yaml:"match"`
	With  string `yaml:"with"`

	MatchRE *regexp.Regexp `yaml:"-"`
}

// Template is a Go text/template with archmirror's data and functions, parsed at load time.
type Template struct {
	Text string
	tmpl *template.Template
}

// Secret is a value that comes from the environment (env://NAME) or a file (file:///path),
// never from the config itself. It prints as "[redacted]".
type Secret struct {
	Ref string // "env://NAME" or "file:///path"; "" when unset
}

// DefaultSchedule is the cron spec `serve` uses when the config has none.
const DefaultSchedule = "0 */6 * * *"

// DefaultMaxVersions is the window size when the config has none.
const DefaultMaxVersions = 10

// DefaultRateLimitWait bounds how long discovery waits for an upstream rate limit to reset.
const DefaultRateLimitWait = 2 * time.Minute
