package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key is a loaded private key. It is the sigstore-go Keypair that signs bundles, so a bundle
// made with it carries the public key's hint as its verification material, as `cosign sign
// --key` writes.
type Key struct {
	sv   signature.SignerVerifier
	alg  signature.AlgorithmDetails
	pub  crypto.PublicKey
	hint []byte
}

var _ sgsign.Keypair = (*Key)(nil)

// newKey wraps priv with the algorithm cosign picks for such a key.
func newKey(priv crypto.PrivateKey) (*Key, error) {
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load key: %T cannot sign", priv)
	}
	pub := signer.Public()
	alg, err := signature.GetDefaultAlgorithmDetails(pub)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	sv, err := signature.LoadSignerVerifierFromAlgorithmDetails(priv, alg)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &Key{sv: sv, alg: alg, pub: pub, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

// PublicKeyPEM returns the public key as a PKIX "PUBLIC KEY" PEM block, the form of cosign.pub.
func (k *Key) PublicKeyPEM() ([]byte, error) {
	b, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return b, nil
}

// GetHashAlgorithm implements sgsign.Keypair.
func (k *Key) GetHashAlgorithm() protocommon.HashAlgorithm { return k.alg.GetProtoHashType() }

// GetSigningAlgorithm implements sgsign.Keypair.
func (k *Key) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return k.alg.GetSignatureAlgorithm()
}

// GetHint implements sgsign.Keypair: base64 of the SHA-256 of the public key's DER, as
// sigstore-go's own keypairs use.
func (k *Key) GetHint() []byte { return k.hint }

// GetKeyAlgorithm implements sgsign.Keypair.
func (k *Key) GetKeyAlgorithm() string {
	switch k.alg.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.RSA:
		return "RSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

// GetPublicKey implements sgsign.Keypair.
func (k *Key) GetPublicKey() crypto.PublicKey { return k.pub }

// GetPublicKeyPem implements sgsign.Keypair.
func (k *Key) GetPublicKeyPem() (string, error) {
	b, err := k.PublicKeyPEM()
	return string(b), err
}

// SignData implements sgsign.Keypair: the signature of data, and the digest that was signed
// (data itself for pure Ed25519).
func (k *Key) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	sig, err := k.sv.SignMessage(bytes.NewReader(data))
	if err != nil {
		return nil, nil, fmt.Errorf("sign: %w", err)
	}
	signed := data
	if hf := k.alg.GetHashType(); hf != crypto.Hash(0) {
		h := hf.New()
		h.Write(data)
		signed = h.Sum(nil)
	}
	return sig, signed, nil
}
