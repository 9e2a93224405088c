package fakeupstream

import (
	"net/http"
	"strings"
	"time"
)

// ghUser is GitHub's "simple user" object.
type ghUser struct {
	Login             string `json:"login"`
	ID                int64  `json:"id"`
	NodeID            string `json:"node_id"`
	AvatarURL         string `json:"avatar_url"`
	GravatarID        string `json:"gravatar_id"`
	URL               string `json:"url"`
	HTMLURL           string `json:"html_url"`
	FollowersURL      string `json:"followers_url"`
	FollowingURL      string `json:"following_url"`
	GistsURL          string `json:"gists_url"`
	StarredURL        string `json:"starred_url"`
	SubscriptionsURL  string `json:"subscriptions_url"`
	OrganizationsURL  string `json:"organizations_url"`
	ReposURL          string `json:"repos_url"`
	EventsURL         string `json:"events_url"`
	ReceivedEventsURL string `json:"received_events_url"`
	Type              string `json:"type"`
	UserViewType      string `json:"user_view_type"`
	SiteAdmin         bool   `json:"site_admin"`
}

// ghAsset is a release asset.
type ghAsset struct {
	URL                string  `json:"url"`
	ID                 int64   `json:"id"`
	NodeID             string  `json:"node_id"`
	Name               string  `json:"name"`
	Label              *string `json:"label"`
	Uploader           ghUser  `json:"uploader"`
	ContentType        string  `json:"content_type"`
	State              string  `json:"state"`
	Size               int64   `json:"size"`
	Digest             *string `json:"digest"`
	DownloadCount      int     `json:"download_count"`
	CreatedAt          string  `json:"created_at"`
	UpdatedAt          string  `json:"updated_at"`
	BrowserDownloadURL string  `json:"browser_download_url"`
}

// ghRelease is GitHub's release object, fields in the API's order.
type ghRelease struct {
	URL             string    `json:"url"`
	AssetsURL       string    `json:"assets_url"`
	UploadURL       string    `json:"upload_url"`
	HTMLURL         string    `json:"html_url"`
	ID              int64     `json:"id"`
	Author          ghUser    `json:"author"`
	NodeID          string    `json:"node_id"`
	TagName         string    `json:"tag_name"`
	TargetCommitish string    `json:"target_commitish"`
	Name            string    `json:"name"`
	Draft           bool      `json:"draft"`
	Immutable       bool      `json:"immutable"`
	Prerelease      bool      `json:"prerelease"`
	CreatedAt       string    `json:"created_at"`
	UpdatedAt       any       `json:"updated_at"`
	PublishedAt     any       `json:"published_at"`
	Assets          []ghAsset `json:"assets"`
	TarballURL      string    `json:"tarball_url"`
	ZipballURL      string    `json:"zipball_url"`
	Body            string    `json:"body"`
}

func bot(apiBase string) ghUser {
	const login = "mattermost-build"
	return ghUser{
		Login: login, ID: 20342143, NodeID: "MDQ6VXNlcjIwMzQyMTQz",
		AvatarURL:         "https://avatars.githubusercontent.com/u/20342143?v=4",
		URL:               apiBase + "/users/" + login,
		HTMLURL:           "https://github.com/" + login,
		FollowersURL:      apiBase + "/users/" + login + "/followers",
		FollowingURL:      apiBase + "/users/" + login + "/following{/other_user}",
		GistsURL:          apiBase + "/users/" + login + "/gists{/gist_id}",
		StarredURL:        apiBase + "/users/" + login + "/starred{/owner}{/repo}",
		SubscriptionsURL:  apiBase + "/users/" + login + "/subscriptions",
		OrganizationsURL:  apiBase + "/users/" + login + "/orgs",
		ReposURL:          apiBase + "/users/" + login + "/repos",
		EventsURL:         apiBase + "/users/" + login + "/events{/privacy}",
		ReceivedEventsURL: apiBase + "/users/" + login + "/received_events",
		Type:              "User", UserViewType: "public",
	}
}

