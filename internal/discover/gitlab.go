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

	"github.com/archmirror/archmirror/internal/untrusted"
)

// DefaultGitLabHost is used when a GitLab source names no host.
const DefaultGitLabHost = "gitlab.com"

var (
	glProjectRE = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.-]*(/[A-Za-z0-9_.][A-Za-z0-9_.-]*)*$`)
	hostRE      = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$`)
)

// validGitLabProject reports whether project is a group/project path (subgroups allowed).
func validGitLabProject(project string) bool {
	return glProjectRE.MatchString(project) && strings.Contains(project, "/") && !strings.Contains(project, "..")
}

// GitLab lists a project's tags through the GitLab REST API (v4), on any host.
type GitLab struct {
	host     string
	project  string
	base     string // scheme://host
	maxPages int
	perPage  int
	f        *fetcher
	err      error
}

// NewGitLab returns the tags source of project ("group/subgroup/project") on host ("" is
// gitlab.com). The token comes from WithToken, else $GITLAB_TOKEN when the host is gitlab.com
// (see tokenFor), and is sent as PRIVATE-TOKEN only to that host.
func NewGitLab(host, project string, opts ...Option) *GitLab {
	o := newOptions(opts)
	if host == "" {
		host = DefaultGitLabHost
	}
	g := &GitLab{host: host, project: project, maxPages: o.maxPages, perPage: o.perPage}
	g.base, g.err = gitlabBase(host, project, o.baseURL)
	name := "gitlab " + host + " " + project
	if g.err != nil {
		name = "gitlab " + untrusted.Quote(host, 80) + " " + untrusted.Quote(project, 120)
	}
	origin, _ := url.Parse(g.base)
	if origin == nil {
		origin = &url.URL{}
	}
	g.f = newFetcher(name, &url.URL{Scheme: origin.Scheme, Host: origin.Host}, o)
	g.f.accept = "application/json"
	g.f.authHint = "set GITLAB_TOKEN or wait"
	token, err := tokenFor(origin, o.ownToken())
	if err != nil && g.err == nil {
		g.err = err
	}
	if token != "" && g.err == nil {
		g.f.auth = func(h http.Header) { h.Set("PRIVATE-TOKEN", token) }
		g.f.authHint = "the token's limit is spent; wait"
	}
	return g
}

// gitlabBase validates host and project and returns the API's scheme://host.
func gitlabBase(host, project, override string) (string, error) {
	if !hostRE.MatchString(host) {
		return "", fmt.Errorf("host: want a host name")
	}
	if !validGitLabProject(project) {
		return "", fmt.Errorf("want group/project")
	}
	if override == "" {
		return "https://" + host, nil
	}
	u, err := url.Parse(override)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return "", fmt.Errorf("base URL %s: want http(s)://host[:port]", untrusted.Quote(override, 120))
	}
	return u.Scheme + "://" + u.Host, nil
}

// gitlabProjectURL is {base}/api/v4/projects/{project with / as %2F}{suffix}, parsed so that
// the escaped slashes survive (url.URL keeps them in RawPath).
func gitlabProjectURL(base, project, suffix string) (*url.URL, error) {
	u, err := url.Parse(base + "/api/v4/projects/" + url.PathEscape(project) + suffix)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(u.EscapedPath(), "/projects/"+url.PathEscape(project)+"/") {
		return nil, fmt.Errorf("project path %q lost its escaping", project)
	}
	return u, nil
}

// String is "gitlab host group/project".
func (g *GitLab) String() string { return g.f.name }

// glTag is the part of a GitLab tag object that discovery reads.
type glTag struct {
	Name      string  `json:"name"`
	CreatedAt *string `json:"created_at"` // the tag's own date (annotated tags, GitLab ≥ 16)
	Commit    *struct {
		ID            string  `json:"id"`
		CreatedAt     *string `json:"created_at"`
		CommittedDate *string `json:"committed_date"`
	} `json:"commit"`
	Release *struct {
		TagName string `json:"tag_name"`
	} `json:"release"`
}

// Releases lists the project's tags, following X-Next-Page (or Link rel="next") up to the
// page bound.
func (g *GitLab) Releases(ctx context.Context) ([]Release, error) {
	if g.err != nil {
		return nil, fmt.Errorf("%s: %w", g.f.name, g.err)
	}
	u, err := gitlabProjectURL(g.base, g.project, "/repository/tags?per_page="+strconv.Itoa(g.perPage)+"&page=1")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.f.name, err)
	}
	return g.f.paginate(ctx, u, "tags", g.maxPages, g.perPage, decodeGitLabTags, gitlabNext)
}

// decodeGitLabTags reads one page of GET /projects/{id}/repository/tags. Published is the
// tag's own date when GitLab has one (annotated tags), else its commit's.
func decodeGitLabTags(body []byte) ([]Release, error) {
	var tags []glTag
	if err := json.Unmarshal(body, &tags); err != nil {
		return nil, fmt.Errorf("want a JSON array of tags: %w", err)
	}
	out := make([]Release, 0, len(tags))
	for _, t := range tags {
		rel := Release{Tag: t.Name, HasRelease: t.Release != nil, Published: parseTime(t.CreatedAt)}
		if t.Commit != nil {
			rel.Commit = t.Commit.ID
			if rel.Published.IsZero() {
				rel.Published = parseTime(t.Commit.CreatedAt)
			}
			if rel.Published.IsZero() {
				rel.Published = parseTime(t.Commit.CommittedDate)
			}
		}
		out = append(out, rel)
	}
	return out, nil
}

// gitlabNext finds the next page: X-Next-Page when GitLab sends it (empty on the last page),
// else Link rel="next" (keyset pagination sends only Link).
func gitlabNext(p *page, u *url.URL) (*url.URL, error) {
	if vs, ok := p.Header[http.CanonicalHeaderKey("X-Next-Page")]; ok {
		v := ""
		if len(vs) > 0 {
			v = strings.TrimSpace(vs[0])
		}
		if v == "" {
			return nil, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("X-Next-Page %s: not a page number", untrusted.Quote(v, 20))
		}
		next := *u
		q := next.Query()
		q.Set("page", strconv.Itoa(n))
		next.RawQuery = q.Encode()
		return &next, nil
	}
	return parseLinkNext(p.Header.Get("Link"), u)
}

// RateLimit is what the GitLab API last said of the rate limit; nil before any answer (or when
// the instance sends no RateLimit headers).
func (g *GitLab) RateLimit() *RateLimit {
	if g.f == nil {
		return nil
	}
	return g.f.RateLimit()
}
