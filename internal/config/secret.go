package config

import (
	"fmt"
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
