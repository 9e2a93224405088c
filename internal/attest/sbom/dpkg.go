package sbom

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// maxLine bounds one line of a package database (dpkg, apk).
const maxLine = 1 << 20

// ParseDpkgStatus reads a dpkg status file (/var/lib/dpkg/status, or one file of distroless'
// /var/lib/dpkg/status.d/) and returns its installed packages, Location left empty. A stanza
// counts as installed when its Status is "… … installed"; one without a Status field counts
// as installed only if requireStatus is false (distroless writes status.d entries without it).
// A malformed file is an error naming the line.
func ParseDpkgStatus(r io.Reader, requireStatus bool) ([]Package, error) {
	var (
		pkgs   []Package
		fields = map[string]string{}
		last   string // the field a continuation line belongs to
		start  int    // the first line of the current stanza
	)
	flush := func() error {
		defer clear(fields)
		if len(fields) == 0 {
			return nil
		}
		status, hasStatus := fields["Status"]
		if hasStatus {
			if f := strings.Fields(status); len(f) != 3 || f[2] != "installed" {
				return nil
			}
		} else if requireStatus {
			return nil
		}
		name := fields["Package"]
		if name == "" {
			return fmt.Errorf("line %d: stanza without a Package field", start)
		}
		if fields["Version"] == "" {
			return fmt.Errorf("line %d: package %s has no Version", start, name)
		}
		src := fields["Source"]
		if i := strings.IndexByte(src, ' '); i >= 0 { // "busybox (1:1.35.0-4)"
			src = src[:i]
		}
		pkgs = append(pkgs, Package{
			Kind: Deb, Name: name, Version: fields["Version"], Arch: fields["Architecture"],
			Source: src,
		})
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			if err := flush(); err != nil {
				return nil, err
			}
			last = ""
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("line %d: continuation line outside a field", n)
			}
			// multi-line values (Description, Conffiles) are not catalogued
		default:
			key, value, ok := strings.Cut(line, ":")
			if !ok || key == "" || strings.ContainsAny(key, " \t") {
				return nil, fmt.Errorf("line %d: not a \"Field: value\" line: %.40q", n, line)
			}
			if len(fields) == 0 {
				start = n
			}
			last = key
			fields[key] = strings.TrimSpace(value)
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
