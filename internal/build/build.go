// Package build builds one platform of one component of one version: the Builder interface and
// its BuildKit backend, and the Dockerfile patches applied before a build.
package build

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/platform"
)

// Spec is everything a builder needs for one job, with every template already rendered for the
// job's platform. The orchestrator makes it from a plan.Job and the config.
type Spec struct {
	JobID      string
	Platform   platform.Platform
	Context    string            // a git URL ("https://host/repo.git#ref:subdir", "git://…") or a local directory (absolute; a relative one is from the working directory)
	Dockerfile string            // relative to the context (its subdir for git URLs), default "Dockerfile"
	Patches    []config.Patch    // applied to the Dockerfile in order; a patch that matches nothing fails the job
	Args       map[string]string // build args
	Labels     map[string]string // image labels (OCI and upstream ones)

	// SourceDateEpoch, when set, makes the build reproducible: the image's created time and
	// history are this time, and every file newer than it in the layers the build adds is
	// clamped to it, so the same inputs give the same manifest digest on any buildkitd at any
	// time. The Dockerfile sees it as the build arg SOURCE_DATE_EPOCH (unix seconds); an
	// explicit Args["SOURCE_DATE_EPOCH"] takes precedence. Zero leaves timestamps to BuildKit
	// (the time of the build).
	SourceDateEpoch time.Time

	// Output is where the image goes; the target makes it (target.Target.Output).
	Output

	CacheRef string // "" or a registry reference used to import and export the build cache

	Log  io.Writer         // receives the full build log (plain progress); may be nil
	Step func(name string) // told the name of each build step as it starts (escaped, one line); may be nil
}

// Output is where a builder stores the image it builds, as the target describes itself to
// builders: exactly one of Push, a repository the image is pushed to by digest
// ("127.0.0.1:5000/ns/app"), or Layout, an OCI layout directory the image is added to (blobs
// and manifest, no tag). Only the target decides which (target.Target.Output); a builder
// implements both.
type Output struct {
	Push     string
	Insecure bool // Push's registry is plain HTTP / unverified TLS
	Layout   string
}

// Cache is the registry reference of a build cache tagged tag beside the output's images,
// "" when the output is not a registry (a layout has nowhere to keep one).
func (o Output) Cache(tag string) string {
	if o.Push == "" {
		return ""
	}
	return o.Push + ":" + tag
}

// Pull is the repository a build pulls the output's images from ("host/ns/app", to which
// "@sha256:…" is added), for a component built on another: an error when builders cannot pull
// from the output (an OCI layout).
func (o Output) Pull() (string, error) {
	if o.Push == "" {
		return "", errors.New("component references need a registry target (BuildKit pulls the base from it)")
	}
	return o.Push, nil
}

// Result is a built and stored image.
type Result struct {
	Digest    string // of the image manifest (never an index: no attestation manifests)
	MediaType string
	Size      int64 // of the manifest
	Platform  string
	Duration  time.Duration
	Inputs    Inputs // what BuildKit resolved and used; partial (with a warning in Spec.Log) when it could not all be read

	// Builder is the endpoint that built the image (or failed to), when a decorator chose one
	// (Pool); Retried the endpoints that died under the build before it. A Builder that
	// fails may still return them with its error.
	Builder string
	Retried []string
}

// Builder builds one Spec. Decorators (Limit, RetryPush, a node pool) are Builders around
// Builders: the core never learns they exist.
type Builder interface {
	Build(ctx context.Context, s Spec) (Result, error)
}

// BuilderFunc is a function that is a Builder.
type BuilderFunc func(ctx context.Context, s Spec) (Result, error)

// Build calls f.
func (f BuilderFunc) Build(ctx context.Context, s Spec) (Result, error) { return f(ctx, s) }

// TransientPush reports whether err, a Build error, is BuildKit failing to push the image, or
// to pull a base from the registry, because of the registry or the connection to it — a 429 or
// 5xx answer, a connection reset or cut short, an upload session the registry lost — which
// building again (from BuildKit's cache) may get past: BuildKit gives up on those after a few
// tries of its own. BuildKit reports them as text, so this reads the text; a RUN step that
// failed is never one, whatever its output says.
func TransientPush(err error) bool {
	if err == nil {
		return false
	}
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "did not complete successfully") {
		return false // a RUN step: its output is the upstream's, not the registry's
	}
	if !containsAny(msg, "push", "export", "upload", "resolve", "pull", "failed to copy", "failed to do request") {
		return false
	}
	return containsAny(msg,
		"429 too many requests", "500 internal server error", "502 bad gateway", "503 service unavailable", "504 gateway timeout",
		"connection reset by peer", "broken pipe", "unexpected eof", "connection refused", "i/o timeout",
		"blob upload unknown", "digest did not match uploaded content")
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
