package discover

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/fakeupstream"
)

// TestTokenFor is the one rule of which token goes where.
func TestTokenFor(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "ghp_env")
	t.Setenv("GITLAB_TOKEN", "glpat-env")
	own, none := "own", ""
	tests := []struct {
		origin  string
		own     *string
		want    string
		wantErr string
	}{
		{"https://api.github.com", nil, "ghp_env", ""},
		{"https://API.GitHub.com:443", nil, "ghp_env", ""},
		{"https://gitlab.com", nil, "glpat-env", ""},
		{"http://api.github.com", nil, "", ""}, // plain HTTP: no environment token
		{"https://api.github.com:8443", nil, "", ""},
		{"https://ghe.example", nil, "", ""},  // GitHub Enterprise: only its own token
		{"https://framagit.org", nil, "", ""}, // another GitLab: only its own token
		{"https://gitlab.com.evil.example", nil, "", ""},
		{"https://api.github.com", &none, "", ""}, // token: none
		{"https://gitlab.com", &none, "", ""},
		{"https://api.github.com", &own, "own", ""},
		{"https://ghe.example", &own, "own", ""},
		{"http://127.0.0.1:8080", &own, "own", ""},
		{"http://localhost:8080", &own, "own", ""},
		{"http://[::1]:8080", &own, "own", ""},
		{"http://127.0.0.1:8080", nil, "", ""},
		{"http://ghe.example", &own, "", "refusing to send the token over plain HTTP to ghe.example"},
		{"http://10.0.0.5:8080", &own, "", "refusing to send the token over plain HTTP to 10.0.0.5:8080"},
		{"http://ghe.example", &none, "", ""},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.origin)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tokenFor(u, tt.own)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "own") {
				t.Errorf("%s: err = %v, want %q", tt.origin, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s own=%v: %q, %v; want %q", tt.origin, tt.own != nil, got, err, tt.want)
		}
	}
}

// headerSeen is an upstream that records one header of every request.
type headerSeen struct {
	name string
	next http.Handler
	mu   sync.Mutex
	seen []string
}

func (h *headerSeen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Get(h.name))
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

func (h *headerSeen) values() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.seen...)
}

