package sign

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/sigstore/sigstore/pkg/signature"
)

// InTotoPayloadType is the DSSE payload type of in-toto statements.
const InTotoPayloadType = "application/vnd.in-toto+json"

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse/blob/master/envelope.md).
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"` // standard base64
	Signatures  []Signature `json:"signatures"`
}

// Signature is one signature of an Envelope.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // standard base64 of the raw signature
}

// PAE is DSSE's pre-authentication encoding, the bytes actually signed:
// "DSSEv1 <len(type)> <type> <len(body)> <body>".
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// DSSE signs payload into a JSON DSSE envelope with one signature, as cosign attestations are
// (`cosign attest --key`). The keyid is empty, as cosign leaves it.
func DSSE(sv signature.Signer, payloadType string, payload []byte) ([]byte, error) {
	if payloadType == "" {
		return nil, errors.New("dsse: empty payload type")
	}
	sig, err := sv.SignMessage(bytes.NewReader(PAE(payloadType, payload)))
	if err != nil {
		return nil, fmt.Errorf("dsse: sign: %w", err)
	}
	b, err := json.Marshal(Envelope{
		PayloadType: payloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	})
	if err != nil {
		return nil, fmt.Errorf("dsse: %w", err)
	}
	return b, nil
}

// VerifyDSSE checks that at least one signature of a JSON DSSE envelope verifies with v, and
// returns the payload.
func VerifyDSSE(v signature.Verifier, envelope []byte) ([]byte, error) {
	var e Envelope
	if err := json.Unmarshal(envelope, &e); err != nil {
		return nil, fmt.Errorf("dsse: envelope: %w", err)
	}
	if e.PayloadType == "" {
		return nil, errors.New("dsse: envelope has no payloadType")
	}
	payload, err := decodeB64(e.Payload)
	if err != nil {
		return nil, fmt.Errorf("dsse: payload: %w", err)
	}
	if len(e.Signatures) == 0 {
		return nil, errors.New("dsse: envelope has no signatures")
	}
	pae := PAE(e.PayloadType, payload)
	var last error
	for i, s := range e.Signatures {
		raw, err := decodeB64(s.Sig)
		if err != nil {
			last = fmt.Errorf("signature %d: %w", i, err)
			continue
		}
		if err := v.VerifySignature(bytes.NewReader(raw), bytes.NewReader(pae)); err != nil {
			last = fmt.Errorf("signature %d: %w", i, err)
			continue
		}
		return payload, nil
	}
	return nil, fmt.Errorf("dsse: no signature verifies: %w", last)
}

// decodeB64 accepts standard and URL-safe base64, as the DSSE spec allows.
func decodeB64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	return b, nil
}
