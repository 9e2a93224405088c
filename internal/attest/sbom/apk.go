package sbom

import (
	"fmt"
	"io"
)

// ParseApkInstalled reads apk's installed database (/lib/apk/db/installed) and returns its
// packages, Location left empty. A malformed file is an error naming the line.
func ParseApkInstalled(r io.Reader) ([]Package, error) {
	var (
		pkgs  []Package
		cur   Package
		start int
		seen  bool
	)
	flush := func() error {
		defer func() { cur, seen = Package{}, false }()
		if !seen {
			return nil
		}
		if cur.Name == "" || cur.Version == "" {
			return fmt.Errorf("line %d: package without P: or V:", start)
		}
		cur.Kind = Apk
		pkgs = append(pkgs, cur)
		return nil
	}
	err := stanzas(r, func(n int, line string) error {
		if len(line) < 2 || line[1] != ':' {
			return fmt.Errorf("line %d: not a \"K:value\" line: %.40q", n, line)
		}
		if !seen {
			seen, start = true, n
		}
		v := line[2:]
		switch line[0] {
		case 'P':
			cur.Name = v
		case 'V':
			cur.Version = v
		case 'A':
			cur.Arch = v
		case 'L':
			cur.License = v
		case 'o':
			cur.Source = v
		}
		return nil
	}, flush)
	if err != nil {
		return nil, err
	}
	return pkgs, nil
}
