package redact

import (
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	const ghp = "ghp_abcdefghijklmnopqrstuvwxyz0123456789"
	const glpat = "glpat-abcdefghij_KLMNOPQRST"
	tests := []struct {
		name, value, want string
	}{
		{"VERSION", "1.2.3", "1.2.3"},
		{"GITHUB_TOKEN", ghp, Redacted},
		{"npm_token", "abc", Redacted},
		{"DB_PASSWORD", "hunter2", Redacted},
		{"MYSQL_PASSWD", "hunter2", Redacted},
		{"ClientSecret", "s", Redacted},
		{"SIGNING_KEY", strings.Repeat("QUJD", 20), Redacted},
		{"API_KEY_HEX", strings.Repeat("ab", 40), Redacted},
		{"AWS_CREDENTIALS", "x", Redacted},
		{"BASIC_AUTH", "user:pw", Redacted},
		{"EMPTY_TOKEN", "", ""},
		{"REPO", "https://bob:hunter2@git.example/repo.git", "https://[redacted]@git.example/repo.git"},
		{"PIP_OPTS", "--index-url https://u:p%40ss@pypi.example/simple --trusted-host x", "--index-url https://[redacted]@pypi.example/simple --trusted-host x"},
		{"REPO2", "https://" + ghp + "@github.com/a/b", "https://[redacted]@github.com/a/b"},
		{"CLONE", "https://oauth2:" + glpat + "@gitlab.com/g/p.git", "https://[redacted]@gitlab.com/g/p.git"},
		{"HEADER", "Bearer " + glpat, "Bearer [redacted]"},
		{"PORT_URL", "https://host:8443/path@v1", "https://host:8443/path@v1"},
		{"SSH", "ssh://git@github.com/a/b.git", "ssh://[redacted]@github.com/a/b.git"},
		// a token of no known format as the user name
		{"CONTEXT_URL", "https://0123456789abcdef0123456789abcdef01234567@git.example/r.git#v1", "https://[redacted]@git.example/r.git#v1"},
		{"USER_IN_TEXT", "clone git+https://deploy-k3y@git.example/r and more", "clone git+https://[redacted]@git.example/r and more"},
		{"AT_IN_QUERY", "https://host/path?u=a@b", "https://host/path?u=a@b"},
		{"DIGEST", "sha256:" + strings.Repeat("f", 64), "sha256:" + strings.Repeat("f", 64)},
	}
	in := map[string]string{}
	for _, tt := range tests {
		in[tt.name] = tt.value
	}
	got := Args(in)
	for _, tt := range tests {
		if got[tt.name] != tt.want {
			t.Errorf("%s=%q: got %q, want %q", tt.name, tt.value, got[tt.name], tt.want)
		}
		if in[tt.name] != tt.value {
			t.Errorf("%s: input map modified", tt.name)
		}
	}
	if len(got) != len(in) {
		t.Errorf("Args changed the key set: %d keys, want %d", len(got), len(in))
	}
	if Args(nil) != nil {
		t.Error("Args(nil) != nil")
	}
}
