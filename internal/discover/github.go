package discover

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/archmirror/archmirror/internal/untrusted"
)

// DefaultGitHubAPI is the public GitHub REST API.
const DefaultGitHubAPI = "https://api.github.com"

var ghRepoRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}$`)

// validGitHubRepo reports whether repo is an owner/repo GitHub could have.
func validGitHubRepo(repo string) bool {
	return ghRepoRE.MatchString(repo) && !strings.Contains(repo, "..")
}

// GitHub lists a repository's releases through the GitHub REST API.
type GitHub struct {
	repo     string
	maxPages int
	perPage  int
	api      string
	f        *fetcher
	err      error // a bad repo or API URL, reported by Releases
}

// NewGitHub returns the releases source of repo ("owner/repo"). The token comes from
// WithToken, else $GITHUB_TOKEN when the API is https://api.github.com (see tokenFor); it is
// sent only to the API host.
func NewGitHub(repo string, opts ...Option) *GitHub {
	o := newOptions(opts)
	g := &GitHub{repo: repo, maxPages: o.maxPages, perPage: o.perPage, api: DefaultGitHubAPI}
	if o.api != "" {
		g.api = strings.TrimRight(o.api, "/")
	}
	name := "github " + repo
	if !validGitHubRepo(repo) {
		name = "github " + untrusted.Quote(repo, 80)
		g.err = fmt.Errorf("want owner/repo")
	}
	origin, err := url.Parse(g.api)
	if err != nil || (origin.Scheme != "https" && origin.Scheme != "http") || origin.Host == "" || origin.User != nil {
		g.err = fmt.Errorf("api %s: want an http(s) URL without credentials", untrusted.Quote(g.api, 120))
		origin = &url.URL{}
	}
	g.f = newFetcher(name, &url.URL{Scheme: origin.Scheme, Host: origin.Host}, o)
	g.f.accept = "application/vnd.github+json"
	g.f.extra = http.Header{"X-Github-Api-Version": {"2022-11-28"}}
	g.f.authHint = "set GITHUB_TOKEN or wait"
	token, err := tokenFor(origin, o.ownToken())
	if err != nil && g.err == nil {
		g.err = err
	}
	if token != "" && g.err == nil {
		g.f.auth = func(h http.Header) { h.Set("Authorization", "Bearer "+token) }
		g.f.authHint = "the token's limit is spent; wait"
	}
	return g
}

// String is "github owner/repo".
func (g *GitHub) String() string { return g.f.name }

// ghRelease is the part of a GitHub release object that discovery reads.
type ghRelease struct {
	TagName         string  `json:"tag_name"`
	Name            *string `json:"name"`
	Draft           bool    `json:"draft"`
	Prerelease      bool    `json:"prerelease"`
	PublishedAt     *string `json:"published_at"`
	TargetCommitish string  `json:"target_commitish"`
}

// Releases lists the repository's releases, newest first as GitHub orders them, following
// Link rel="next" up to the page bound.
func (g *GitHub) Releases(ctx context.Context) ([]Release, error) {
	if g.err != nil {
		return nil, fmt.Errorf("%s: %w", g.f.name, g.err)
	}
	u, err := url.Parse(g.api + "/repos/" + g.repo + "/releases?per_page=" + strconv.Itoa(g.perPage))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.f.name, err)
	}
	return g.f.paginate(ctx, u, "releases", g.maxPages, g.perPage, decodeGitHubReleases, func(p *page, u *url.URL) (*url.URL, error) {
		return parseLinkNext(p.Header.Get("Link"), u)
	})
}

// decodeGitHubReleases reads one page of GET /repos/{owner}/{repo}/releases.
func decodeGitHubReleases(body []byte) ([]Release, error) {
	var rs []ghRelease
	if err := json.Unmarshal(body, &rs); err != nil {
		return nil, fmt.Errorf("want a JSON array of releases: %w", err)
	}
	out := make([]Release, 0, len(rs))
	for _, r := range rs {
		rel := Release{
			Tag:        r.TagName,
			Draft:      r.Draft,
			Prerelease: r.Prerelease,
			Commit:     r.TargetCommitish,
			Published:  parseTime(r.PublishedAt),
			HasRelease: true,
		}
		if r.Name != nil {
			rel.Name = *r.Name
		}
		out = append(out, rel)
	}
	return out, nil
}

// parseTime reads an RFC 3339 API timestamp; null or unparsable is the zero time (the release
// then sorts as undated rather than failing the whole page).
func parseTime(s *string) time.Time {
	if s == nil || *s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, *s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// RateLimit is what the GitHub API last said of the rate limit; nil before any answer.
func (g *GitHub) RateLimit() *RateLimit { return g.f.RateLimit() }
