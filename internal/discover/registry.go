package discover

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Registry lists the tags of an upstream image repository. Registries know no dates, so a
// registry source's versions are ordered by semver.
type Registry struct {
	repo      string
	insecure  bool
	keychain  authn.Keychain
	client    *http.Client
	userAgent string
}

// NewRegistry returns the tags source of an image repository ("docker.io/library/nginx").
// Credentials come from the keychain (default: the Docker config, as docker login writes it).
func NewRegistry(repo string, opts ...Option) *Registry {
	o := newOptions(opts)
	return &Registry{repo: repo, insecure: o.insecure, keychain: o.keychain, client: o.client, userAgent: o.userAgent}
}

// String is "registry REPO".
func (r *Registry) String() string { return "registry " + r.repo }

// Releases lists the repository's tags.
func (r *Registry) Releases(ctx context.Context) ([]Release, error) {
	var nopts []name.Option
	if r.insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.NewRepository(r.repo, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", quoteUntrusted(r.repo, 120), err)
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.keychain),
		remote.WithUserAgent(r.userAgent),
	}
	switch {
	case r.client != nil && r.client.Transport != nil:
		ropts = append(ropts, remote.WithTransport(r.client.Transport))
	case r.insecure:
		base, ok := remote.DefaultTransport.(*http.Transport)
		if !ok {
			base = http.DefaultTransport.(*http.Transport)
		}
		t := base.Clone()
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by insecure: true
		ropts = append(ropts, remote.WithTransport(t))
	}
	tags, err := remote.List(ref, ropts...)
	if err != nil {
		return nil, fmt.Errorf("registry %s: listing tags: %w", ref, err)
	}
	out := make([]Release, 0, len(tags))
	for _, t := range tags {
		out = append(out, Release{Tag: t})
	}
	return out, nil
}
