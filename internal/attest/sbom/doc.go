// Package sbom catalogues the software in a platform image and writes it as an SPDX 2.3 JSON
// document.
//
// syft (github.com/anchore/syft) is the reference cataloguer, but it cannot be built here: six
// of the module versions it depends on are refused by our module proxy (it only builds with
// replace directives), and it would add minutes of build time and ~80 MB to the binary (see
// shared/DEPENDENCIES.md). So the default Cataloguer is a focused one of our own for what
// mirrored images contain: the dpkg database (including distroless status.d), the apk
// installed database, Go binaries (debug/buildinfo) and npm package.json files under
// node_modules. It sits behind the Cataloguer interface so that syft, or an external syft or
// trivy CLI, can replace it without touching Document or JSON. The SPDX model and JSON
// encoding are github.com/spdx/tools-golang v0.5.7.
package sbom
