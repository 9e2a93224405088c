package config

import (
	"fmt"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"
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

// sampleData is what templates are trial-run with when the config loads.
var sampleData = Data{Version: "1.0.0", Tag: "v1.0.0", Arch: "amd64", OS: "linux", Platform: "linux/amd64"}

// RefFunc resolves {{ref "component"}} to a digest reference of that component's image of the
// same version.
type RefFunc func(component string) (string, error)

func funcs(ref RefFunc) template.FuncMap {
	return template.FuncMap{"ref": ref}
}

// MaxRendered bounds what one template may render: build args and URLs are short, and a
// bound keeps a runaway template from eating memory.
const MaxRendered = 64 << 10

// ParseTemplate parses text as an archmirror template. Templates substitute values; loops and
// sub-templates are rejected ({{range 100000000}} would otherwise stall every load).
func ParseTemplate(text string) (*Template, error) {
	t, err := template.New("").Option("missingkey=error").Funcs(funcs(nil)).Parse(text)
	if err != nil {
		return nil, cleanTemplateErr(err)
	}
	for _, tt := range t.Templates() {
		if tt.Name() != "" {
			return nil, fmt.Errorf("template: {{define}} and {{block}} are not supported")
		}
		if err := checkNodes(tt.Root); err != nil {
			return nil, err
		}
	}
	return &Template{Text: text, tmpl: t}, nil
}

func checkNodes(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNodes(c); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		return fmt.Errorf("template: {{range}} is not supported: templates substitute values")
	case *parse.TemplateNode:
		return fmt.Errorf("template: {{template}} is not supported")
	case *parse.IfNode:
		return checkBranch(&n.BranchNode)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode)
	}
	return nil
}

func checkBranch(b *parse.BranchNode) error {
	if err := checkNodes(b.List); err != nil {
		return err
	}
	if b.ElseList != nil {
		return checkNodes(b.ElseList)
	}
	return nil
}

// limitWriter fails once more than n bytes were written, which stops the template.
type limitWriter struct {
	b strings.Builder
	n int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if w.b.Len()+len(p) > w.n {
		return 0, fmt.Errorf("renders more than %d bytes", w.n)
	}
	return w.b.Write(p)
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
	w := &limitWriter{n: MaxRendered}
	if err := tm.Funcs(funcs(ref)).Execute(w, d); err != nil {
		return "", cleanTemplateErr(err)
	}
	return w.b.String(), nil
}

// Refs returns the components named by {{ref "..."}} in the template, sorted.
func (t *Template) Refs() ([]string, error) {
	if t == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	_, err := t.Render(sampleData,
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
