package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/archmirror/archmirror/internal/untrusted"
)

// FieldError is a problem with one field of the config, at one line.
type FieldError struct {
	Line  int
	Field string // dotted path: apps.outline.components.outline.args.BASE_IMAGE
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Msg)
}

// fieldErr is an error at node n; the path is filled in by whoever knows it.
func fieldErr(n *yaml.Node, format string, a ...any) *FieldError {
	return &FieldError{Line: n.Line, Msg: fmt.Sprintf(format, a...)}
}

var nodeType = reflect.TypeOf(yaml.Node{})

// checkShape walks node against the Go type t and reports every unknown field and every value
// of the wrong kind, with its line and dotted path. yaml.v3's KnownFields does the first half,
// but names Go types instead of config paths and stops inside custom unmarshalers.
func checkShape(n *yaml.Node, t reflect.Type, path string) []error {
	return (&shapeChecker{seen: map[aliasKey]bool{}}).check(n, t, path)
}

// shapeChecker walks each aliased node once per type: an alias bomb ("billion laughs") costs
// its size in the file, not its expansion.
type shapeChecker struct{ seen map[aliasKey]bool }

type aliasKey struct {
	n *yaml.Node
	t reflect.Type
}

func (s *shapeChecker) check(n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		k := aliasKey{n.Alias, t}
		if s.seen[k] || n.Alias == nil {
			return nil
		}
		s.seen[k] = true
		n = n.Alias
	}
	if t == nodeType || n.Tag == "!!null" {
		return nil
	}
	errs := s.kinds(n, t, path)
	if len(errs) == 0 && reflect.PointerTo(t).Implements(unmarshalerType) {
		// Run the type's own checks here, where the path is known; the real decode repeats them.
		if err := reflect.New(t).Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			errs = append(errs, withPath(err, n, path))
		}
	}
	return errs
}

func (s *shapeChecker) kinds(n *yaml.Node, t reflect.Type, path string) []error {
	kind := func(want string) []error {
		return []error{&FieldError{Line: n.Line, Field: path, Msg: fmt.Sprintf("want %s, got %s", want, describe(n))}}
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if reflect.PointerTo(t).Implements(unmarshalerType) {
				return nil // scalar forms (a template, "off", "unpin-digests") are checked by the type
			}
			return kind("a mapping")
		}
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				errs = append(errs, &FieldError{Line: k.Line, Field: join(path, k.Value),
					Msg: fmt.Sprintf("unknown field (known: %s)", strings.Join(sortedKeys(fields), ", "))})
				continue
			}
			errs = append(errs, s.check(v, f.Type, join(path, k.Value))...)
		}
		return errs
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return kind("a mapping")
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, s.check(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))...)
		}
		return errs
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if reflect.PointerTo(t).Implements(unmarshalerType) {
				return nil // a scalar form of a list (one builder address) is checked by the type
			}
			return kind("a list")
		}
		var errs []error
		for i, item := range n.Content {
			errs = append(errs, s.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			return kind("a string")
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
			return kind("a whole number")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
			return kind("true or false")
		}
	}
	return nil
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return untrusted.Quote(n.Value, 40)
}

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		out[tag] = f
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode checks node's shape against out's type, then decodes it. Errors carry path and line.
func decode(n *yaml.Node, out any, path string) []error {
	if errs := checkShape(n, reflect.TypeOf(out), path); len(errs) > 0 {
		return errs
	}
	if err := n.Decode(out); err != nil {
		return []error{withPath(err, n, path)}
	}
	return nil
}

// withPath gives an error from a custom unmarshaler or yaml itself a line and a path.
func withPath(err error, n *yaml.Node, path string) error {
	if fe, ok := err.(*FieldError); ok {
		if fe.Field == "" {
			fe.Field = path
		}
		return fe
	}
	if te, ok := err.(*yaml.TypeError); ok {
		return &FieldError{Line: n.Line, Field: path, Msg: strings.Join(te.Errors, "; ")}
	}
	return &FieldError{Line: n.Line, Field: path, Msg: err.Error()}
}
