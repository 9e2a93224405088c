package sbom

import (
	"strings"
	"testing"
)

const dpkgStatus = `Package: busybox-static
Status: install ok installed
Source: busybox (1:1.35.0-4+deb12u1)
Version: 1:1.35.0-4+deb12u1+b1
Architecture: amd64
Description: Standalone rescue shell
 with tons of builtin utilities
 .
 more text

Package: libc6
Status: install ok installed
Version: 2.36-9+deb12u14
Architecture: arm64
Multi-Arch: same

Package: old-thing
Status: deinstall ok config-files
Version: 1.0
Architecture: all
`

func TestParseDpkgStatus(t *testing.T) {
	tests := []struct {
		name          string
		in            string
		requireStatus bool
		want          []string // purls
		wantErr       string
	}{
		{name: "status", in: dpkgStatus, requireStatus: true,
			want: []string{"pkg:deb/debian/busybox-static@1:1.35.0-4+deb12u1+b1?arch=amd64", "pkg:deb/debian/libc6@2.36-9+deb12u14?arch=arm64"}},
		{name: "crlf and trailing blank lines", in: strings.ReplaceAll(dpkgStatus, "\n", "\r\n") + "\r\n\r\n", requireStatus: true,
			want: []string{"pkg:deb/debian/busybox-static@1:1.35.0-4+deb12u1+b1?arch=amd64", "pkg:deb/debian/libc6@2.36-9+deb12u14?arch=arm64"}},
		{name: "distroless status.d without Status", in: "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
			want: []string{"pkg:deb/debian/tzdata@2024a-0+deb12u1?arch=all"}},
		{name: "status file needs Status", in: "Package: tzdata\nVersion: 2024a\n", requireStatus: true},
		{name: "empty", in: ""},
		{name: "not a field", in: "Package: a\nthis is not a field\n", wantErr: "line 2"},
		{name: "continuation first", in: " dangling\nPackage: a\n", wantErr: "line 1: continuation"},
		{name: "no Package", in: "Package: a\nVersion: 1\n\nVersion: 2\nStatus: install ok installed\n", wantErr: "line 4: stanza without a Package"},
		{name: "no Version", in: "Package: a\nStatus: install ok installed\n", wantErr: "package a has no Version"},
		{name: "line too long", in: "Package: " + strings.Repeat("a", maxLine+1) + "\n", wantErr: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDpkgStatus(strings.NewReader(tt.in), tt.requireStatus)
			checkErr(t, err, tt.wantErr)
			checkPURLs(t, got, tt.want)
		})
	}
	got, _ := ParseDpkgStatus(strings.NewReader(dpkgStatus), true)
	if got[0].Source != "busybox" {
		t.Errorf("source = %q, want busybox", got[0].Source)
	}
}

func TestParseApkInstalled(t *testing.T) {
	const db = "C:Q1abc=\nP:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\no:musl\n\nP:busybox-binsh\nV:1.36.1-r29\nA:aarch64\nL:GPL-2.0-only\no:busybox\nF:bin\nR:sh\n\n"
	tests := []struct {
		name, in, wantErr string
		want              []string
	}{
		{name: "db", in: db, want: []string{"pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64", "pkg:apk/alpine/busybox-binsh@1.36.1-r29?arch=aarch64"}},
		{name: "no trailing blank line", in: "P:a\nV:1\n", want: []string{"pkg:apk/alpine/a@1"}},
		{name: "empty", in: "\n\n"},
		{name: "bad line", in: "P:a\nV:1\nnonsense\n", wantErr: "line 3"},
		{name: "no version", in: "P:a\nA:x86_64\n\nP:b\nV:1\n", wantErr: "line 1: package without"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseApkInstalled(strings.NewReader(tt.in))
			checkErr(t, err, tt.wantErr)
			checkPURLs(t, got, tt.want)
		})
	}
	got, _ := ParseApkInstalled(strings.NewReader(db))
	if got[1].License != "GPL-2.0-only" || got[1].Source != "busybox" {
		t.Errorf("busybox-binsh = %+v", got[1])
	}
}

