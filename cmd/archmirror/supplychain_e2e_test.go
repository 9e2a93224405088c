package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/archmirror/archmirror/internal/attest"
	"github.com/archmirror/archmirror/internal/run"
	"github.com/archmirror/archmirror/internal/testenv"
)

// The supply-chain end-to-end test: a real sync (docker-registry or a registry with the
// referrers API, buildkitd, arm64 through qemu) signs and attests what it publishes, and the
// real cosign v3 CLI, with its default settings, verifies every digest.

const cosignPassword = "e2e-password"

// keyPair is a cosign key pair made by `cosign generate-key-pair`, and another key's public half.
type keyPair struct {
	key, pub, otherPub string
}

func cosignKeys(t *testing.T, cosign string) keyPair {
	t.Helper()
	gen := func(dir string) {
		cmd := exec.Command(cosign, "generate-key-pair")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+cosignPassword)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
		}
	}
	dir, other := t.TempDir(), t.TempDir()
	gen(dir)
	gen(other)
	return keyPair{filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub"), filepath.Join(other, "cosign.pub")}
}

// cosignRun runs the cosign CLI against a loopback registry, offline (key-signed bundles have
// no transparency-log entry).
func cosignRun(cosign string, args ...string) ([]byte, error) {
	args = append(args, "--insecure-ignore-tlog=true", "--allow-insecure-registry=true")
	cmd := exec.Command(cosign, args...)
	cmd.Env = append(os.Environ(), "COSIGN_EXPERIMENTAL=0", "TUF_ROOT="+os.TempDir()+"/archmirror-e2e-tuf")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return append(stdout.Bytes(), stderr.Bytes()...), err
	}
	return stdout.Bytes(), nil
}

// statements decodes the DSSE envelopes cosign verify-attestation prints, one per line.
func statements(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var sts []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var env struct {
			Payload string `json:"payload"`
		}
		if json.Unmarshal(sc.Bytes(), &env) != nil || env.Payload == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(env.Payload)
		if err != nil {
			t.Fatal(err)
		}
		var st map[string]any
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatal(err)
		}
		sts = append(sts, st)
	}
	return sts
}

// published is one version's index and platform images in the registry.
type published struct {
	ref      string // ns/hello
	index    v1.Hash
	platform map[string]v1.Hash
}

