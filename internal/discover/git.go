package discover

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Git lists a repository's tags with `git ls-remote`: any URL git understands, or a local path.
// It knows no dates, so a git source's versions are ordered by semver.
type Git struct {
	remote  string
	name    string // for errors: the remote without credentials
	header  time.Duration
	request time.Duration
}

// NewGit returns the tags source of a git remote URL or local path. WithTimeouts bounds it:
// git gives up on a transfer that stalls for the header timeout (http.lowSpeedTime), and
// ls-remote is killed, with its helpers, after the request timeout.
func NewGit(urlOrPath string, opts ...Option) *Git {
	o := newOptions(opts)
	return &Git{remote: urlOrPath, name: "git " + redactURL(urlOrPath), header: o.headerTimeout, request: o.requestTimeout}
}

// validGitRemote reports whether remote can be given to git ls-remote: set, and not an option.
func validGitRemote(remote string) bool { return remote != "" && !strings.HasPrefix(remote, "-") }

// String is "git URL", without credentials.
func (g *Git) String() string { return g.name }

// Releases runs `git ls-remote --tags --refs -- URL`. No prompts: a remote that needs
// credentials git does not already have fails instead of waiting for a terminal.
func (g *Git) Releases(ctx context.Context) ([]Release, error) {
	if !validGitRemote(g.remote) {
		return nil, fmt.Errorf("%s: want a URL or path that does not start with '-'", g.name)
	}
	cause := fmt.Errorf("%s: ls-remote: no answer within %s", g.name, g.request)
	ctx, cancel := context.WithTimeoutCause(ctx, g.request, cause)
	defer cancel()
	// http.lowSpeedTime is whole seconds: a stall of the header timeout, rounded up.
	stall := max(1, int((g.header+time.Second-1)/time.Second))
	cmd := exec.CommandContext(ctx, "git", "-c", "http.lowSpeedLimit=1", "-c", "http.lowSpeedTime="+strconv.Itoa(stall),
		"ls-remote", "--tags", "--refs", "--", g.remote)
	// git runs the transport in a helper (git-remote-https, ssh) that holds the output pipes:
	// the whole process group goes when the deadline does, and Wait gives up on the pipes
	// soon after.
	killGroup(cmd)
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0",
		"GCM_INTERACTIVE=never",
		// No ext:: or fd:: transports: a remote string must never become a command.
		"GIT_ALLOW_PROTOCOL=file:git:http:https:ssh",
	)
	if os.Getenv("GIT_SSH_COMMAND") == "" {
		cmd.Env = append(cmd.Env, "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	}
	var stdout, stderr limitedBuffer
	stdout.limit, stderr.limit = maxBody, 4<<10
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if context.Cause(ctx) == cause {
			return nil, cause
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: ls-remote: %w", g.name, ctx.Err())
		}
		msg := strings.TrimSpace(g.redact(stderr.String()))
		if msg != "" {
			return nil, fmt.Errorf("%s: ls-remote: %w: %s", g.name, err, msg)
		}
		return nil, fmt.Errorf("%s: ls-remote: %w", g.name, err)
	}
	if stdout.overflow {
		return nil, fmt.Errorf("%s: ls-remote: output larger than %d MiB", g.name, maxBody>>20)
	}
	return parseLsRemote(stdout.Bytes()), nil
}

// parseLsRemote reads "sha\trefs/tags/NAME" lines; anything else is ignored.
func parseLsRemote(out []byte) []Release {
	var rs []Release
	for _, line := range bytes.Split(out, []byte("\n")) {
		sha, ref, ok := strings.Cut(strings.TrimRight(string(line), "\r"), "\t")
		if !ok {
			continue
		}
		tag, ok := strings.CutPrefix(ref, "refs/tags/")
		if !ok || tag == "" || strings.HasSuffix(tag, "^{}") {
			continue
		}
		rs = append(rs, Release{Tag: tag, Commit: sha})
	}
	return rs
}

// redact removes the remote's credentials from git's messages.
func (g *Git) redact(s string) string {
	u, err := url.Parse(g.remote)
	if err != nil || u.User == nil {
		return s
	}
	s = strings.ReplaceAll(s, g.remote, redactURL(g.remote))
	if p, ok := u.User.Password(); ok && p != "" {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	if n := u.User.Username(); len(n) >= 8 { // a token passed as the user name
		s = strings.ReplaceAll(s, n, "xxxxx")
	}
	return s
}

// redactURL drops the userinfo (a user name may be a token) of a URL; other strings are
// returned as they are.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil || u.Host == "" {
		return s
	}
	u.User = nil
	return u.String()
}

// limitedBuffer keeps the first limit bytes written and notes the overflow.
type limitedBuffer struct {
	bytes.Buffer
	limit    int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.limit - b.Len(); room < len(p) {
		b.overflow = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}
