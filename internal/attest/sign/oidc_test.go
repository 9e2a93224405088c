package sign

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAmbientIDToken(t *testing.T) {
	const reqTok = "request-token-secret"
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+reqTok || r.URL.Query().Get("audience") != Audience ||
			r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte(`{"count":1,"value":"gh-oidc-token"}`))
	}))
	defer gh.Close()

	t.Run("explicit env wins", func(t *testing.T) {
		t.Setenv(IDTokenEnv, " env-token\n")
		t.Setenv(GitHubTokenURLEnv, gh.URL+"/?api-version=2.0")
		t.Setenv(GitHubTokenRequestEnv, reqTok)
		got, err := AmbientIDToken(nil)(context.Background())
		if err != nil || got != "env-token" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("github actions", func(t *testing.T) {
		t.Setenv(IDTokenEnv, "")
		t.Setenv(GitHubTokenURLEnv, gh.URL+"/?api-version=2.0")
		t.Setenv(GitHubTokenRequestEnv, reqTok)
		got, err := AmbientIDToken(gh.Client())(context.Background())
		if err != nil || got != "gh-oidc-token" {
			t.Fatalf("got %q, %v", got, err)
		}
	})
	t.Run("github refuses", func(t *testing.T) {
		t.Setenv(IDTokenEnv, "")
		t.Setenv(GitHubTokenURLEnv, gh.URL+"/?api-version=1.0")
		t.Setenv(GitHubTokenRequestEnv, reqTok)
		_, err := AmbientIDToken(gh.Client())(context.Background())
		if err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), reqTok) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unreachable endpoint keeps the URL out", func(t *testing.T) {
		t.Setenv(IDTokenEnv, "")
		t.Setenv(GitHubTokenURLEnv, "http://127.0.0.1:1/?sig=query-secret")
		t.Setenv(GitHubTokenRequestEnv, reqTok)
		_, err := AmbientIDToken(nil)(context.Background())
		if err == nil || strings.Contains(err.Error(), "query-secret") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("nothing configured", func(t *testing.T) {
		t.Setenv(IDTokenEnv, "")
		t.Setenv(GitHubTokenURLEnv, "")
		t.Setenv(GitHubTokenRequestEnv, "")
		_, err := AmbientIDToken(nil)(context.Background())
		if err == nil || !strings.Contains(err.Error(), IDTokenEnv) {
			t.Fatalf("err = %v", err)
		}
	})
}
