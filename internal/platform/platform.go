// Package platform parses and normalises OCI platforms ("linux/arm64") the one way archmirror
// uses everywhere: in the config, in indexes, in job IDs and in templates.
package platform

import (
	"fmt"
	"regexp"
	"strings"
)

// Platform is an OCI platform. arm64 never carries a variant (v8 is the only one and is
// dropped), so the same machine always has the same string.
type Platform struct {
	OS      string
	Arch    string
	Variant string
}

var part = regexp.MustCompile(`^[a-z0-9_]+$`)

// known lists the os/arch pairs Go and BuildKit can target; anything else is a typo.
var knownOS = map[string]bool{"linux": true, "windows": true, "freebsd": true, "darwin": true}
var knownArch = map[string]bool{
	"amd64": true, "arm64": true, "arm": true, "386": true, "ppc64le": true,
	"s390x": true, "riscv64": true, "mips64le": true, "loong64": true,
}

// Parse reads "os/arch[/variant]". It rejects unknown systems and architectures so that a
// typo in a config ("linux/amd46") is an error, not a platform that never builds.
func Parse(s string) (Platform, error) {
	fields := strings.Split(s, "/")
	if len(fields) < 2 || len(fields) > 3 {
		return Platform{}, fmt.Errorf("platform %q: want os/arch or os/arch/variant", s)
	}
	for _, f := range fields {
		if !part.MatchString(f) {
			return Platform{}, fmt.Errorf("platform %q: %q is not a valid os, architecture or variant", s, f)
		}
	}
	p := Platform{OS: fields[0], Arch: fields[1]}
	if len(fields) == 3 {
		p.Variant = fields[2]
	}
	if !knownOS[p.OS] {
		return Platform{}, fmt.Errorf("platform %q: unknown operating system %q", s, p.OS)
	}
	if !knownArch[p.Arch] {
		return Platform{}, fmt.Errorf("platform %q: unknown architecture %q", s, p.Arch)
	}
	return p.Normalize(), nil
}

// Normalize drops the arm64 "v8" variant, the way containerd's platform matcher treats
// linux/arm64 and linux/arm64/v8 as one.
func (p Platform) Normalize() Platform {
	if p.Arch == "arm64" && p.Variant == "v8" {
		p.Variant = ""
	}
	return p
}

// String is "os/arch" or "os/arch/variant".
func (p Platform) String() string {
	if p.Variant == "" {
		return p.OS + "/" + p.Arch
	}
	return p.OS + "/" + p.Arch + "/" + p.Variant
}

// Slug is the platform as one path- and ID-safe word: "linux-arm64", "linux-arm-v7".
func (p Platform) Slug() string { return strings.ReplaceAll(p.String(), "/", "-") }

// FromParts parses the parts of an OCI platform (an index entry's or an image config's):
// FromParts("linux", "arm64", "v8") is linux/arm64, normalised like Parse.
func FromParts(os, arch, variant string) (Platform, error) {
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return Parse(s)
}