// githubRelease renders a fixture release the way the API does.
func githubRelease(apiBase, repo string, rel Release) ghRelease {
	id := numID(repo + "@" + rel.Tag)
	created := rel.Created
	if created.IsZero() {
		created = rel.Published
	}
	if created.IsZero() {
		created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	commitish := rel.Commitish
	if commitish == "" {
		commitish = "main"
	}
	htmlTag := rel.Tag
	if rel.Draft {
		htmlTag = "untagged-" + hexID(rel.Tag)[:20]
	}
	apiRel := apiBase + "/repos/" + repo + "/releases/" + itoa(id)
	out := ghRelease{
		URL:             apiRel,
		AssetsURL:       apiRel + "/assets",
		UploadURL:       "https://uploads.github.com/repos/" + repo + "/releases/" + itoa(id) + "/assets{?name,label}",
		HTMLURL:         "https://github.com/" + repo + "/releases/tag/" + htmlTag,
		ID:              id,
		Author:          bot(apiBase),
		NodeID:          "RE_kwDO" + hexID(rel.Tag)[:14],
		TagName:         rel.Tag,
		TargetCommitish: commitish,
		Name:            rel.Name,
		Draft:           rel.Draft,
		Prerelease:      rel.Prerelease,
		CreatedAt:       created.UTC().Format(time.RFC3339),
		UpdatedAt:       timeOrNil(rel.Published),
		PublishedAt:     timeOrNil(rel.Published),
		Assets:          []ghAsset{},
		TarballURL:      apiBase + "/repos/" + repo + "/tarball/" + rel.Tag,
		ZipballURL:      apiBase + "/repos/" + repo + "/zipball/" + rel.Tag,
		Body:            rel.Body,
	}
	for _, a := range rel.Assets {
		ct := a.ContentType
		if ct == "" {
			ct = "application/octet-stream"
		}
		aid := numID(repo + "@" + rel.Tag + "/" + a.Name)
		out.Assets = append(out.Assets, ghAsset{
			URL: apiBase + "/repos/" + repo + "/releases/assets/" + itoa(aid), ID: aid,
			NodeID: "RA_kwDO" + hexID(a.Name)[:14], Name: a.Name, Uploader: bot(apiBase),
			ContentType: ct, State: "uploaded", Size: a.Size,
			CreatedAt: created.UTC().Format(time.RFC3339), UpdatedAt: created.UTC().Format(time.RFC3339),
			BrowserDownloadURL: "https://github.com/" + repo + "/releases/download/" + rel.Tag + "/" + a.Name,
		})
	}
	return out
}

// serveReleases answers GET /repos/{owner}/{repo}/releases.
func (s *Server) serveReleases(w http.ResponseWriter, r *http.Request, rest string) {
	repo, ok := strings.CutSuffix(rest, "/releases")
	if !ok || strings.Count(repo, "/") != 1 {
		notFound(w, r, "Not Found")
		return
	}
	s.mu.Lock()
	rels, ok := s.fx.GitHub[repo]
	rels = append([]Release(nil), rels...)
	s.mu.Unlock()
	if !ok {
		writeJSON(w, r, http.StatusNotFound, map[string]string{
			"message":           "Not Found",
			"documentation_url": "https://docs.github.com/rest/releases/releases#list-releases",
			"status":            "404",
		})
		return
	}
	page, _, last, lo, hi := paginate(r, len(rels), githubPerPage)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	apiBase := scheme + "://" + r.Host
	out := make([]ghRelease, 0, hi-lo)
	for _, rel := range rels[lo:hi] {
		out = append(out, githubRelease(apiBase, repo, rel))
	}
	if l := linkHeader(r, page, last); l != "" {
		w.Header().Set("Link", l)
	}
	w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	w.Header().Set("X-GitHub-Media-Type", "github.v3; format=json")
	s.writePage(w, r, out, false)
}
