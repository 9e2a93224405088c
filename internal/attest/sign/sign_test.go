package sign

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ssldsse "github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	"github.com/sigstore/sigstore/pkg/signature/payload"
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
			sv, err := LoadKey(tt.pem, tt.pw)
			if err != nil {
				t.Fatalf("LoadKey: %v", err)
			}
			pub, err := sv.PublicKey()
			if err != nil {
				t.Fatal(err)
			}
			if err := cryptoutils.EqualKeys(pub, tt.pub); err != nil {
				t.Fatalf("public key: %v", err)
			}
			payload := []byte("payload for " + tt.name)
			sig, err := Sign(sv, payload)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if err := Verify(sv, payload, sig); err != nil {
				t.Fatalf("Verify own signature: %v", err)
			}
			if err := Verify(sv, append(payload, '!'), sig); err == nil {
				t.Fatal("Verify accepted a changed payload")
			}
			// The public key PEM alone verifies, as cosign.pub would.
			pubPEM, err := PublicKeyPEM(sv)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pubPEM, []byte("-----BEGIN PUBLIC KEY-----")) {
				t.Fatalf("PublicKeyPEM = %q", pubPEM)
			}
			parsed, err := cryptoutils.UnmarshalPEMToPublicKey(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			v, err := signature.LoadDefaultVerifier(parsed)
			if err != nil {
				t.Fatal(err)
			}
			if err := Verify(v, payload, sig); err != nil {
				t.Fatalf("Verify with public key PEM: %v", err)
			}
		})
	}
}

func TestVerifyOtherKeyFails(t *testing.T) {
	a, err := LoadKey(pkcs8PEM(t, mustP256(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadKey(pkcs8PEM(t, mustP256(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("hello")
	sig, err := Sign(a, payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(b, payload, sig); err == nil {
		t.Fatal("a signature by key a verified with key b")
	}
	env, err := DSSE(a, InTotoPayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDSSE(b, env); err == nil {
		t.Fatal("a DSSE envelope by key a verified with key b")
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

func TestSimpleSigningPayload(t *testing.T) {
	d, err := v1.NewHash("sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	got, err := SimpleSigningPayload("ghcr.io/acme/mirror/mattermost", d, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Byte for byte what cosign (sigstore/sigstore pkg/signature/payload) writes.
	want := `{"critical":{"identity":{"docker-reference":"ghcr.io/acme/mirror/mattermost"},` +
		`"image":{"docker-manifest-digest":"sha256:` + strings.Repeat("ab", 32) + `"},` +
		`"type":"cosign container image signature"},"optional":null}`
	if string(got) != want {
		t.Fatalf("payload\n got %s\nwant %s", got, want)
	}

	// And what sigstore's payload.Cosign (used by cosign sign) marshals.
	ref, err := name.NewDigest("ghcr.io/acme/mirror/mattermost@" + d.String())
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := json.Marshal(payload.Cosign{Image: ref, Annotations: map[string]any{"a": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	ours, err := SimpleSigningPayload("ghcr.io/acme/mirror/mattermost", d, map[string]string{"a": "1"})
	if err != nil || !bytes.Equal(ours, theirs) {
		t.Fatalf("payload\n got %s\nwant %s (%v)", ours, theirs, err)
	}

	got, err = SimpleSigningPayload("ghcr.io/acme/mirror/mattermost", d, map[string]string{"b": "2", "a": "1"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(got, []byte(`"optional":{"a":"1","b":"2"}}`)) {
		t.Fatalf("payload with annotations = %s", got)
	}

	if _, err := SimpleSigningPayload("", d, nil); err == nil {
		t.Fatal("empty reference accepted")
	}
	if _, err := SimpleSigningPayload("x/y", v1.Hash{}, nil); err == nil {
		t.Fatal("empty digest accepted")
	}
}

func TestPAE(t *testing.T) {
	// The example in the DSSE protocol spec.
	got := PAE("http://example.com/HelloWorld", []byte("hello world"))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if string(got) != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
	if !bytes.Equal(got, ssldsse.PAE("http://example.com/HelloWorld", []byte("hello world"))) {
		t.Fatal("PAE differs from go-securesystemslib's")
	}
	if got := PAE("", nil); string(got) != "DSSEv1 0  0 " {
		t.Fatalf("empty PAE = %q", got)
	}
}

func TestDSSE(t *testing.T) {
	sv, err := LoadKey(pkcs8PEM(t, mustP256(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	stmt := []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[]}`)
	env, err := DSSE(sv, InTotoPayloadType, stmt)
	if err != nil {
		t.Fatal(err)
	}
	var e Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	if e.PayloadType != InTotoPayloadType || len(e.Signatures) != 1 {
		t.Fatalf("envelope = %+v", e)
	}
	payload, err := VerifyDSSE(sv, env)
	if err != nil {
		t.Fatalf("VerifyDSSE: %v", err)
	}
	if !bytes.Equal(payload, stmt) {
		t.Fatalf("payload = %s", payload)
	}

	// sigstore's own DSSE verifier (what cosign verify-attestation uses) accepts it.
	if err := sigdsse.WrapVerifier(sv).VerifySignature(bytes.NewReader(env), nil); err != nil {
		t.Fatalf("sigstore dsse verifier: %v", err)
	}
	// And we accept what sigstore's DSSE signer (cosign attest) writes.
	theirs, err := sigdsse.WrapSigner(sv, InTotoPayloadType).SignMessage(bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := VerifyDSSE(sv, theirs); err != nil || !bytes.Equal(p, stmt) {
		t.Fatalf("VerifyDSSE(sigstore envelope) = %s, %v", p, err)
	}

	// Tampering with the payload or its type breaks the signature.
	e.Payload = base64.StdEncoding.EncodeToString(append(stmt, ' '))
	tampered, _ := json.Marshal(e)
	if _, err := VerifyDSSE(sv, tampered); err == nil {
		t.Fatal("tampered payload verified")
	}
	_ = json.Unmarshal(env, &e)
	e.PayloadType = "application/json"
	tampered, _ = json.Marshal(e)
	if _, err := VerifyDSSE(sv, tampered); err == nil {
		t.Fatal("changed payload type verified")
	}
	for name, in := range map[string]string{
		"not json":      "nope",
		"no signatures": `{"payloadType":"x","payload":"","signatures":[]}`,
		"no type":       `{"payload":"","signatures":[{"sig":""}]}`,
	} {
		if _, err := VerifyDSSE(sv, []byte(in)); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := DSSE(sv, "", stmt); err == nil {
		t.Fatal("empty payload type accepted")
	}
}
