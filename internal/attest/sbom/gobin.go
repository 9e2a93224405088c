package sbom

import (
	"debug/buildinfo"
	"io"
)

// elfMagic starts every ELF file.
var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

// ParseGoBinary reads the build information of a Go binary: its main module (Main set) and
// every module it depends on (a replaced module is reported as its replacement), all with the
// Go version, Location left empty. A file that is not a Go binary is an error.
func ParseGoBinary(r io.ReaderAt) ([]Package, error) {
	bi, err := buildinfo.Read(r)
	if err != nil {
		return nil, err
	}
	var pkgs []Package
	if bi.Main.Path != "" {
		pkgs = append(pkgs, Package{Kind: GoMod, Name: bi.Main.Path, Version: bi.Main.Version, GoVersion: bi.GoVersion, Main: true})
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		if d.Path == "" {
			continue
		}
		pkgs = append(pkgs, Package{Kind: GoMod, Name: d.Path, Version: d.Version, GoVersion: bi.GoVersion})
	}
	return pkgs, nil
}
