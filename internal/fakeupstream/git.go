package fakeupstream

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// GitTag is one tagged commit of a repository that the fake upstream serves: the commit's
// whole tree.
type GitTag struct {
	Name  string
	Files map[string]GitFile // slash-separated path in the repository → entry
}

// GitFile is one entry of a commit's tree: a file, or with Link set a symlink (whose target
// can be anything, "/etc" or "../../.." included: it is stored, never followed).
type GitFile struct {
	Body []byte
	Exec bool   // mode 100755 instead of 100644
	Link string // a symlink's target; Body and Exec are ignored
}

// gitDate fixes the commits' dates, so the same tags make the same commit IDs.
const gitDate = "2024-01-01T00:00:00Z"

// WriteGitRepo creates a bare repository at dir (which must not exist or be empty) with one
// commit per tag, each the parent of the next, each tagged (a lightweight tag) with its Name;
// the branch main points at the last. Trees are written with git's plumbing straight into the
// object store: nothing is checked out, so a hostile symlink in a tree touches no file. It
// needs the git command.
func WriteGitRepo(ctx context.Context, dir string, tags []GitTag) error {
	if err := runGit(ctx, "", nil, nil, nil, "init", "--bare", "--quiet", "--initial-branch=main", dir); err != nil {
		return err
	}
	index := filepath.Join(dir, "fakeupstream.index")
	defer os.Remove(index)
	env := []string{"GIT_INDEX_FILE=" + index}
	parent := ""
	for _, tag := range tags {
		if err := os.Remove(index); err != nil && !os.IsNotExist(err) {
			return err
		}
		paths := make([]string, 0, len(tag.Files))
		for p := range tag.Files {
			paths = append(paths, p)
		}
		slices.Sort(paths)
		for _, p := range paths {
			f := tag.Files[p]
			body, mode := f.Body, "100644"
			switch {
			case f.Link != "":
				body, mode = []byte(f.Link), "120000"
			case f.Exec:
				mode = "100755"
			}
			var sha bytes.Buffer
			if err := runGit(ctx, dir, env, bytes.NewReader(body), &sha, "hash-object", "-w", "--stdin", "--no-filters"); err != nil {
				return err
			}
			if err := runGit(ctx, dir, env, nil, nil, "update-index", "--add", "--cacheinfo", mode+","+strings.TrimSpace(sha.String())+","+p); err != nil {
				return fmt.Errorf("tag %s: %w", tag.Name, err)
			}
		}
		var tree, commit bytes.Buffer
		if err := runGit(ctx, dir, env, nil, &tree, "write-tree"); err != nil {
			return err
		}
		args := []string{"commit-tree", strings.TrimSpace(tree.String()), "-m", tag.Name}
		if parent != "" {
			args = append(args, "-p", parent)
		}
		if err := runGit(ctx, dir, env, nil, &commit, args...); err != nil {
			return err
		}
		parent = strings.TrimSpace(commit.String())
		if err := runGit(ctx, dir, env, nil, nil, "update-ref", "refs/tags/"+tag.Name, parent); err != nil {
			return err
		}
	}
	if parent == "" {
		return nil
	}
	return runGit(ctx, dir, env, nil, nil, "update-ref", "refs/heads/main", parent)
}

// runGit runs git in the bare repository gitDir ("" for none), with stdin and out (each may
// be nil) as its standard input and output.
func runGit(ctx context.Context, gitDir string, env []string, stdin io.Reader, out *bytes.Buffer, args ...string) error {
	if gitDir != "" {
		args = append([]string{"--git-dir=" + gitDir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(append(os.Environ(), gitEnv...), env...)
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stderr = stdin, &stderr
	if out != nil {
		cmd.Stdout = out
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("fakeupstream: git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// gitEnv keeps the machine's and the user's git configuration out, and fixes the identity
// and dates of commits.
var gitEnv = []string{
	"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
	"GIT_AUTHOR_NAME=fakeupstream", "GIT_AUTHOR_EMAIL=fakeupstream@example.invalid", "GIT_AUTHOR_DATE=" + gitDate,
	"GIT_COMMITTER_NAME=fakeupstream", "GIT_COMMITTER_EMAIL=fakeupstream@example.invalid", "GIT_COMMITTER_DATE=" + gitDate,
}

// ServeGit serves the bare repository at dir (see WriteGitRepo) as /git/NAME.git over git's
// smart HTTP protocol (git http-backend, as a CGI), which is how BuildKit and git clone fetch
// an https:// context: the clone URL is the server's URL + "/git/" + name + ".git". It needs
// the git command. Serving another dir under the same name replaces it.
func (s *Server) ServeGit(name, dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.git == nil {
		s.git = map[string]http.Handler{}
	}
	prefix := "/git/" + name + ".git"
	s.git[prefix] = &cgi.Handler{
		Path: gitPath(),
		Args: []string{"http-backend"},
		Root: prefix,
		// PATH_INFO is what follows the prefix ("/info/refs"): the repository is the
		// project root itself.
		Env: append([]string{"GIT_PROJECT_ROOT=" + dir, "GIT_HTTP_EXPORT_ALL=1"}, gitEnv...),
	}
}

func gitPath() string {
	if p, err := exec.LookPath("git"); err == nil {
		return p
	}
	return "git"
}

// serveGit answers /git/NAME.git/… for a repository given to ServeGit.
func (s *Server) serveGit(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var h http.Handler
	for prefix, gh := range s.git {
		if r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/") {
			h = gh
			break
		}
	}
	s.mu.Unlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}
