package sign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Environment variables keyless signing reads its identity token from.
const (
	// IDTokenEnv holds a ready OIDC token (what cosign reads too).
	IDTokenEnv = "SIGSTORE_ID_TOKEN"
	// GitHub Actions' ambient OIDC provider, present when the job has `id-token: write`.
	GitHubTokenURLEnv     = "ACTIONS_ID_TOKEN_REQUEST_URL"
	GitHubTokenRequestEnv = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
)

// Audience is the audience Sigstore's Fulcio expects in identity tokens.
const Audience = "sigstore"

// AmbientIDToken returns a token source for keyless signing: $SIGSTORE_ID_TOKEN when set, else
// GitHub Actions' OIDC provider when the job may request tokens, else an error saying what to
// set. The token is never logged or put in an error.
func AmbientIDToken(client *http.Client) func(ctx context.Context) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	return func(ctx context.Context) (string, error) {
		if tok := strings.TrimSpace(os.Getenv(IDTokenEnv)); tok != "" {
			return tok, nil
		}
		reqURL, reqTok := os.Getenv(GitHubTokenURLEnv), os.Getenv(GitHubTokenRequestEnv)
		if reqURL != "" && reqTok != "" {
			return githubIDToken(ctx, client, reqURL, reqTok)
		}
		return "", fmt.Errorf("no OIDC identity token: set %s, run in GitHub Actions with `permissions: id-token: write`, or configure sign.identity_token", IDTokenEnv)
	}
}

// githubIDToken asks GitHub Actions' token endpoint for a token with the sigstore audience.
func githubIDToken(ctx context.Context, client *http.Client, reqURL, reqTok string) (string, error) {
	u, err := url.Parse(reqURL)
	if err != nil {
		return "", fmt.Errorf("github oidc: %s is not a URL", GitHubTokenURLEnv)
	}
	q := u.Query()
	q.Set("audience", Audience)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("github oidc: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+reqTok)
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("github oidc: %s", redactURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", fmt.Errorf("github oidc: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("github oidc: token endpoint answered %s", resp.Status)
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Value == "" {
		return "", errors.New("github oidc: token endpoint answered without a token")
	}
	return out.Value, nil
}

// redactURLError drops the request URL (which may carry a query token) from a transport error.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}
