package config

import (
	"fmt"
	"net"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// UnmarshalYAML accepts only references (env://NAME, file:///path): a secret written into the
// config itself would end up in backups, diffs and bug reports.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fieldErr(n, "want env://NAME or file:///path")
	}
	ref := n.Value
	switch {
	case ref == "":
	case strings.HasPrefix(ref, "env://"):
		if !envName.MatchString(strings.TrimPrefix(ref, "env://")) {
			return fieldErr(n, "env://NAME needs a variable name ([A-Za-z_][A-Za-z0-9_]*)")
		}
	case strings.HasPrefix(ref, "file://"):
		if !strings.HasPrefix(ref, "file:///") && !strings.HasPrefix(ref, "file://./") {
			return fieldErr(n, "file:// needs an absolute path (file:///run/secrets/x) or ./relative one (file://./x)")
		}
	default:
		// Never echo the value: it may be the secret itself.
		return fieldErr(n, "secrets must come from env://NAME or file:///path, not the config file itself")
	}
	s.Ref = ref
	return nil
}

// IsSet reports whether the config names a secret.
func (s Secret) IsSet() bool { return s.Ref != "" }

// Value reads the secret from where the config says it is. Errors name the reference, never
// the value.
func (s Secret) Value() (string, error) {
	switch {
	case s.Ref == "":
		return "", nil
	case strings.HasPrefix(s.Ref, "env://"):
		name := strings.TrimPrefix(s.Ref, "env://")
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("secret %s: environment variable %s is not set", s.Ref, name)
		}
		return v, nil
	case strings.HasPrefix(s.Ref, "file://"):
		path := strings.TrimPrefix(s.Ref, "file://")
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("secret %s: %w", s.Ref, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return "", fmt.Errorf("secret: unsupported reference")
}

// String prints the reference, never the value.
func (s Secret) String() string { return s.Ref }

// MarshalJSON prints the reference, never the value.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf("%q", s.Ref)), nil }

// TokenNone is how a source says it sends no API token at all: `token: none`.
const TokenNone = "none"

// Token is a source's API token: a secret reference (env://NAME, file:///path), or `none` for
// no token at all, not even $GITHUB_TOKEN / $GITLAB_TOKEN. Unset (or ""), the source gets the
// environment token of its host when it has one (api.github.com, gitlab.com) and none
// elsewhere.
type Token struct {
	Secret
	None bool // token: none
}

// UnmarshalYAML accepts what a Secret accepts, and none.
func (t *Token) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == TokenNone {
		*t = Token{None: true}
		return nil
	}
	var s Secret
	if err := s.UnmarshalYAML(n); err != nil {
		if n.Kind == yaml.ScalarNode && !strings.HasPrefix(n.Value, "env://") && !strings.HasPrefix(n.Value, "file://") {
			// Never echo the value: it may be the token itself.
			return fieldErr(n, "want env://NAME, file:///path or none: a token never comes from the config file itself")
		}
		return err
	}
	*t = Token{Secret: s}
	return nil
}

// String prints the reference or none, never the value.
func (t Token) String() string {
	if t.None {
		return TokenNone
	}
	return t.Ref
}

// MarshalJSON prints the reference or none, never the value.
func (t Token) MarshalJSON() ([]byte, error) { return []byte(fmt.Sprintf("%q", t.String())), nil }

// IsLoopback reports whether host (a name or an address, with or without a port) is a
// loopback address or localhost: the only hosts a credential may reach over plain HTTP.
func IsLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
