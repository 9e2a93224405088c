// Package sign signs in-toto statements into Sigstore bundles (v0.3, a DSSE envelope plus its
// verification material), the format cosign v3 writes and reads by default as OCI referrers, and
// verifies them. The bundle itself is made and checked by sigstore-go; this package supplies the
// key: a private key file (offline), or an ephemeral key certified by Fulcio for an OIDC
// identity with a Rekor entry (keyless).
//
// Keys are cosign key files (the "ENCRYPTED SIGSTORE PRIVATE KEY" PEM written by
// `cosign generate-key-pair`, or the older "ENCRYPTED COSIGN PRIVATE KEY") decrypted with
// COSIGN_PASSWORD, or plain PKCS#8, SEC 1 (EC) and PKCS#1 (RSA) PEM private keys.
package sign

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
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
func LoadKey(pemBytes []byte, password func() ([]byte, error)) (*Key, error) {
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
	return newKey(priv)
}
