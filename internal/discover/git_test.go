package discover

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func gitRepo(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com",
			"-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "init.defaultBranch=main"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "f")
	run("commit", "-q", "-m", "one")
	run("tag", "v1.0.0")
	run("tag", "v1.1.0")
	run("tag", "-a", "v2.0.0", "-m", "annotated")
	run("tag", "nightly")
	run("branch", "v9.9.9") // a branch is not a tag
	return dir
}

func TestGitLocalRepo(t *testing.T) {
	dir := gitRepo(t)
	got, err := NewGit(dir).Releases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, r := range got {
		tags = append(tags, r.Tag)
		if len(r.Commit) != 40 || !r.Published.IsZero() {
			t.Errorf("%s: commit %q, published %v", r.Tag, r.Commit, r.Published)
		}
	}
	sort.Strings(tags)
	if want := "nightly v1.0.0 v1.1.0 v2.0.0"; strings.Join(tags, " ") != want {
		t.Errorf("tags %v, want %s", tags, want)
	}

	// Through the pipeline: no dates, so semver order.
	res, err := Discover(context.Background(), NewGit(dir), app("git"), win(10, "published"), nil, hermetic()...)
	if err != nil {
		t.Fatal(err)
	}
	if got := versions(res); got != "2.0.0 1.1.0 1.0.0" || res.HighestStable != "2.0.0" {
		t.Errorf("versions %s, latest %s", got, res.HighestStable)
	}
}

func TestGitErrors(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	tests := []struct{ remote, want, never string }{
		{filepath.Join(t.TempDir(), "missing"), "ls-remote: exit status", ""},
		{"-uhack", "does not start with '-'", ""},
		{"", "want a URL or path", ""},
		{"https://user:hunter2secret@127.0.0.1:1/x.git", "git https://127.0.0.1:1/x.git: ls-remote", "hunter2secret"},
		{"ext::sh -c touch% /tmp/archmirror-pwned", "ls-remote", ""},
	}
	for _, tt := range tests {
		_, err := NewGit(tt.remote).Releases(context.Background())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.remote, err, tt.want)
		}
		if tt.never != "" && err != nil && strings.Contains(err.Error(), tt.never) {
			t.Errorf("%q: credentials in error: %v", tt.remote, err)
		}
	}
	if _, err := os.Stat("/tmp/archmirror-pwned"); err == nil {
		t.Errorf("ext:: transport ran a command")
	}
}

func TestParseLsRemote(t *testing.T) {
	out := "aaaa\trefs/tags/v1.0.0\nbbbb\trefs/heads/main\n\ngarbage\ncccc\trefs/tags/v2.0.0^{}\r\ndddd\trefs/tags/\n"
	got := parseLsRemote([]byte(out))
	if len(got) != 1 || got[0].Tag != "v1.0.0" || got[0].Commit != "aaaa" {
		t.Errorf("got %+v", got)
	}
}
