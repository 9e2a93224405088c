package fakeupstream

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// glCommit is GitLab's commit object as tags embed it.
type glCommit struct {
	ID               string            `json:"id"`
	ShortID          string            `json:"short_id"`
	CreatedAt        string            `json:"created_at"`
	ParentIDs        []string          `json:"parent_ids"`
	Title            string            `json:"title"`
	Message          string            `json:"message"`
	AuthorName       string            `json:"author_name"`
	AuthorEmail      string            `json:"author_email"`
	AuthoredDate     string            `json:"authored_date"`
	CommitterName    string            `json:"committer_name"`
	CommitterEmail   string            `json:"committer_email"`
	CommittedDate    string            `json:"committed_date"`
	Trailers         map[string]string `json:"trailers"`
	ExtendedTrailers map[string]any    `json:"extended_trailers"`
	WebURL           string            `json:"web_url"`
}

type glRelease struct {
	TagName     string `json:"tag_name"`
	Description string `json:"description"`
}

// glTag is GitLab's tag object, fields in the API's order.
type glTag struct {
	Name      string     `json:"name"`
	Message   any        `json:"message"`
	Target    string     `json:"target"`
	Commit    glCommit   `json:"commit"`
	Release   *glRelease `json:"release"`
	Protected bool       `json:"protected"`
	CreatedAt any        `json:"created_at"`
}

// gitlabTime is GitLab's timestamp format: milliseconds and a numeric offset.
func gitlabTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

func gitlabTag(host, project string, t Tag) glTag {
	commit := t.Commit
	if commit == "" {
		commit = hexID(project + "@" + t.Name)
	}
	committed := t.Committed
	if committed.IsZero() {
		committed = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	title := t.CommitBody
	if title == "" {
		title = "Release " + t.Name
	}
	out := glTag{
		Name:   t.Name,
		Target: commit,
		Commit: glCommit{
			ID: commit, ShortID: commit[:min(8, len(commit))], CreatedAt: gitlabTime(committed),
			ParentIDs: []string{hexID(commit)}, Title: title, Message: title + "\n",
			AuthorName: "Framasoft", AuthorEmail: "contact@framasoft.org", AuthoredDate: gitlabTime(committed),
			CommitterName: "Framasoft", CommitterEmail: "contact@framasoft.org", CommittedDate: gitlabTime(committed),
			Trailers: map[string]string{}, ExtendedTrailers: map[string]any{},
			WebURL: "https://" + host + "/" + project + "/-/commit/" + commit,
		},
		Protected: t.Protected,
		CreatedAt: nil,
		Message:   nil,
	}
	if !t.Created.IsZero() {
		out.CreatedAt = gitlabTime(t.Created)
		out.Message = t.Message // annotated tag
		out.Target = hexID("tag-object " + t.Name)
	}
	if t.Release {
		out.Release = &glRelease{TagName: t.Name, Description: "Release " + t.Name}
	}
	return out
}

// serveTags answers GET /api/v4/projects/{id}/repository/tags and .../tags/{tag}, where id is
// the URL-encoded project path (group%2Fproject) as GitLab requires.
func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, rest string) {
	escID, sub, _ := strings.Cut(rest, "/")
	project, err := url.PathUnescape(escID)
	if err != nil {
		notFound(w, r, "404 Project Not Found")
		return
	}
	s.mu.Lock()
	tags, ok := s.fx.GitLab[project]
	tags = append([]Tag(nil), tags...)
	s.mu.Unlock()
	if !ok {
		notFound(w, r, "404 Project Not Found")
		return
	}
	host := r.Host
	switch {
	case sub == "repository/tags":
	case strings.HasPrefix(sub, "repository/tags/"):
		name, err := url.PathUnescape(strings.TrimPrefix(sub, "repository/tags/"))
		if err != nil {
			notFound(w, r, "404 Tag Not Found")
			return
		}
		for _, t := range tags {
			if t.Name == name {
				s.writePage(w, r, gitlabTag(host, project, t), true)
				return
			}
		}
		notFound(w, r, "404 Tag Not Found")
		return
	default:
		notFound(w, r, "404 Not Found")
		return
	}
	page, perPage, last, lo, hi := paginate(r, len(tags), gitlabPerPage)
	out := make([]glTag, 0, hi-lo)
	for _, t := range tags[lo:hi] {
		out = append(out, gitlabTag(host, project, t))
	}
	h := w.Header()
	h.Set("X-Page", strconv.Itoa(page))
	h.Set("X-Per-Page", strconv.Itoa(perPage))
	h.Set("X-Total", strconv.Itoa(len(tags)))
	h.Set("X-Total-Pages", strconv.Itoa(last))
	h.Set("X-Next-Page", "")
	if page < last {
		h.Set("X-Next-Page", strconv.Itoa(page+1))
	}
	h.Set("X-Prev-Page", "")
	if page > 1 {
		h.Set("X-Prev-Page", strconv.Itoa(page-1))
	}
	if l := linkHeader(r, page, last); l != "" {
		h.Set("Link", l)
	}
	s.writePage(w, r, out, true)
}
