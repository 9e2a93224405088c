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
	err := stanzas(r, func(n int, line string) error {
		switch {
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return fmt.Errorf("line %d: continuation line outside a field", n)
			}
			// multi-line values (Description, Conffiles) are not catalogued
		default:
			key, value, ok := strings.Cut(line, ":")
			if !ok || key == "" || strings.ContainsAny(key, " \t") {
				return fmt.Errorf("line %d: not a \"Field: value\" line: %.40q", n, line)
			}
			if len(fields) == 0 {
				start = n
			}
			last = key
			fields[key] = strings.TrimSpace(value)
		}
		return nil
	}, func() error { last = ""; return flush() })
	if err != nil {
		return nil, err
	}
	return pkgs, nil
}

// stanzas reads r's lines (CRLF too, each at most maxLine bytes) as stanzas separated by blank
// lines, as dpkg's status file and apk's installed database are: each other line goes to line
// with its number, and end is called after each stanza, the last one included.
func stanzas(r io.Reader, line func(n int, text string) error, end func() error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSuffix(sc.Text(), "\r")
		var err error
		if strings.TrimSpace(text) == "" {
			err = end()
		} else {
			err = line(n, text)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w", n+1, err)
	}
	return end()
}
