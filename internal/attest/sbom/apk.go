package sbom

import (
	"bufio"
	"fmt"
	"io"
	"strings"
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
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			return nil, fmt.Errorf("line %d: not a \"K:value\" line: %.40q", n, line)
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
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return pkgs, nil
}
