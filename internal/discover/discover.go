// Package discover finds an app's upstream versions: it asks a Source for releases, drops what
// is not a stable, valid, wanted version, checks require: gates and keeps the configured window.
package discover

import (
	"context"
	"time"

	"github.com/Masterminds/semver/v3"
)

// Release is one upstream tag as a source reports it, before any filtering. Every string in it
// is untrusted: it comes from whoever controls the upstream.
type Release struct {
	Tag        string
	Name       string
	Published  time.Time // zero when the source has no dates (git, registry)
	Prerelease bool
	Draft      bool
	Commit     string // the tagged commit, when the source says
	HasRelease bool   // a release (notes) exists for the tag: always on GitHub, optional on GitLab
}

// Source lists an upstream's releases.
type Source interface {
	Releases(ctx context.Context) ([]Release, error)
}

// Version is an upstream release that passed every filter: a valid OCI tag, a parsed semver.
type Version struct {
	Version    string          // as extracted, without "v": the image tag ("10.3.1")
	Semver     *semver.Version `json:"-"`
	Tag        string          // the upstream tag ("v10.3.1", "v10.3.1-limitless")
	Published  time.Time       `json:",omitzero"`
	Prerelease bool            `json:",omitempty"`
	Commit     string          `json:",omitempty"`
}

// Skip is a release that was left out, and why.
type Skip struct {
	Tag    string
	Reason string
}

// Result is what discovery found for one app.
type Result struct {
	Versions      []Version // the window, in window order (newest or highest first)
	HighestStable string    // highest stable semver in the window (which publish.Latest may or may not tag latest); "" when the window is empty
	Skipped       []Skip
	// RateLimit is what the source's API last said of its rate limit; nil when it said nothing
	// (a git or registry source, or an API that sends no rate-limit headers).
	RateLimit *RateLimit `json:"-"`
}

// RateLimit is an upstream API's rate-limit state.
type RateLimit struct {
	Host      string // the API host ("api.github.com")
	Remaining int    // requests left in the current window
}
