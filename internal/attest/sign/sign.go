// Package sign signs images and attestations with a private key, offline, in the formats cosign
// reads: the legacy "simple signing" payload with a base64 signature (the
// dev.cosignproject.cosign/signature annotation of a sha256-<hex>.sig image), and DSSE envelopes
// around in-toto statements.
//
// Keys are cosign key files (the "ENCRYPTED SIGSTORE PRIVATE KEY" PEM written by
// `cosign generate-key-pair`, or the older "ENCRYPTED COSIGN PRIVATE KEY") decrypted with
// COSIGN_PASSWORD, or plain PKCS#8, SEC 1 (EC) and PKCS#1 (RSA) PEM private keys.
package sign

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// PEM block types of cosign key files.
const (
	SigstorePrivateKeyPEMType = "ENCRYPTED SIGSTORE PRIVATE KEY" // cosign ≥ 2
	CosignPrivateKeyPEMType   = "ENCRYPTED COSIGN PRIVATE KEY"   // older cosign
)

// ErrWrongPassword is returned (wrapped) when an encrypted key does not open with the password.
var ErrWrongPassword = errors.New("wrong password or corrupt key")

// LoadKey opens a PEM private key. password is called only for encrypted cosign key files; it
// may be nil for plain keys. Errors never contain the password or key material.
//
// The signer uses the key's default algorithm in the Sigstore algorithm registry, as cosign does
// when it loads a key: ECDSA P-256 with SHA-256 (cosign's default key), P-384 with SHA-384,
// RSA PKCS#1 v1.5 with SHA-256, pure Ed25519.
func LoadKey(pemBytes []byte, password func() ([]byte, error)) (signature.SignerVerifier, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("load key: no PEM block found")
	}
	var (
		priv crypto.PrivateKey
		err  error
	)
	switch block.Type {
	case SigstorePrivateKeyPEMType, CosignPrivateKeyPEMType:
		if password == nil {
			return nil, fmt.Errorf("load key: %s needs a password (COSIGN_PASSWORD)", block.Type)
		}
		pw, perr := password()
		if perr != nil {
			return nil, fmt.Errorf("load key: password: %w", perr)
		}
		der, derr := encrypted.Decrypt(block.Bytes, pw)
		clear(pw)
		if derr != nil {
			// The JSON wrapper, scrypt parameters or secretbox failed; none of these messages
			// carry secrets, but a failed secretbox open is nearly always a wrong password.
			return nil, fmt.Errorf("load key: %s: %w", block.Type, ErrWrongPassword)
		}
		priv, err = x509.ParsePKCS8PrivateKey(der)
		clear(der)
		if err != nil {
			return nil, fmt.Errorf("load key: %s: decrypted key is not PKCS#8: %w", block.Type, ErrWrongPassword)
		}
	case "PRIVATE KEY":
		priv, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		priv, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		priv, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("load key: encrypted PKCS#8 keys are not supported; use a cosign key file or a plain PEM key")
	default:
		return nil, fmt.Errorf("load key: unsupported PEM type %q", block.Type)
	}
	if err != nil {
		// x509 parse errors describe the structure, not the bytes.
		return nil, fmt.Errorf("load key: %s: %w", block.Type, err)
	}
	sv, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	return sv, nil
}

// PublicKeyPEM returns the signer's public key as a PKIX "PUBLIC KEY" PEM block, the form of
// cosign.pub.
func PublicKeyPEM(sv signature.SignerVerifier) ([]byte, error) {
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	b, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return b, nil
}

// SimpleSigningType is the "type" of cosign's simple-signing payload.
const SimpleSigningType = "cosign container image signature"

// SimpleSigning is cosign's "simple signing" payload (the layer of a sha256-<hex>.sig image).
type SimpleSigning struct {
	Critical Critical          `json:"critical"`
	Optional map[string]string `json:"optional"`
}

// Critical is the part of a simple-signing payload a verifier must check.
type Critical struct {
	Identity Identity `json:"identity"`
	Image    Image    `json:"image"`
	Type     string   `json:"type"`
}

// Identity names the signed repository.
type Identity struct {
	DockerReference string `json:"docker-reference"`
}

// Image names the signed manifest.
type Image struct {
	DockerManifestDigest string `json:"docker-manifest-digest"`
}

// SimpleSigningPayload returns cosign's simple-signing JSON for a manifest digest in a
// repository (dockerReference is the repository without tag or digest, as cosign writes it).
// annotations become "optional"; nil gives "optional": null, as cosign writes when there are none.
func SimpleSigningPayload(dockerReference string, manifestDigest v1.Hash, annotations map[string]string) ([]byte, error) {
	if dockerReference == "" {
		return nil, errors.New("simple signing: empty docker reference")
	}
	if manifestDigest.Algorithm == "" || manifestDigest.Hex == "" {
		return nil, errors.New("simple signing: empty manifest digest")
	}
	var opt map[string]string
	if len(annotations) > 0 {
		opt = annotations
	}
	b, err := json.Marshal(SimpleSigning{
		Critical: Critical{
			Identity: Identity{DockerReference: dockerReference},
			Image:    Image{DockerManifestDigest: manifestDigest.String()},
			Type:     SimpleSigningType,
		},
		Optional: opt,
	})
	if err != nil {
		return nil, fmt.Errorf("simple signing: %w", err)
	}
	return b, nil
}

// Sign signs payload and returns the signature base64-encoded, as cosign stores it in the
// dev.cosignproject.cosign/signature annotation (and as `cosign verify-blob --signature` reads it).
func Sign(sv signature.Signer, payload []byte) ([]byte, error) {
	raw, err := sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(out, raw)
	return out, nil
}

// Verify checks a base64 signature made by Sign.
func Verify(v signature.Verifier, payload, sigB64 []byte) error {
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sigB64)))
	if err != nil {
		return fmt.Errorf("verify: signature is not base64: %w", err)
	}
	if err := v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(payload)); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}