func readPublished(t *testing.T, ns, repo, tag string) published {
	t.Helper()
	ref, err := name.NewTag(ns + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := idx.Digest()
	m, _ := idx.IndexManifest()
	p := published{ref: ns + "/" + repo, index: d, platform: map[string]v1.Hash{}}
	for _, e := range m.Manifests {
		p.platform[e.Platform.OS+"/"+e.Platform.Architecture] = e.Digest
	}
	if len(p.platform) != 2 {
		t.Fatalf("%s has %d entries, want linux/amd64 and linux/arm64: %+v", ref, len(m.Manifests), m.Manifests)
	}
	return p
}

func (p published) digests() map[string]v1.Hash {
	out := map[string]v1.Hash{"index": p.index}
	for k, v := range p.platform {
		out[k] = v
	}
	return out
}

func TestSupplyChain(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs the cosign CLI")
	}
	cosign := testenv.Cosign(t)
	keys := cosignKeys(t, cosign)
	t.Setenv(run.PasswordEnv, cosignPassword)
	for _, kind := range []struct {
		name string
		opts []testenv.WorldOption
	}{
		{"docker-registry", nil}, // no referrers API: the sha256-<hex> tag schema
		{"referrers-api", []testenv.WorldOption{testenv.WithReferrersAPI()}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			w := testenv.NewWorld(t, append(kind.opts, testenv.WithSign("{key: 'file://"+keys.key+"'}"))...)
			out, errOut, code := cli(t, "sync", "-c", w.ConfigPath, "--app", "hello", "--json")
			if code != 0 {
				t.Fatalf("sync exit %d\n%s\n%s", code, out, errOut)
			}
			var rep run.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			if len(rep.Attestations) == 0 {
				t.Fatal("sync attested nothing")
			}
			var latest string
			for _, a := range rep.Attestations {
				if a.Error != "" || a.Added != 12 || a.Present != 0 {
					t.Fatalf("attest %s %s: %+v", a.Component, a.Version, a)
				}
			}
			for _, u := range rep.Units {
				if u.Latest {
					latest = u.Version
				}
			}
			if latest == "" {
				t.Fatalf("no latest among %+v", rep.Units)
			}
			p := readPublished(t, w.Namespace, "hello", latest)
			checkWithCosign(t, cosign, keys, p)

			// A second sync writes nothing: every bundle is there.
			before := w.Uploaded.Load()
			out, errOut, code = cli(t, "sync", "-c", w.ConfigPath, "--app", "hello", "--json")
			if code != 0 {
				t.Fatalf("second sync exit %d\n%s\n%s", code, out, errOut)
			}
			rep = run.Report{}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatal(err)
			}
			for _, a := range rep.Attestations {
				if a.Added != 0 || a.Present != 12 || a.Error != "" {
					t.Fatalf("second sync attested %s again: %+v", a.Version, a)
				}
			}
			if n := w.Uploaded.Load() - before; n != 0 {
				t.Fatalf("second sync uploaded %d bytes", n)
			}

			// archmirror verify: the right key passes, another key fails.
			image := p.ref + ":" + latest
			out, errOut, code = cli(t, "verify", image, "--key", keys.pub)
			if code != 0 || !strings.Contains(out, "verified") || strings.Contains(out, "NOT") {
				t.Fatalf("verify exit %d\n%s\n%s", code, out, errOut)
			}
			if _, _, code = cli(t, "verify", image, "--key", keys.otherPub); code != 1 {
				t.Fatalf("verify with another key: exit %d", code)
			}

			// One platform unsigned: verify fails and says where; attest puts it back.
			dropReferrer(t, w.Namespace, "hello", p.platform["linux/arm64"], attest.SignPredicateType)
			out, _, code = cli(t, "verify", image, "--key", keys.pub)
			if code != 1 || !regexpLine(out, `^linux/arm64 .*MISSING`) || regexpLine(out, `^linux/amd64 .*MISSING`) {
				t.Fatalf("verify with arm64 unsigned: exit %d\n%s", code, out)
			}
			out, errOut, code = cli(t, "attest", "-c", w.ConfigPath, "--app", "hello", "--json")
			if code != 0 {
				t.Fatalf("attest exit %d\n%s\n%s", code, out, errOut)
			}
			var arep run.AttestReport
			if err := json.Unmarshal([]byte(out), &arep); err != nil {
				t.Fatal(err)
			}
			added := 0
			for _, a := range arep.Results {
				added += a.Added
			}
			if added != 1 {
				t.Fatalf("attest added %d bundles, want the one signature: %s", added, out)
			}
			if out, _, code = cli(t, "verify", image, "--key", keys.pub); code != 0 {
				t.Fatalf("verify after attest: exit %d\n%s", code, out)
			}
		})
	}
}

