package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spdx/tools-golang/spdx"
	"github.com/spdx/tools-golang/spdx/v2/common"

	spdxjson "github.com/spdx/tools-golang/json"
)

const noAssertion = "NOASSERTION"

// rootID is the SPDX identifier of the image the document describes.
const rootID = "Image"

// Document is the SPDX 2.3 document of one platform image: subject is its repository
// ("registry.example/ns/app"), subjectDigest its manifest digest, platform "linux/amd64",
// created the creation time and tool the creator ("archmirror-1.2.0"). It is a function of its
// arguments only: its name and namespace derive from subject, platform and digest, and its
// packages are sorted, so the same input gives the same bytes.
func Document(subject string, subjectDigest v1.Hash, platform string, pkgs []Package, created time.Time, tool string) (*spdx.Document, error) {
	if subject == "" || subjectDigest.Hex == "" {
		return nil, fmt.Errorf("sbom: document needs a subject and its digest")
	}
	pkgs = append([]Package(nil), pkgs...)
	sortPackages(pkgs)

	name := subject + "@" + subjectDigest.String()
	if platform != "" {
		name += " " + platform
	}
	sum := sha256.Sum256([]byte(subject + "\x00" + platform + "\x00" + subjectDigest.String()))
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      name,
		DocumentNamespace: "https://spdx.org/spdxdocs/archmirror/" + idChars.ReplaceAllString(subject, "-") + "-" + hex.EncodeToString(sum[:16]),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: tool}},
			Created:  created.UTC().Format(time.RFC3339),
		},
	}
	root := &spdx.Package{
		PackageName:             subject,
		PackageSPDXIdentifier:   rootID,
		PackageVersion:          subjectDigest.String(),
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   "CONTAINER",
		PackageExternalReferences: []*spdx.PackageExternalReference{{
			Category: "PACKAGE-MANAGER", RefType: "purl", Locator: ociPURL(subject, subjectDigest, platform),
		}},
	}
	if subjectDigest.Algorithm == "sha256" {
		root.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: subjectDigest.Hex}}
	}
	doc.Packages = append(doc.Packages, root)
	doc.Relationships = append(doc.Relationships, &spdx.Relationship{
		RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", rootID), Relationship: "DESCRIBES",
	})
	ids := map[spdx.ElementID]bool{rootID: true}
	for _, p := range pkgs {
		id := packageID(p)
		if ids[id] {
			continue // the same package found twice in the same file
		}
		ids[id] = true
		sp := &spdx.Package{
			PackageName:             p.Name,
			PackageSPDXIdentifier:   id,
			PackageVersion:          p.Version,
			PackageDownloadLocation: noAssertion,
			PackageLicenseConcluded: noAssertion,
			PackageLicenseDeclared:  noAssertion,
			PackageCopyrightText:    noAssertion,
			PackageSourceInfo:       "found in " + p.Location,
			PackageComment:          comment(p),
			PackageExternalReferences: []*spdx.PackageExternalReference{{
				Category: "PACKAGE-MANAGER", RefType: "purl", Locator: p.PURL(),
			}},
		}
		switch {
		case p.Kind == GoMod && p.Main:
			sp.PrimaryPackagePurpose = "APPLICATION"
		case p.Kind == GoMod || p.Kind == NPM:
			sp.PrimaryPackagePurpose = "LIBRARY"
		} // an OS package may be an application or a library: left out
		if lic := strings.TrimSpace(p.License); lic != "" {
			if licenseExpr.MatchString(lic) {
				sp.PackageLicenseDeclared = lic
			} else {
				sp.PackageLicenseComments = "declared license, not an SPDX expression: " + lic
			}
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", rootID), RefB: common.MakeDocElementID("", string(id)), Relationship: "CONTAINS",
		})
	}
	return doc, nil
}

// JSON encodes doc as SPDX 2.3 JSON and checks that the tools-golang reader reads it back.
func JSON(doc *spdx.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent(" "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("sbom: encode SPDX JSON: %w", err)
	}
	back, err := spdxjson.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("sbom: SPDX JSON does not read back: %w", err)
	}
	if len(back.Packages) != len(doc.Packages) || len(back.Relationships) != len(doc.Relationships) {
		return nil, fmt.Errorf("sbom: SPDX JSON reads back as %d packages and %d relationships, wrote %d and %d",
			len(back.Packages), len(back.Relationships), len(doc.Packages), len(doc.Relationships))
	}
	return buf.Bytes(), nil
}

var (
	// idChars are the characters an SPDX identifier may not hold.
	idChars = regexp.MustCompile(`[^A-Za-z0-9.-]+`)
	// licenseExpr is the shape of an SPDX license expression (identifiers, AND/OR/WITH,
	// parentheses); the identifiers themselves are not checked against the SPDX list.
	licenseExpr = regexp.MustCompile(`^[()\s]*(LicenseRef-)?[A-Za-z0-9][A-Za-z0-9.+-]*[()\s]*((AND|OR|WITH|and|or|with)[()\s]+(LicenseRef-)?[A-Za-z0-9][A-Za-z0-9.+-]*[()\s]*)*$`)
)

// packageID is a readable, stable SPDX identifier: kind, name and a hash of everything that
// tells two packages apart.
func packageID(p Package) spdx.ElementID {
	sum := sha256.Sum256([]byte(strings.Join([]string{string(p.Kind), p.Name, p.Version, p.Arch, p.Location}, "\x00")))
	name := strings.Trim(idChars.ReplaceAllString(p.Name, "-"), "-")
	return spdx.ElementID(fmt.Sprintf("Package-%s-%s-%s", p.Kind, name, hex.EncodeToString(sum[:8])))
}

func comment(p Package) string {
	var parts []string
	if p.Kind == GoMod && p.Main {
		parts = append(parts, "main module")
	}
	if p.GoVersion != "" {
		parts = append(parts, "built with "+p.GoVersion)
	}
	if p.Source != "" && p.Source != p.Name {
		parts = append(parts, "source package "+p.Source)
	}
	return strings.Join(parts, "; ")
}

// ociPURL is the image's package URL: pkg:oci/NAME@DIGEST?repository_url=REPO&arch=ARCH.
func ociPURL(subject string, digest v1.Hash, platform string) string {
	name := subject[strings.LastIndex(subject, "/")+1:]
	if i := strings.IndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	u := "pkg:oci/" + escape(strings.ToLower(name)) + "@" + strings.ReplaceAll(digest.String(), ":", "%3A") +
		"?repository_url=" + strings.ReplaceAll(escape(strings.ToLower(subject)), "%2F", "/")
	if _, rest, ok := strings.Cut(platform, "/"); ok {
		arch, variant, _ := strings.Cut(rest, "/")
		u += "&arch=" + escape(arch)
		if variant != "" {
			u += "&variant=" + escape(variant)
		}
	}
	return u
}
