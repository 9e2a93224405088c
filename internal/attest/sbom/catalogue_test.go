package sbom

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type file struct {
	name string
	mode int64
	body []byte
}

// image is an image with one layer per element of layers.
func image(t testing.TB, layers ...[]file) v1.Image {
	t.Helper()
	img := empty.Image
	for _, files := range layers {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, f := range files {
			mode := f.mode
			if mode == 0 {
				mode = 0o644
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: mode, Size: int64(len(f.body))}); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write(f.body); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

func TestCatalogue(t *testing.T) {
	self, err := os.Executable() // a Go binary with build information
	if err != nil {
		t.Fatal(err)
	}
	goBin, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	fakeELF := append([]byte("\x7fELF"), make([]byte, 4096)...)
	tests := []struct {
		name    string
		layers  [][]file
		opts    []Option
		want    []string // "purl location", in catalogue order; a "…" element allows more
		wantLog []string
	}{
		{
			name:   "dpkg status",
			layers: [][]file{{{name: "var/lib/dpkg/status", body: []byte(dpkgStatus)}}},
			want: []string{
				"pkg:deb/debian/busybox-static@1:1.35.0-4+deb12u1+b1?arch=amd64 /var/lib/dpkg/status",
				"pkg:deb/debian/libc6@2.36-9+deb12u14?arch=arm64 /var/lib/dpkg/status",
			},
		},
		{
			name: "distroless status.d",
			layers: [][]file{{
				{name: "./var/lib/dpkg/status.d/tzdata", body: []byte("Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n")},
				{name: "./var/lib/dpkg/status.d/tzdata.md5sums", body: []byte("d41d8cd98f00b204e9800998ecf8427e  usr/share/zoneinfo/UTC\n")},
			}},
			want: []string{"pkg:deb/debian/tzdata@2024a-0+deb12u1?arch=all /var/lib/dpkg/status.d/tzdata"},
		},
		{
			name:   "apk",
			layers: [][]file{{{name: "lib/apk/db/installed", body: []byte("P:musl\nV:1.2.5-r0\nA:x86_64\nL:MIT\n\n")}}},
			want:   []string{"pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64 /lib/apk/db/installed"},
		},
		{
			name: "npm tree",
			layers: [][]file{{
				{name: "app/package.json", body: []byte(`{"name":"the-app","version":"1.0.0"}`)},
				{name: "app/node_modules/lodash/package.json", body: []byte(`{"name":"lodash","version":"4.17.21","license":"MIT"}`)},
				{name: "app/node_modules/lodash/fp/package.json", body: []byte(`{"main":"../fp.js"}`)},
				{name: "app/node_modules/@babel/core/package.json", body: []byte(`{"name":"@babel/core","version":"7.24.0"}`)},
				{name: "app/node_modules/@babel/core/node_modules/semver/package.json", body: []byte(`{"name":"semver","version":"6.3.1"}`)},
			}},
			want: []string{
				"pkg:npm/%40babel/core@7.24.0 /app/node_modules/@babel/core/package.json",
				"pkg:npm/lodash@4.17.21 /app/node_modules/lodash/package.json",
				"pkg:npm/semver@6.3.1 /app/node_modules/@babel/core/node_modules/semver/package.json",
			},
		},
		{
			name: "executables that are not Go binaries",
			layers: [][]file{{
				{name: "usr/bin/not-go", mode: 0o755, body: fakeELF},
				{name: "usr/bin/script", mode: 0o755, body: []byte("#!/bin/sh\n")},
				{name: "data/go-but-not-executable", mode: 0o644, body: goBin},
			}},
		},
		{
			name: "later layer deletes a database",
			layers: [][]file{
				{{name: "lib/apk/db/installed", body: []byte("P:musl\nV:1.2.5-r0\n")}},
				{{name: "lib/apk/db/.wh.installed"}},
			},
		},
		{
			name: "malformed files are skipped and named",
			layers: [][]file{{
				{name: "var/lib/dpkg/status", body: []byte("Package: a\ngarbage\n")},
				{name: "app/node_modules/bad/package.json", body: []byte(`{"name":`)},
				{name: "lib/apk/db/installed", body: []byte("P:musl\nV:1.2.5-r0\n")},
			}},
			want:    []string{"pkg:apk/alpine/musl@1.2.5-r0 /lib/apk/db/installed"},
			wantLog: []string{"path=/var/lib/dpkg/status", "line 2", "path=/app/node_modules/bad/package.json"},
		},
		{
			name: "oversized files are skipped and named",
			opts: []Option{WithMaxFileSize(1024)},
			layers: [][]file{{
				{name: "usr/bin/big", mode: 0o755, body: fakeELF},
				{name: "usr/bin/big-but-not-elf", mode: 0o755, body: make([]byte, 4096)},
				{name: "var/lib/dpkg/status", body: []byte(dpkgStatus + strings.Repeat("\n", 1024))},
				{name: "lib/apk/db/installed", body: []byte("P:musl\nV:1.2.5-r0\n")},
			}},
			want:    []string{"pkg:apk/alpine/musl@1.2.5-r0 /lib/apk/db/installed"},
			wantLog: []string{"path=/usr/bin/big ", "path=/var/lib/dpkg/status", "larger than the size limit"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			opts := append([]Option{WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithTempDir(t.TempDir())}, tt.opts...)
			pkgs, err := New(opts...).Catalogue(t.Context(), image(t, tt.layers...))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range pkgs {
				got = append(got, p.PURL()+" "+p.Location)
			}
			if !matches(got, tt.want) {
				t.Errorf("packages:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			for _, w := range tt.wantLog {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, logs.String())
				}
			}
			if len(tt.wantLog) == 0 && logs.Len() > 0 {
				t.Errorf("unexpected log:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), "big-but-not-elf") {
				t.Errorf("a non-ELF file was reported:\n%s", logs.String())
			}
		})
	}
}

// matches compares got with want in order, where a "…" in want matches any run of lines.
func matches(got, want []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "…" {
		for i := 0; i <= len(got); i++ {
			if matches(got[i:], want[1:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && got[0] == want[0] && matches(got[1:], want[1:])
}

// goBinary builds testdata/gobin, a Go program that depends on spdx/tools-golang.
func goBinary(t *testing.T) []byte {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gobin")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", bin, "./testdata/gobin")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCatalogueGoBinary(t *testing.T) {
	bin := goBinary(t)
	pkgs, err := New(WithTempDir(t.TempDir())).Catalogue(t.Context(), image(t, []file{{name: "usr/local/bin/gobin", mode: 0o755, body: bin}}))
	if err != nil {
		t.Fatal(err)
	}
	var main, dep *Package
	for i, p := range pkgs {
		if p.Kind != GoMod || p.Location != "/usr/local/bin/gobin" || !strings.HasPrefix(p.GoVersion, "go1.") {
			t.Errorf("package %+v", p)
		}
		switch {
		case p.Main:
			main = &pkgs[i]
		case p.Name == "github.com/spdx/tools-golang":
			dep = &pkgs[i]
		}
	}
	if main == nil || main.Name != "github.com/archmirror/archmirror" || main.Version == "" {
		t.Errorf("main module: %+v", main)
	}
	if dep == nil || dep.PURL() != "pkg:golang/github.com/spdx/tools-golang@v0.5.7" {
		t.Errorf("dependency: %+v", dep)
	}
}

func TestCatalogueCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := New().Catalogue(ctx, image(t, []file{{name: "a"}})); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}
