package sign

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"
)

// fakeFulcio issues a certificate for the posted public key, as Fulcio's /api/v2/signingCert
// does, after checking the bearer token and the proof of possession.
func fakeFulcio(t *testing.T, token string, calls *atomic.Int32) *httptest.Server {
	t.Helper()
	caKey := mustP256(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake fulcio"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/api/v2/signingCert" || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "bad request", http.StatusUnauthorized)
			return
		}
		var req struct {
			PublicKeyRequest struct {
				PublicKey struct {
					Content string `json:"content"`
				} `json:"publicKey"`
				ProofOfPossession string `json:"proofOfPossession"`
			} `json:"publicKeyRequest"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey([]byte(req.PublicKeyRequest.PublicKey.Content))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		leaf := &x509.Certificate{
			SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(10 * time.Minute),
			EmailAddresses: []string{"ci@example.com"}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		}
		der, err := x509.CreateCertificate(rand.Reader, leaf, ca, pub, caKey)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		chain := []string{
			string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
			string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"signedCertificateEmbeddedSct": map[string]any{"chain": map[string]any{"certificates": chain}},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// fakeJWT is an unsigned token with the claims Fulcio's client reads (it does not verify).
func fakeJWT(sub string) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"sub": sub, "email": sub, "email_verified": true, "iss": "https://issuer.example"})
	return enc([]byte(`{"alg":"none"}`)) + "." + enc(claims) + ".sig"
}

func TestKeylessSignerOneCertificate(t *testing.T) {
	tok := fakeJWT("ci@example.com")
	var calls, tokenCalls atomic.Int32
	fulcio := fakeFulcio(t, tok, &calls)
	s, err := NewKeylessSigner(Keyless{
		FulcioURL: fulcio.URL, RekorURL: "off",
		IDToken: func(context.Context) (string, error) { tokenCalls.Add(1); return tok, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Keyless() || s.ID() != "keyless" {
		t.Fatalf("Keyless() = %v, ID = %q", s.Keyless(), s.ID())
	}
	var certs []string
	for i := range 3 {
		d := digestOf(strings.Repeat("x", i+1))
		raw, err := s.Bundle(context.Background(), statement(t, d, "https://example.com/p/v1"))
		if err != nil {
			t.Fatalf("Bundle %d: %v", i, err)
		}
		pb := &protobundle.Bundle{}
		if err := protojson.Unmarshal(raw, pb); err != nil {
			t.Fatal(err)
		}
		b, err := bundle.NewBundle(pb)
		if err != nil {
			t.Fatal(err)
		}
		vc, err := b.VerificationContent()
		if err != nil {
			t.Fatal(err)
		}
		cert := vc.Certificate()
		if cert == nil || len(cert.EmailAddresses) != 1 || cert.EmailAddresses[0] != "ci@example.com" {
			t.Fatalf("bundle %d: certificate %v", i, cert)
		}
		certs = append(certs, string(cert.Raw))
		// The DSSE signature verifies with the certificate's key.
		sc, err := b.SignatureContent()
		if err != nil {
			t.Fatal(err)
		}
		if err := verify.VerifySignature(sc, vc, nil); err != nil {
			t.Fatalf("bundle %d: signature: %v", i, err)
		}
		if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok {
			t.Fatalf("certificate key %T", cert.PublicKey)
		}
	}
	if calls.Load() != 1 || tokenCalls.Load() != 1 {
		t.Fatalf("fulcio called %d times, token fetched %d times; want one each for three bundles", calls.Load(), tokenCalls.Load())
	}
	if certs[0] != certs[1] || certs[1] != certs[2] {
		t.Fatal("bundles carry different certificates")
	}
}

func TestKeylessSignerErrors(t *testing.T) {
	if _, err := NewKeylessSigner(Keyless{}); err == nil {
		t.Fatal("keyless signer without a token source")
	}
	var calls atomic.Int32
	fulcio := fakeFulcio(t, fakeJWT("a@example.com"), &calls)
	const secret = "eyJ.hunter2.sig"
	s, err := NewKeylessSigner(Keyless{FulcioURL: fulcio.URL, RekorURL: "off",
		IDToken: func(context.Context) (string, error) { return secret, nil }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Bundle(context.Background(), statement(t, digestOf("x"), "https://example.com/p/v1"))
	if err == nil {
		t.Fatal("signed with a token fulcio refuses")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error carries the token: %v", err)
	}
}
