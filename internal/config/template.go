package config

import (
	"fmt"
	"sort"
	"strings"
	"text/template"
)

// Data is what a template sees: {{.Version}} {{.Tag}} {{.Arch}} {{.OS}} {{.Variant}} {{.Platform}}.
// Every value here has been validated (an OCI tag, a parsed platform) before it gets here.
type Data struct {
	Version  string
	Tag      string
	Arch     string
	OS       string
	Variant  string
	Platform string
}

// RefFunc resolves {{ref "component"}} to a digest reference of that component's image of the
// same version.
type RefFunc func(component string) (string, error)

func funcs(ref RefFunc) template.FuncMap {
	return template.FuncMap{"ref": ref}
}

// ParseTemplate parses text as an archmirror template.
func ParseTemplate(text string) (*Template, error) {
	t, err := template.New("").Option("missingkey=error").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		return nil, cleanTemplateErr(err)
	}
	return &Template{Text: text, tmpl: t}, nil
}

// Render executes the template. ref may be nil when the template has no {{ref}}.
func (t *Template) Render(d Data, ref RefFunc) (string, error) {
	if t == nil {
		return "", nil
	}
	if ref == nil {
		ref = func(c string) (string, error) { return "", fmt.Errorf("ref %q: no component references here", c) }
	}
	tm, err := t.tmpl.Clone()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := tm.Funcs(funcs(ref)).Execute(&b, d); err != nil {
		return "", cleanTemplateErr(err)
	}
	return b.String(), nil
}

// Refs returns the components named by {{ref "..."}} in the template, sorted.
func (t *Template) Refs() ([]string, error) {
	if t == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	_, err := t.Render(Data{Version: "1.0.0", Tag: "v1.0.0", Arch: "amd64", OS: "linux", Platform: "linux/amd64"},
		func(c string) (string, error) { seen[c] = true; return "registry.invalid/x@sha256:0", nil })
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

// cleanTemplateErr drops text/template's `template: :1:2:` prefix noise down to the message.
func cleanTemplateErr(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "template: ")
	return fmt.Errorf("template: %s", msg)
}

// String is the template's source text.
func (t *Template) String() string {
	if t == nil {
		return ""
	}
	return t.Text
}
