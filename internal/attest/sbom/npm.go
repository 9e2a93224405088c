package sbom

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
)

// isNPMManifest reports whether name (absolute, cleaned) is the package.json of an installed
// npm package: node_modules/NAME/package.json or node_modules/@SCOPE/NAME/package.json. Other
// package.json files inside a package (nested "type": "module" markers, fixtures) are not.
func isNPMManifest(name string) bool {
	if path.Base(name) != "package.json" {
		return false
	}
	dir := path.Dir(name)
	parent := path.Dir(dir)
	if path.Base(parent) == "node_modules" {
		return !strings.HasPrefix(path.Base(dir), "@")
	}
	return strings.HasPrefix(path.Base(parent), "@") && path.Base(path.Dir(parent)) == "node_modules"
}

// ParseNPMPackage reads one package.json and returns its package, Location left empty. A
// package.json without a name or version is an error.
func ParseNPMPackage(r io.Reader) (Package, error) {
	var m struct {
		Name    string          `json:"name"`
		Version string          `json:"version"`
		License json.RawMessage `json:"license"`
		// the legacy form: "licenses": [{"type": "MIT", "url": …}]
		Licenses []struct {
			Type string `json:"type"`
		} `json:"licenses"`
	}
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return Package{}, err
	}
	if m.Name == "" || m.Version == "" {
		return Package{}, fmt.Errorf("package.json without name or version")
	}
	p := Package{Kind: NPM, Name: m.Name, Version: m.Version}
	var s string
	var obj struct {
		Type string `json:"type"`
	}
	switch {
	case len(m.License) == 0:
	case json.Unmarshal(m.License, &s) == nil:
		p.License = s
	case json.Unmarshal(m.License, &obj) == nil: // the legacy {"type": "MIT", "url": …}
		p.License = obj.Type
	}
	if p.License == "" && len(m.Licenses) > 0 {
		var types []string
		for _, l := range m.Licenses {
			if l.Type != "" {
				types = append(types, l.Type)
			}
		}
		if len(types) > 1 {
			p.License = "(" + strings.Join(types, " OR ") + ")"
		} else if len(types) == 1 {
			p.License = types[0]
		}
	}
	return p, nil
}
