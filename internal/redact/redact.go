// Package redact hides secrets in what archmirror records or prints: build args whose names
// look secret, URL user info and well-known token formats. It knows nothing of where the text
// goes (a provenance statement, a log, an error); internal/untrusted makes text safe to show,
// this makes it safe to keep.
package redact

import (
	"maps"
	"regexp"
	"strings"
)

// Redacted is what a secret value is replaced with.
const Redacted = "[redacted]"

// secretNames are name fragments (compared upper-case) that make a build arg's value secret.
var secretNames = []string{"TOKEN", "PASSWORD", "PASSWD", "SECRET", "KEY", "CREDENTIAL", "AUTH", "PRIVATE"}

var (
	// scheme://userinfo@ anywhere in a value: a user name alone may be a token
	// ("https://TOKEN@host/"), so the user and the password both go.
	urlUserinfoRE = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s]*@`)
	// Well-known token formats: GitHub (classic and fine-grained) and GitLab personal/project tokens.
	tokenRE = regexp.MustCompile(`\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{20,})`)
)

// Args returns a copy of build args safe to record: a value whose name looks secret (contains
// TOKEN, PASSWORD, PASSWD, SECRET, KEY, CREDENTIAL, AUTH or PRIVATE, any case) becomes
// "[redacted]"; in other values, URL user info and GitHub/GitLab tokens are replaced by
// "[redacted]" (see Value). An empty value stays empty; a nil map gives nil. A value whose
// name looks secret is redacted whole, so long key or token blobs in it never survive.
func Args(args map[string]string) map[string]string {
	if args == nil {
		return nil
	}
	out := maps.Clone(args)
	for k, v := range out {
		if SecretName(k) {
			if v != "" {
				out[k] = Redacted
			}
			continue
		}
		out[k] = Value(v)
	}
	return out
}

// SecretName reports whether a variable name looks like it holds a secret.
func SecretName(name string) bool {
	u := strings.ToUpper(name)
	for _, s := range secretNames {
		if strings.Contains(u, s) {
			return true
		}
	}
	return false
}

// Value replaces the user info of any URL, user and password both, with "[redacted]"
// ("https://[redacted]@host/"), and any GitHub or GitLab token in s with "[redacted]".
func Value(s string) string {
	s = urlUserinfoRE.ReplaceAllString(s, "${1}"+Redacted+"@")
	return tokenRE.ReplaceAllString(s, Redacted)
}
