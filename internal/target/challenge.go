package target

import (
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// parseChallenge reads WWW-Authenticate headers (RFC 7235): the first Bearer challenge if any,
// else the first one. An empty result means Basic with no parameters, as go-containerregistry
// treats a 401 without a challenge.
func parseChallenge(headers []string) *transport.Challenge {
	var first *transport.Challenge
	for _, h := range headers {
		for _, c := range splitChallenges(h) {
			if strings.EqualFold(c.Scheme, "bearer") {
				return c
			}
			if first == nil {
				first = c
			}
		}
	}
	if first == nil {
		first = &transport.Challenge{Scheme: "Basic", Parameters: map[string]string{}}
	}
	return first
}

// splitChallenges parses one header value: `Bearer realm="https://x/token",service="x"`.
// Several challenges in one value are separated where a token follows a comma without "=".
func splitChallenges(h string) []*transport.Challenge {
	var out []*transport.Challenge
	var cur *transport.Challenge
	s := strings.TrimSpace(h)
	for s != "" {
		tok, rest := token(s)
		rest = strings.TrimLeft(rest, " \t")
		if tok == "" {
			return out // malformed: keep what was understood
		}
		if strings.HasPrefix(rest, "=") && cur != nil {
			// a parameter of the current challenge
			var val string
			val, rest = value(strings.TrimLeft(rest[1:], " \t"))
			cur.Parameters[strings.ToLower(tok)] = val
		} else {
			cur = &transport.Challenge{Scheme: tok, Parameters: map[string]string{}}
			out = append(out, cur)
		}
		s = strings.TrimLeft(rest, " \t,")
	}
	return out
}

// token splits off an RFC 7230 token.
func token(s string) (string, string) {
	i := strings.IndexFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '=' || r == ',' || r == '"'
	})
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// value splits off a token or a quoted string (with backslash escapes).
func value(s string) (string, string) {
	if !strings.HasPrefix(s, `"`) {
		return token(s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), "" // unterminated: take the rest
}