// TestEnvTokensStayHome runs sources and gates end to end: api.github.com and gitlab.com are
// an httptest server (the client reroutes them), as are the other hosts.
func TestEnvTokensStayHome(t *testing.T) {
	t.Setenv("GITHUB_TOKEN", "ghp_env")
	t.Setenv("GITLAB_TOKEN", "glpat-env")
	t.Setenv("ARCHMIRROR_TEST_OWN_TOKEN", "own-token")
	fx := fakeupstream.Fixture{
		GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(2)},
		GitLab: map[string][]fakeupstream.Tag{mmProject: glTags(2)},
	}
	ownToken := config.Token{Secret: config.Secret{Ref: "env://ARCHMIRROR_TEST_OWN_TOKEN"}}
	tests := []struct {
		name    string
		src     config.Source
		tls     bool   // the upstream is an https server (for a source's own host)
		reroute bool   // the source names the real host; the client sends it to the test server
		header  string // what the upstream must see
		want    string
		wantErr string
	}{
		{name: "GITHUB_TOKEN to api.github.com", src: config.Source{GitHub: "acme/app"}, reroute: true, header: "Authorization", want: "Bearer ghp_env"},
		{name: "GITLAB_TOKEN to gitlab.com", src: config.Source{GitLab: mmProject, Host: "gitlab.com"}, reroute: true, header: "Private-Token", want: "glpat-env"},
		{name: "token: none to api.github.com", src: config.Source{GitHub: "acme/app", Token: config.Token{None: true}}, reroute: true, header: "Authorization"},
		{name: "token: none to gitlab.com", src: config.Source{GitLab: mmProject, Host: "gitlab.com", Token: config.Token{None: true}}, reroute: true, header: "Private-Token"},
		{name: "no GITHUB_TOKEN to GitHub Enterprise", src: config.Source{GitHub: "acme/app"}, tls: true, header: "Authorization"},
		{name: "no GITLAB_TOKEN to framagit.org", src: config.Source{GitLab: mmProject, Host: "framagit.org"}, reroute: true, header: "Private-Token"},
		{name: "no GITLAB_TOKEN to a self-hosted GitLab", src: config.Source{GitLab: mmProject}, tls: true, header: "Private-Token"},
		{name: "no env token over plain HTTP", src: config.Source{GitHub: "acme/app"}, header: "Authorization"},
		{name: "own token to GitHub Enterprise", src: config.Source{GitHub: "acme/app", Token: ownToken}, tls: true, header: "Authorization", want: "Bearer own-token"},
		{name: "own token to a self-hosted GitLab", src: config.Source{GitLab: mmProject, Token: ownToken}, tls: true, header: "Private-Token", want: "own-token"},
		{name: "own token over plain HTTP to loopback", src: config.Source{GitHub: "acme/app", Token: ownToken}, header: "Authorization", want: "Bearer own-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := &headerSeen{name: tt.header, next: fakeupstream.New(fx)}
			var srv *httptest.Server
			if tt.tls {
				srv = httptest.NewTLSServer(up)
			} else {
				srv = httptest.NewServer(up)
			}
			defer srv.Close()
			client := srv.Client()
			src := tt.src
			if tt.reroute {
				client = &http.Client{Transport: fakeupstream.Reroute(srv.URL, nil)}
			} else {
				src.API = srv.URL
			}
			l, _ := testLogger()
			s, err := New(src, WithHTTPClient(client), WithLogger(l))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Releases(context.Background()); err != nil {
				t.Fatal(err)
			}
			seen := up.values()
			if len(seen) == 0 {
				t.Fatal("the upstream saw no request")
			}
			for _, v := range seen {
				if v != tt.want {
					t.Errorf("%s: %q, want %q", tt.header, v, tt.want)
				}
			}
		})
	}

	t.Run("own token over plain HTTP elsewhere", func(t *testing.T) {
		up := &headerSeen{name: "Authorization", next: fakeupstream.New(fx)}
		srv := httptest.NewServer(up)
		defer srv.Close()
		s, err := New(config.Source{GitHub: "acme/app", API: "http://ghe.example/api/v3", Token: ownToken},
			WithHTTPClient(&http.Client{Transport: fakeupstream.Reroute(srv.URL, nil)}))
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Releases(context.Background())
		if err == nil || !strings.Contains(err.Error(), "github acme/app: refusing to send the token over plain HTTP to ghe.example") || strings.Contains(err.Error(), "own-token") {
			t.Errorf("err = %v", err)
		}
		if n := len(up.values()); n != 0 {
			t.Errorf("%d requests sent", n)
		}
	})

	t.Run("gitlab-tag gates", func(t *testing.T) {
		for _, tt := range []struct {
			host string
			opts []Option
			want string
		}{
			{"gitlab.com", nil, "glpat-env"},
			{"framagit.org", nil, ""},
			{"gitlab.com", []Option{WithToken("")}, ""},
			{"framagit.org", []Option{WithToken("a-source-token")}, ""}, // a source's own token is the source's
			{"gitlab.com", []Option{WithToken("a-source-token")}, "glpat-env"},
		} {
			up := &headerSeen{name: "Private-Token", next: fakeupstream.New(fakeupstream.Fixture{GitLab: map[string][]fakeupstream.Tag{mmProject: {{Name: "v1.0.0"}}}})}
			srv := httptest.NewServer(up)
			reqs := []config.Require{{GitLabTag: &config.GitLabTag{Host: tt.host, Project: mmProject, Tag: tmpl(t, "v{{.Version}}")}}}
			reason, err := NewGate(reqs, nil, append(tt.opts, WithHTTPClient(rerouted(srv)))...).Check(context.Background(), ver("1.0.0"))
			srv.Close()
			if reason != "" || err != nil {
				t.Fatalf("%s: %q, %v", tt.host, reason, err)
			}
			if seen := up.values(); len(seen) != 1 || seen[0] != tt.want {
				t.Errorf("%s %d options: PRIVATE-TOKEN %q, want %q", tt.host, len(tt.opts), seen, tt.want)
			}
		}
	})
}

// TestRedirectQuotesNothing: an API that redirects to another host (an internal service, as
// far as archmirror knows) gets an error naming both hosts and never the other's answer; a
// url gate follows the redirect (downloads do) and quotes neither body nor reason phrase.
func TestRedirectQuotesNothing(t *testing.T) {
	const secret = "INTERNAL-SECRET-0xdeadbeef"
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(secret + " and more"))
	}))
	defer internal.Close()
	internalHost := strings.TrimPrefix(internal.URL, "http://")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/latest/meta-data", http.StatusFound)
	}))
	defer api.Close()
	apiHost := strings.TrimPrefix(api.URL, "http://")

	for _, src := range []Source{
		NewGitHub("acme/app", hermetic(WithAPI(api.URL))...),
		NewGitLab("framagit.org", mmProject, hermetic(WithBaseURL(api.URL))...),
	} {
		_, err := src.Releases(context.Background())
		if err == nil || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "INTERNAL") {
			t.Fatalf("%s: err = %v", src, err)
		}
		if want := "redirect from " + apiHost + ` to "` + internalHost + `" refused`; !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v\nwant %q", src, err, want)
		}
	}

	// The gate: a redirect to a server whose status line carries the secret.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = http.ReadRequest(bufio.NewReader(c))
				_, _ = c.Write([]byte("HTTP/1.1 404 " + secret + "\r\nContent-Length: 26\r\nConnection: close\r\n\r\n" + secret))
			}()
		}
	}()
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://"+ln.Addr().String()+"/x", http.StatusFound)
	}))
	defer files.Close()
	gate := NewGate([]config.Require{{URL: tmpl(t, files.URL+"/v{{.Version}}")}}, nil, hermetic()...)
	reason, err := gate.Check(context.Background(), ver("1.0.0"))
	if err != nil || !strings.Contains(reason, "404 Not Found") || strings.Contains(reason, secret) {
		t.Errorf("reason %q, err %v: want a 404 without the server's words", reason, err)
	}
}