// checkWithCosign runs cosign verify and verify-attestation for every predicate type on the
// index and each platform digest: each passes with the key and fails with another.
func checkWithCosign(t *testing.T, cosign string, keys keyPair, p published) {
	t.Helper()
	types := map[string]string{
		"spdxjson":                 attest.SPDXPredicateType,
		"slsaprovenance1":          attest.SLSAPredicateType,
		attest.MirrorPredicateType: attest.MirrorPredicateType,
	}
	var mu sync.Mutex
	sboms := map[string][]map[string]any{}
	var wg sync.WaitGroup
	for subject, d := range p.digests() {
		ref := p.ref + "@" + d.String()
		check := func(what string, args ...string) {
			defer wg.Done()
			if out, err := cosignRun(cosign, append(args, "--key", keys.pub, ref)...); err != nil {
				t.Errorf("%s %s: %v\n%s", what, subject, err, out)
			} else if what == "spdxjson" {
				mu.Lock()
				sboms[subject] = statements(t, out)
				mu.Unlock()
			}
			if out, err := cosignRun(cosign, append(args, "--key", keys.otherPub, ref)...); err == nil {
				t.Errorf("%s %s passed with another key:\n%s", what, subject, out)
			}
		}
		wg.Add(1 + len(types))
		go check("verify", "verify")
		for flag := range types {
			go check(flag, "verify-attestation", "--type", flag)
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	// The SBOMs name the base image's busybox and the fixture program's Go module.
	for subject, sts := range sboms {
		if len(sts) != 1 || sts[0]["predicateType"] != attest.SPDXPredicateType {
			t.Fatalf("%s: cosign printed %d SPDX statements", subject, len(sts))
		}
		pkgs, _ := sts[0]["predicate"].(map[string]any)["packages"].([]any)
		var names []string
		for _, p := range pkgs {
			names = append(names, p.(map[string]any)["name"].(string))
		}
		if !slices.Contains(names, "busybox-static") || !slices.Contains(names, "github.com/archmirror/archmirror") {
			t.Errorf("%s SBOM packages %v lack busybox-static or the fixture program's module", subject, names)
		}
	}
}

// dropReferrer removes d's referrers of one predicate type: from the tag-schema index on a
// registry without the referrers API, by deleting the manifest on one with it.
func dropReferrer(t *testing.T, ns, repo string, d v1.Hash, predicateType string) {
	t.Helper()
	r, err := name.NewRepository(ns + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(r.Digest(d.String()))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := idx.IndexManifest()
	fallback := r.Tag(strings.Replace(d.String(), ":", "-", 1))
	if _, err := remote.Head(fallback); err == nil {
		var keep []v1.Descriptor
		for _, e := range m.Manifests {
			if e.Annotations[attest.PredicateTypeAnnotation] != predicateType {
				keep = append(keep, e)
			}
		}
		m.Manifests = keep
		raw, _ := json.Marshal(m)
		if err := remote.Put(fallback, rawIndex(raw)); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, e := range m.Manifests {
		if e.Annotations[attest.PredicateTypeAnnotation] == predicateType {
			if err := remote.Delete(r.Digest(e.Digest.String()), remote.WithContext(context.Background())); err != nil {
				t.Fatal(err)
			}
		}
	}
}

type rawIndex []byte

func (r rawIndex) RawManifest() ([]byte, error)        { return r, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

func regexpLine(out, pattern string) bool {
	for _, l := range strings.Split(out, "\n") {
		if ok, _ := regexp.MatchString(pattern, l); ok {
			return true
		}
	}
	return false
}

// TestSupplyChainLayout: a sync into an OCI layout carries the same referrers (in index.json),
// archmirror verify reads them there, and after a plain copy of the layout to a registry cosign
// verifies every digest.
func TestSupplyChainLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs the cosign CLI")
	}
	cosign := testenv.Cosign(t)
	keys := cosignKeys(t, cosign)
	t.Setenv(run.PasswordEnv, cosignPassword)
	dir := t.TempDir()
	w := testenv.NewWorld(t, testenv.WithTarget("oci:"+dir), testenv.WithSign("{key: 'file://"+keys.key+"'}"))
	out, errOut, code := cli(t, "sync", "-c", w.ConfigPath, "--app", "hello", "--json")
	if code != 0 {
		t.Fatalf("sync exit %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = cli(t, "verify", "oci:"+dir+"/hello:latest", "--key", keys.pub)
	if code != 0 {
		t.Fatalf("verify of the layout: exit %d\n%s\n%s", code, out, errOut)
	}

	// Copy the layout to the registry: images and indexes by tag, then every referrer manifest.
	dst := w.Registry + "/copied/hello"
	copyLayout(t, filepath.Join(dir, "hello"), dst)
	p := readPublished(t, w.Registry+"/copied", "hello", "latest")
	checkWithCosign(t, cosign, keys, p)
	if out, errOut, code = cli(t, "verify", dst+":latest", "--key", keys.pub); code != 0 {
		t.Fatalf("verify of the copy: exit %d\n%s\n%s", code, out, errOut)
	}
}

// copyLayout copies every manifest of an OCI layout to repository dst with go-containerregistry:
// tagged indexes (with their images) first, then the referrers, which go-containerregistry
// attaches to their subjects (through the tag schema on a registry without the API).
func copyLayout(t *testing.T, path, dst string) {
	t.Helper()
	lp, m := testenv.Layout(t, path)
	repo, err := name.NewRepository(dst)
	if err != nil {
		t.Fatal(err)
	}
	var referrers []v1.Descriptor
	for _, d := range m.Manifests {
		tag := d.Annotations["org.opencontainers.image.ref.name"]
		switch {
		case tag == "":
			referrers = append(referrers, d)
		case d.MediaType.IsIndex():
			idx, err := lp.ImageIndex(d.Digest)
			if err == nil {
				err = remote.WriteIndex(repo.Tag(tag), idx)
			}
			if err != nil {
				t.Fatalf("copy %s: %v", tag, err)
			}
		default:
			img, err := lp.Image(d.Digest)
			if err == nil {
				err = remote.Write(repo.Tag(tag), img)
			}
			if err != nil {
				t.Fatalf("copy %s: %v", tag, err)
			}
		}
	}
	if len(referrers) == 0 {
		t.Fatal("the layout has no referrers")
	}
	for _, d := range referrers {
		img, err := lp.Image(d.Digest)
		if err == nil {
			err = remote.Write(repo.Digest(d.Digest.String()), img)
		}
		if err != nil {
			t.Fatalf("copy referrer %s: %v", d.Digest, err)
		}
	}
}
