package sbom

import (
	"net/url"
	"sort"
	"strings"
)

// Kind is the ecosystem a Package belongs to; it is also its purl type.
type Kind string

// The kinds the default cataloguer finds.
const (
	Deb   Kind = "deb"    // dpkg database entry
	Apk   Kind = "apk"    // apk installed database entry
	GoMod Kind = "golang" // Go module compiled into a binary
	NPM   Kind = "npm"    // package.json under node_modules
)

// Package is one catalogued package and where in the image it was found.
type Package struct {
	Kind    Kind
	Name    string // Go: the module path; npm: "@scope/name" or "name"
	Version string // as the ecosystem writes it; a Go main module without VCS info is "(devel)"
	Arch    string // deb, apk
	Source  string // deb: the source package; apk: the origin
	License string // as declared by the package; "" when unknown
	// GoVersion is the toolchain a Go binary was built with ("go1.26.8").
	GoVersion string
	// Main is true for the main module of a Go binary.
	Main bool
	// Location is the absolute path of the file it was found in: the package database, the
	// Go binary or the package.json.
	Location string
}

// PURL is the package URL (https://github.com/package-url/purl-spec) of p.
func (p Package) PURL() string {
	var namespace, name string
	var quals [][2]string
	switch p.Kind {
	case Deb:
		namespace, name = "debian", p.Name
		quals = append(quals, [2]string{"arch", p.Arch})
	case Apk:
		namespace, name = "alpine", p.Name
		quals = append(quals, [2]string{"arch", p.Arch})
	case GoMod, NPM:
		if i := strings.LastIndex(p.Name, "/"); i >= 0 {
			namespace, name = p.Name[:i], p.Name[i+1:]
		} else {
			name = p.Name
		}
	default:
		name = p.Name
	}
	var b strings.Builder
	b.WriteString("pkg:")
	b.WriteString(string(p.Kind))
	b.WriteString("/")
	for _, seg := range strings.Split(namespace, "/") {
		if seg != "" {
			b.WriteString(escape(seg))
			b.WriteString("/")
		}
	}
	b.WriteString(escape(name))
	if p.Version != "" {
		b.WriteString("@")
		b.WriteString(escape(p.Version))
	}
	sep := "?"
	for _, q := range quals {
		if q[1] == "" {
			continue
		}
		b.WriteString(sep + q[0] + "=" + url.QueryEscape(q[1]))
		sep = "&"
	}
	return b.String()
}

// escape percent-encodes one purl segment: ':' and '+' stay as they are (Debian versions such
// as 1:1.35.0-4+b1), '@' is encoded (npm scopes: %40scope).
func escape(s string) string {
	return strings.ReplaceAll(url.PathEscape(s), "@", "%40")
}

// sortPackages orders packages deterministically: by kind, name, version, location.
func sortPackages(pkgs []Package) {
	sort.SliceStable(pkgs, func(i, j int) bool {
		a, b := pkgs[i], pkgs[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Location < b.Location
	})
}
