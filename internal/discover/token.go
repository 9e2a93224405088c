package discover

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/archmirror/archmirror/internal/config"
)

// envToken names the environment variable whose token goes to origin (scheme://host), "" for
// none: $GITHUB_TOKEN to https://api.github.com, $GITLAB_TOKEN to https://gitlab.com, and to
// nothing else — not GitHub Enterprise, not another GitLab, not plain HTTP.
func envToken(origin *url.URL) string {
	if origin == nil || !strings.EqualFold(origin.Scheme, "https") || (origin.Port() != "" && origin.Port() != "443") {
		return ""
	}
	switch strings.ToLower(origin.Hostname()) {
	case "api.github.com":
		return "GITHUB_TOKEN"
	case "gitlab.com":
		return "GITLAB_TOKEN"
	}
	return ""
}

// tokenFor is the one rule of which token goes to an API origin, for the sources and the
// gitlab-tag gate alike. own is the token given for this source (WithToken, the config's
// token:), nil when none was: a given token goes to the source's own API host and "" is none
// at all; without one, the origin gets its environment token (envToken), if any. A token never
// goes over plain HTTP but to a loopback address: asking for that is an error.
func tokenFor(origin *url.URL, own *string) (string, error) {
	var token string
	switch {
	case own != nil:
		token = *own
	case envToken(origin) != "":
		token = os.Getenv(envToken(origin))
	}
	if token != "" && !strings.EqualFold(origin.Scheme, "https") && !config.IsLoopback(origin.Host) {
		return "", fmt.Errorf("refusing to send the token over plain HTTP to %s: use https (plain HTTP carries a token to a loopback address only)", origin.Host)
	}
	return token, nil
}

// ownToken is the source's own token from the options, nil when it has none.
func (o options) ownToken() *string {
	if !o.tokenSet {
		return nil
	}
	t := o.token
	return &t
}

// gateToken is what a gate may send: never a source's own token (a gate's host is not the
// source's), only environment tokens, unless WithToken("") turned those off.
func (o options) gateToken() *string {
	if o.tokenSet && o.token == "" {
		return &o.token
	}
	return nil
}
