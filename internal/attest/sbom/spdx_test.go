package sbom

import (
	"bytes"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx"
)

var (
	testDigest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	testTime   = time.Date(2026, 1, 10, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	testPkgs   = []Package{
		{Kind: NPM, Name: "@babel/core", Version: "7.24.0", Location: "/app/node_modules/@babel/core/package.json"},
		{Kind: Deb, Name: "busybox-static", Version: "1:1.35.0-4+deb12u1+b1", Arch: "amd64", Source: "busybox", Location: "/var/lib/dpkg/status"},
		{Kind: GoMod, Name: "github.com/archmirror/archmirror", Version: "(devel)", GoVersion: "go1.26.8", Main: true, Location: "/opt/hello/bin/hello"},
		{Kind: Apk, Name: "musl", Version: "1.2.5-r0", Arch: "x86_64", License: "MIT", Location: "/lib/apk/db/installed"},
		{Kind: NPM, Name: "odd", Version: "1.0.0", License: "SEE LICENSE IN LICENSE.txt", Location: "/app/node_modules/odd/package.json"},
	}
)

func TestDocument(t *testing.T) {
	doc, err := Document("registry.example/ns/app", testDigest, "linux/amd64", testPkgs, testTime, "archmirror-test")
	if err != nil {
		t.Fatal(err)
	}
	b, err := JSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	// deterministic: the same input, in another order, gives the same bytes
	rev := append([]Package(nil), testPkgs...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	doc2, err := Document("registry.example/ns/app", testDigest, "linux/amd64", rev, testTime, "archmirror-test")
	if err != nil {
		t.Fatal(err)
	}
	b2, err := JSON(doc2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, b2) {
		t.Errorf("not deterministic:\n%s\n%s", b, b2)
	}

	back, err := spdxjson.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if back.SPDXVersion != "SPDX-2.3" || back.DataLicense != "CC0-1.0" || back.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("header: %s %s %s", back.SPDXVersion, back.DataLicense, back.SPDXIdentifier)
	}
	if back.CreationInfo.Created != "2026-01-10T11:00:00Z" || back.CreationInfo.Creators[0].Creator != "archmirror-test" || back.CreationInfo.Creators[0].CreatorType != "Tool" {
		t.Errorf("creation info: %+v", back.CreationInfo)
	}
	if !strings.HasPrefix(back.DocumentNamespace, "https://spdx.org/spdxdocs/archmirror/registry.example-ns-app-") ||
		back.DocumentName != "registry.example/ns/app@sha256:"+testDigest.Hex+" linux/amd64" {
		t.Errorf("name %q namespace %q", back.DocumentName, back.DocumentNamespace)
	}
	if len(back.Packages) != len(testPkgs)+1 {
		t.Fatalf("%d packages", len(back.Packages))
	}
	purls := map[string]*spdx.Package{}
	for _, p := range back.Packages {
		if len(p.PackageExternalReferences) != 1 || p.PackageExternalReferences[0].RefType != "purl" || p.PackageExternalReferences[0].Category != "PACKAGE-MANAGER" {
			t.Fatalf("%s external refs %+v", p.PackageName, p.PackageExternalReferences)
		}
		purls[p.PackageExternalReferences[0].Locator] = p
	}
	root := purls["pkg:oci/app@sha256%3A"+testDigest.Hex+"?repository_url=registry.example/ns/app&arch=amd64"]
	if root == nil || root.PackageSPDXIdentifier != rootID || root.PrimaryPackagePurpose != "CONTAINER" {
		t.Fatalf("root package missing or wrong: %+v", purls)
	}
	for _, p := range testPkgs {
		sp := purls[p.PURL()]
		if sp == nil || sp.PackageName != p.Name || sp.PackageVersion != p.Version || sp.PackageSourceInfo != "found in "+p.Location {
			t.Errorf("%s: %+v", p.PURL(), sp)
		}
	}
	if l := purls["pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64"].PackageLicenseDeclared; l != "MIT" {
		t.Errorf("musl license %q", l)
	}
	odd := purls["pkg:npm/odd@1.0.0"]
	if odd.PackageLicenseDeclared != "NOASSERTION" || !strings.Contains(odd.PackageLicenseComments, "SEE LICENSE IN") {
		t.Errorf("odd license %q / %q", odd.PackageLicenseDeclared, odd.PackageLicenseComments)
	}
	if l := purls["pkg:deb/debian/busybox-static@1:1.35.0-4+deb12u1+b1?arch=amd64"].PackageLicenseDeclared; l != "NOASSERTION" {
		t.Errorf("deb license %q", l)
	}

	var describes, contains int
	for _, r := range back.Relationships {
		switch {
		case r.Relationship == "DESCRIBES" && r.RefA.ElementRefID == "DOCUMENT" && r.RefB.ElementRefID == rootID:
			describes++
		case r.Relationship == "CONTAINS" && r.RefA.ElementRefID == rootID:
			contains++
		default:
			t.Errorf("relationship %+v", r)
		}
	}
	if describes != 1 || contains != len(testPkgs) {
		t.Errorf("%d DESCRIBES, %d CONTAINS", describes, contains)
	}

	// another digest, another document
	other := testDigest
	other.Hex = strings.Repeat("cd", 32)
	doc3, _ := Document("registry.example/ns/app", other, "linux/amd64", testPkgs, testTime, "archmirror-test")
	if doc3.DocumentNamespace == doc.DocumentNamespace {
		t.Errorf("two digests share namespace %s", doc.DocumentNamespace)
	}
}

func TestDocumentErrors(t *testing.T) {
	if _, err := Document("", testDigest, "linux/amd64", nil, testTime, "t"); err == nil {
		t.Error("no subject: no error")
	}
	if _, err := Document("r/app", v1.Hash{}, "linux/amd64", nil, testTime, "t"); err == nil {
		t.Error("no digest: no error")
	}
	// an image without packages is still a valid document
	doc, err := Document("r/app", testDigest, "", nil, testTime, "t")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JSON(doc); err != nil {
		t.Fatal(err)
	}
}

func TestLicenseExpr(t *testing.T) {
	for lic, want := range map[string]bool{
		"MIT":                 true,
		"GPL-2.0-or-later":    true,
		"(MIT OR Apache-2.0)": true,
		"GPL-2.0-only WITH Classpath-exception-2.0": true,
		"LicenseRef-custom":                         true,
		"MIT AND (BSD-3-Clause OR ISC)":             true,
		"SEE LICENSE IN LICENSE.txt":                false,
		"MIT/X11":                                   false,
		"":                                          false,
	} {
		if got := licenseExpr.MatchString(lic); got != want {
			t.Errorf("%q: %v", lic, got)
		}
	}
}
