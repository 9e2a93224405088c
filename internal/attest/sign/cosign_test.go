package sign

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// cosignBinary finds the cosign CLI: $ARCHMIRROR_COSIGN, the copy scripts/deps.sh cosign
// builds, or one on PATH. Until the supply-chain tests are part of `make test`, a missing CLI
// skips (CI does not install it yet).
func cosignBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("ARCHMIRROR_COSIGN"); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "archmirror", "bin", "cosign-v3.1.3")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	t.Skip("cosign CLI not installed")
	return ""
}

// TestCosignInterop checks against the real CLI that a `cosign generate-key-pair` key opens with
// LoadKey, and that `cosign verify-blob` accepts what Sign writes.
func TestCosignInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cosign CLI")
	}
	cosign := cosignBinary(t)
	dir := t.TempDir()
	const password = "interop-password"
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(cosign, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+password, "COSIGN_YES=true")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("cosign %v: %v\n%s", args, err, out)
		}
		return out
	}
	t.Logf("%s", run("version"))
	run("generate-key-pair")

	keyPEM, err := os.ReadFile(filepath.Join(dir, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(keyPEM, static("wrong")); err == nil {
		t.Fatal("cosign key opened with a wrong password")
	}
	sv, err := LoadKey(keyPEM, static(password))
	if err != nil {
		t.Fatalf("LoadKey(cosign.key): %v", err)
	}

	// Our public key is cosign's.
	theirPub, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	ourPub, err := PublicKeyPEM(sv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cryptoutils.UnmarshalPEMToPublicKey(theirPub)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cryptoutils.UnmarshalPEMToPublicKey(ourPub)
	if err != nil {
		t.Fatal(err)
	}
	if err := cryptoutils.EqualKeys(a, b); err != nil {
		t.Fatalf("public keys differ: %v", err)
	}

	blob := []byte("archmirror interop blob\n")
	sig, err := Sign(sv, blob)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob"), blob, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob.sig"), sig, 0o600); err != nil {
		t.Fatal(err)
	}
	run("verify-blob", "--key", "cosign.pub", "--signature", "blob.sig", "--insecure-ignore-tlog=true", "blob")

	// A DSSE attestation about the blob verifies with cosign verify-blob-attestation.
	sum := sha256.Sum256(blob)
	stmt := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"blob","digest":{"sha256":"` +
		hex.EncodeToString(sum[:]) + `"}}],"predicateType":"https://archmirror.dev/attestations/mirror/v1","predicate":{"upstream":{"version":"1"}}}`)
	env, err := DSSE(sv, InTotoPayloadType, stmt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "att.json"), env, 0o600); err != nil {
		t.Fatal(err)
	}
	run("verify-blob-attestation", "--key", "cosign.pub", "--signature", "att.json",
		"--type", "https://archmirror.dev/attestations/mirror/v1", "--insecure-ignore-tlog=true", "blob")

	// And the CLI refuses it with another key.
	other := t.TempDir()
	cmd := exec.Command(cosign, "generate-key-pair")
	cmd.Dir = other
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign generate-key-pair: %v\n%s", err, out)
	}
	cmd = exec.Command(cosign, "verify-blob", "--key", filepath.Join(other, "cosign.pub"),
		"--signature", "blob.sig", "--insecure-ignore-tlog=true", "blob")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("cosign verify-blob accepted a signature with another key:\n%s", out)
	}
}