func TestParseNPMPackage(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		want              Package
	}{
		{name: "string license", in: `{"name":"lodash","version":"4.17.21","license":"MIT"}`,
			want: Package{Kind: NPM, Name: "lodash", Version: "4.17.21", License: "MIT"}},
		{name: "object license", in: `{"name":"x","version":"1.0.0","license":{"type":"ISC","url":"…"}}`,
			want: Package{Kind: NPM, Name: "x", Version: "1.0.0", License: "ISC"}},
		{name: "legacy licenses", in: `{"name":"y","version":"2.0.0","licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]}`,
			want: Package{Kind: NPM, Name: "y", Version: "2.0.0", License: "(MIT OR Apache-2.0)"}},
		{name: "no license", in: `{"name":"@babel/core","version":"7.24.0"}`,
			want: Package{Kind: NPM, Name: "@babel/core", Version: "7.24.0"}},
		{name: "no version", in: `{"name":"z"}`, wantErr: "without name or version"},
		{name: "not json", in: `{"name":`, wantErr: "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNPMPackage(strings.NewReader(tt.in))
			checkErr(t, err, tt.wantErr)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestIsNPMManifest(t *testing.T) {
	for name, want := range map[string]bool{
		"/app/node_modules/lodash/package.json":                      true,
		"/app/node_modules/@babel/core/package.json":                 true,
		"/app/node_modules/a/node_modules/b/package.json":            true,
		"/app/node_modules/a/node_modules/@s/b/package.json":         true,
		"/app/package.json":                                          false,
		"/app/node_modules/lodash/fp/package.json":                   false,
		"/app/node_modules/@babel/package.json":                      false,
		"/app/node_modules/package.json":                             false,
		"/app/node_modules/@babel/core/lib/package.json":             false,
		"/app/node_modules/lodash/package.json.bak":                  false,
		"/usr/lib/node_modules/npm/node_modules/semver/package.json": true,
	} {
		if got := isNPMManifest(name); got != want {
			t.Errorf("isNPMManifest(%s) = %v", name, got)
		}
	}
}

func TestPURL(t *testing.T) {
	for _, tt := range []struct {
		p    Package
		want string
	}{
		{Package{Kind: Deb, Name: "libstdc++6", Version: "12.2.0-14", Arch: "amd64"}, "pkg:deb/debian/libstdc++6@12.2.0-14?arch=amd64"},
		{Package{Kind: Apk, Name: "musl", Version: "1.2.5-r0", Arch: "x86_64"}, "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64"},
		{Package{Kind: GoMod, Name: "github.com/spdx/tools-golang", Version: "v0.5.7"}, "pkg:golang/github.com/spdx/tools-golang@v0.5.7"},
		{Package{Kind: GoMod, Name: "github.com/archmirror/archmirror", Version: "(devel)"}, "pkg:golang/github.com/archmirror/archmirror@%28devel%29"},
		{Package{Kind: NPM, Name: "@babel/core", Version: "7.24.0"}, "pkg:npm/%40babel/core@7.24.0"},
		{Package{Kind: NPM, Name: "lodash", Version: "4.17.21"}, "pkg:npm/lodash@4.17.21"},
		{Package{Kind: Deb, Name: "x", Version: "1"}, "pkg:deb/debian/x@1"},
	} {
		if got := tt.p.PURL(); got != tt.want {
			t.Errorf("%+v: %s, want %s", tt.p, got, tt.want)
		}
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	f.Add([]byte(dpkgStatus), true)
	f.Add([]byte("Package: a\nVersion: 1\n"), false)
	f.Add([]byte(" x\n\nPackage:\n"), true)
	f.Add([]byte("Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, in []byte, requireStatus bool) {
		pkgs, err := ParseDpkgStatus(strings.NewReader(string(in)), requireStatus)
		if err != nil && pkgs != nil {
			t.Fatalf("error %v with packages %v", err, pkgs)
		}
		for _, p := range pkgs {
			if p.Kind != Deb || p.Name == "" || p.Version == "" {
				t.Fatalf("package %+v", p)
			}
			_ = p.PURL()
		}
	})
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}

func checkPURLs(t *testing.T, pkgs []Package, want []string) {
	t.Helper()
	var got []string
	for _, p := range pkgs {
		got = append(got, p.PURL())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("purls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
