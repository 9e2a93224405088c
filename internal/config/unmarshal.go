package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/archmirror/archmirror/internal/untrusted"
)

// UnmarshalYAML parses the template at load time, so a broken one is a config error.
func (t *Template) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fieldErr(n, "want a string (a template), got %s", describe(n))
	}
	p, err := ParseTemplate(n.Value)
	if err != nil {
		return fieldErr(n, "%v", err)
	}
	// Execute once with sample data: catches {{.Verison}} and wrong argument counts now,
	// not at build time.
	if _, err := p.Refs(); err != nil {
		return fieldErr(n, "%v", err)
	}
	*t = *p
	return nil
}

// UnmarshalYAML accepts "unpin-digests" or a one-key mapping (insert-after, replace).
func (p *Patch) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value != "unpin-digests" {
			return fieldErr(n, "unknown patch %s (known: unpin-digests, insert-after, replace)", untrusted.Quote(n.Value, 40))
		}
		*p = Patch{UnpinDigests: true}
		return nil
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return fieldErr(n, "a patch is one of unpin-digests, insert-after: {match, line}, replace: {match, with}")
		}
		type plain Patch
		var out plain
		if err := n.Decode(&out); err != nil {
			return err
		}
		switch {
		case out.InsertAfter != nil:
			re, err := compileField(n, "insert-after.match", out.InsertAfter.Match)
			if err != nil {
				return err
			}
			if out.InsertAfter.Line == "" {
				return fieldErr(n, "insert-after.line is required")
			}
			out.InsertAfter.MatchRE = re
		case out.Replace != nil:
			re, err := compileField(n, "replace.match", out.Replace.Match)
			if err != nil {
				return err
			}
			out.Replace.MatchRE = re
		default:
			return fieldErr(n, "a patch is one of unpin-digests, insert-after: {match, line}, replace: {match, with}")
		}
		*p = Patch(out)
		return nil
	}
	return fieldErr(n, "want a patch name or mapping, got %s", describe(n))
}

func compileField(n *yaml.Node, field, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, fieldErr(n, "%s is required", field)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fieldErr(n, "%s: bad regular expression: %v", field, err)
	}
	return re, nil
}

// UnmarshalYAML accepts an address or {addr, max, tls}.
func (nd *Node) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		*nd = Node{Addr: n.Value}
		return nil
	case yaml.MappingNode:
		type plain Node
		var p plain
		if err := n.Decode(&p); err != nil {
			return err
		}
		if p.Addr == "" {
			return fieldErr(n, "a node needs addr")
		}
		*nd = Node(p)
		return nil
	}
	return fieldErr(n, "want a BuildKit address or {addr, max, tls}, got %s", describe(n))
}

// UnmarshalYAML accepts one node or a list of them.
func (ns *Nodes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		var nd Node
		if err := nd.UnmarshalYAML(n); err != nil {
			return err
		}
		*ns = Nodes{nd}
		return nil
	}
	out := make(Nodes, len(n.Content))
	for i, c := range n.Content {
		if err := out[i].UnmarshalYAML(c); err != nil {
			return err
		}
	}
	*ns = out
	return nil
}

// UnmarshalYAML accepts "off" / false, or a mapping {key, password, keyless}.
func (s *Sign) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "off", "false", "none":
			*s = Sign{Off: true}
			return nil
		}
		return fieldErr(n, "want off, or a mapping {key: env://NAME} or {keyless: true}")
	}
	type plain Sign
	var out plain
	if err := n.Decode(&out); err != nil {
		return err
	}
	if out.Keyless && out.Key.IsSet() {
		return fieldErr(n, "key and keyless: true exclude each other")
	}
	if !out.Keyless && !out.Key.IsSet() {
		return fieldErr(n, "want key: env://NAME (or file:///path), keyless: true, or sign: off")
	}
	if !out.Keyless && (out.Fulcio != "" || out.Rekor != "" || out.IdentityToken.IsSet()) {
		return fieldErr(n, "fulcio, rekor and identity_token are for keyless: true")
	}
	if out.Keyless && out.Password.IsSet() {
		return fieldErr(n, "password is for a key")
	}
	for _, u := range []string{out.Fulcio, out.Rekor} {
		if u != "" && u != "off" && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return fieldErr(n, "%q: want an http(s) URL", u)
		}
	}
	if out.Fulcio == "off" {
		return fieldErr(n, "fulcio cannot be off: keyless signing needs a certificate")
	}
	*s = Sign(out)
	return nil
}

// String says how signing is configured, without any secret.
func (s Sign) String() string {
	switch {
	case s.Keyless:
		return "keyless"
	case s.Key.IsSet():
		return fmt.Sprintf("key %s", s.Key.Ref)
	}
	return "off"
}

// UnmarshalYAML accepts a Go duration ("30s", "2m", "1h30m") greater than zero.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fieldErr(n, "want a duration such as 30s or 2m, got %s", describe(n))
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil || v <= 0 {
		return fieldErr(n, "%s: want a duration greater than zero, such as 30s or 2m", untrusted.Quote(n.Value, 40))
	}
	d.Duration = v
	return nil
}
