package discover

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/fakeupstream"
)

func TestNew(t *testing.T) {
	s, srv := fake(t, fakeupstream.Fixture{GitHub: map[string][]fakeupstream.Release{"acme/app": manyReleases(2)}})
	_ = srv
	var auth string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		s.ServeHTTP(w, r)
	}))
	defer api.Close()

	t.Setenv("ARCHMIRROR_TEST_GH_TOKEN", "ghp_from_secret")
	src, err := New(config.Source{GitHub: "acme/app", API: api.URL, Token: config.Token{Secret: config.Secret{Ref: "env://ARCHMIRROR_TEST_GH_TOKEN"}}}, hermetic()[1:]...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.Releases(context.Background()); err != nil {
		t.Fatal(err)
	}
	if auth != "Bearer ghp_from_secret" {
		t.Errorf("Authorization %q", auth)
	}

	tests := []struct {
		src  config.Source
		kind string
		err  string
	}{
		{config.Source{GitLab: "a/b", Host: "framagit.org"}, "gitlab framagit.org a/b", ""},
		{config.Source{Git: "https://example.com/x.git"}, "git https://example.com/x.git", ""},
		{config.Source{Registry: "docker.io/library/nginx"}, "registry docker.io/library/nginx", ""},
		{config.Source{}, "", "needs one of"},
		{config.Source{GitHub: "a/b", Token: config.Token{Secret: config.Secret{Ref: "env://ARCHMIRROR_TEST_UNSET_TOKEN"}}}, "", "github source: token: secret env://ARCHMIRROR_TEST_UNSET_TOKEN"},
	}
	for _, tt := range tests {
		src, err := New(tt.src)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := src.(interface{ String() string }).String(); got != tt.kind {
			t.Errorf("source %q, want %q", got, tt.kind)
		}
	}
}
