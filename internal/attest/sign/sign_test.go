package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func pkcs8PEM(t *testing.T, k crypto.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// cosignPEM writes a key the way `cosign generate-key-pair` does: PKCS#8 DER, encrypted with
// go-securesystemslib's scrypt+secretbox, in a PEM block of the given type.
func cosignPEM(t *testing.T, k crypto.PrivateKey, pemType string, password []byte) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemType, Bytes: enc})
}

func digestOf(s string) v1.Hash {
	sum := sha256.Sum256([]byte(s))
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// statement is a minimal in-toto statement about d.
func statement(t *testing.T, d v1.Hash, predicateType string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []map[string]any{{"name": "registry.example/app", "digest": map[string]string{d.Algorithm: d.Hex}}},
		"predicateType": predicateType,
		"predicate":     map[string]any{"hello": "world"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func static(pw string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(pw), nil }
}

func mustP256(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestLoadKeyFormats(t *testing.T) {
	p256 := mustP256(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(p256)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		pem  []byte
		pw   func() ([]byte, error)
		pub  crypto.PublicKey
	}{
		{"pkcs8 p256", pkcs8PEM(t, p256), nil, p256.Public()},
		{"pkcs8 p384", pkcs8PEM(t, p384), nil, p384.Public()},
		{"pkcs8 rsa", pkcs8PEM(t, rsaKey), nil, rsaKey.Public()},
		{"pkcs8 ed25519", pkcs8PEM(t, edKey), nil, edKey.Public()},
		{"sec1 ec", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER}), nil, p256.Public()},
		{"pkcs1 rsa", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}), nil, rsaKey.Public()},
		{"cosign sigstore p256", cosignPEM(t, p256, SigstorePrivateKeyPEMType, []byte("hunter2")), static("hunter2"), p256.Public()},
		{"cosign legacy p256", cosignPEM(t, p256, CosignPrivateKeyPEMType, []byte("hunter2")), static("hunter2"), p256.Public()},
		{"cosign empty password", cosignPEM(t, p256, SigstorePrivateKeyPEMType, []byte("")), static(""), p256.Public()},
		{"cosign ed25519", cosignPEM(t, edKey, SigstorePrivateKeyPEMType, []byte("pw")), static("pw"), edKey.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := LoadKey(tt.pem, tt.pw)
			if err != nil {
				t.Fatalf("LoadKey: %v", err)
			}
			if err := cryptoutils.EqualKeys(k.GetPublicKey(), tt.pub); err != nil {
				t.Fatalf("public key: %v", err)
			}
			// The public key PEM alone verifies what the key signs, as cosign.pub would.
			pubPEM, err := k.PublicKeyPEM()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----")) {
				t.Fatalf("PublicKeyPEM = %q", pubPEM)
			}
			v, err := NewKeyVerifier(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			d := digestOf("image for " + tt.name)
			b, err := NewKeySigner(k).Bundle(context.Background(), statement(t, d, "https://example.com/p/v1"))
			if err != nil {
				t.Fatalf("Bundle: %v", err)
			}
			st, err := v.Verify(b, d)
			if err != nil {
				t.Fatalf("Verify own bundle: %v", err)
			}
			if st.PredicateType != "https://example.com/p/v1" {
				t.Fatalf("predicate type %q", st.PredicateType)
			}
		})
	}
}

func TestVerifyFailures(t *testing.T) {
	a, err := LoadKey(pkcs8PEM(t, mustP256(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadKey(pkcs8PEM(t, mustP256(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf("subject")
	b, err := NewKeySigner(a).Bundle(context.Background(), statement(t, d, "https://example.com/p/v1"))
	if err != nil {
		t.Fatal(err)
	}
	aPub, _ := a.PublicKeyPEM()
	otherPub, _ := other.PublicKeyPEM()
	va, err := NewKeyVerifier(aPub)
	if err != nil {
		t.Fatal(err)
	}
	vOther, err := NewKeyVerifier(otherPub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := va.Verify(b, d); err != nil {
		t.Fatalf("own key: %v", err)
	}
	if _, err := vOther.Verify(b, d); err == nil {
		t.Error("a bundle by key a verified with key b")
	}
	if _, err := va.Verify(b, digestOf("another image")); err == nil {
		t.Error("a bundle about one digest verified for another")
	}
	// A changed payload breaks the signature.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	env := m["dsseEnvelope"].(map[string]any)
	payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
	env["payload"] = base64.StdEncoding.EncodeToString(bytes.Replace(payload, []byte("p/v1"), []byte("p/v2"), 1))
	tampered, _ := json.Marshal(m)
	if _, err := va.Verify(tampered, d); err == nil {
		t.Error("a tampered payload verified")
	}
	for name, in := range map[string][]byte{"not json": []byte("nope"), "empty": []byte("{}")} {
		if _, err := va.Verify(in, d); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := NewKeyVerifier([]byte("not a key")); err == nil {
		t.Error("NewKeyVerifier accepted garbage")
	}
}

func TestLoadKeyErrors(t *testing.T) {
	const password = "correct horse battery staple"
	k := mustP256(t)
	good := cosignPEM(t, k, SigstorePrivateKeyPEMType, []byte(password))

	// Wrong password: a clear message, ErrWrongPassword, and no secrets in the text.
	_, err := LoadKey(good, static("not-the-password"))
	if err == nil {
		t.Fatal("wrong password accepted")
	}
	if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "wrong password or corrupt key") {
		t.Fatalf("wrong password error = %q", err)
	}
	block, _ := pem.Decode(good)
	for _, secret := range []string{"not-the-password", password, string(block.Bytes[:40]), base64.StdEncoding.EncodeToString(block.Bytes)[:40]} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q contains secret %q", err, secret)
		}
	}

	// Corrupt ciphertext.
	var data map[string]any
	if err := json.Unmarshal(block.Bytes, &data); err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.StdEncoding.DecodeString(data["ciphertext"].(string))
	ct[len(ct)-1] ^= 1
	data["ciphertext"] = base64.StdEncoding.EncodeToString(ct)
	corrupt, _ := json.Marshal(data)
	_, err = LoadKey(pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyPEMType, Bytes: corrupt}), static(password))
	if !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("corrupt key error = %v", err)
	}

	// No password function for an encrypted key.
	if _, err := LoadKey(good, nil); err == nil || !strings.Contains(err.Error(), "COSIGN_PASSWORD") {
		t.Fatalf("nil password func error = %v", err)
	}

	// The password function's own error is passed on.
	boom := errors.New("terminal closed")
	if _, err := LoadKey(good, func() ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("password func error = %v", err)
	}

	for name, in := range map[string][]byte{
		"not pem":      []byte("hello"),
		"unknown type": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}),
		"bad pkcs8":    pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
		"pkcs8 enc":    pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}}),
	} {
		if _, err := LoadKey(in, static("x")); err == nil {
			t.Errorf("%s: LoadKey succeeded", name)
		}
	}
}
