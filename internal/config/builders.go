package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
)

// builderSchemes are the BuildKit address schemes archmirror dials, each with the check of the
// rest of the address: unix and tcp natively, the others through the connection helpers
// BuildKit ships (internal/build imports them, and a test there keeps the two lists equal).
var builderSchemes = map[string]func(u *url.URL) error{
	"unix":              checkUnix,
	"tcp":               checkTCP,
	"docker-container":  checkContainer("context"),
	"podman-container":  checkContainer(),
	"nerdctl-container": checkContainer("namespace"),
	"kube-pod":          checkKubePod,
	"ssh":               checkSSH,
}

// BuilderExamples shows one address of each form, for messages.
const BuilderExamples = "unix:///run/buildkit/buildkitd.sock, tcp://host:1234, docker-container://NAME, " +
	"podman-container://NAME, nerdctl-container://NAME, kube-pod://POD?namespace=NS, ssh://user@host"

// BuilderSchemes are the address schemes a builders node may use, sorted.
func BuilderSchemes() []string {
	out := make([]string, 0, len(builderSchemes))
	for s := range builderSchemes {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// CheckBuilderAddress reports why addr is not a BuildKit address archmirror can dial. Errors
// quote no part of addr.
func CheckBuilderAddress(addr string) error {
	u, err := url.Parse(addr)
	if err != nil {
		return errors.New("not a URL")
	}
	check, ok := builderSchemes[u.Scheme]
	if !ok {
		return fmt.Errorf("unknown scheme (want one of %s)", BuilderExamples)
	}
	if u.Fragment != "" {
		return errors.New("a BuildKit address has no #fragment")
	}
	return check(u)
}

func checkUnix(u *url.URL) error {
	if u.Host != "" || u.Path == "" || u.RawQuery != "" {
		return errors.New("want unix:///absolute/path.sock")
	}
	return nil
}

func checkTCP(u *url.URL) error {
	if u.Hostname() == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return errors.New("want tcp://host:port")
	}
	if _, err := strconv.ParseUint(u.Port(), 10, 16); err != nil {
		return errors.New("want tcp://host:port, with a port")
	}
	return nil
}

// containerName is what docker, podman and nerdctl accept as a container name.
var containerName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// checkContainer checks SCHEME://NAME[?query], with only the query keys given.
func checkContainer(keys ...string) func(u *url.URL) error {
	return func(u *url.URL) error {
		if u.User != nil || u.Port() != "" || (u.Path != "" && u.Path != "/") || !containerName.MatchString(u.Hostname()) {
			return fmt.Errorf("want %s://CONTAINER (a container name)", u.Scheme)
		}
		return checkQuery(u, keys)
	}
}

// kubeName is what BuildKit's kube-pod helper accepts as a pod, namespace or container name.
var kubeName = regexp.MustCompile(`^[-a-z0-9.]+$`)

func checkKubePod(u *url.URL) error {
	if u.User != nil || u.Port() != "" || (u.Path != "" && u.Path != "/") || !kubeName.MatchString(u.Hostname()) {
		return errors.New("want kube-pod://POD[?namespace=NS&container=NAME&context=CTX], the pod's name in lower case")
	}
	if err := checkQuery(u, []string{"context", "namespace", "container"}); err != nil {
		return err
	}
	q := u.Query()
	for _, k := range []string{"namespace", "container"} {
		if v := q.Get(k); v != "" && !kubeName.MatchString(v) {
			return fmt.Errorf("kube-pod %s: want a Kubernetes name ([-a-z0-9.]+)", k)
		}
	}
	return nil
}

func checkSSH(u *url.URL) error {
	if u.Hostname() == "" || u.RawQuery != "" {
		return errors.New("want ssh://[user@]host[:port][/path/to/buildkitd.sock]")
	}
	if _, set := u.User.Password(); set {
		return errors.New("ssh:// takes no password in the address (use an SSH key or agent)")
	}
	if p := u.Port(); p != "" {
		if _, err := strconv.ParseUint(p, 10, 16); err != nil {
			return errors.New("ssh:// port: want a number")
		}
	}
	return nil
}

// checkQuery refuses query keys other than keys, and keys given twice.
func checkQuery(u *url.URL, keys []string) error {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Errorf("%s:// query: not a URL query", u.Scheme)
	}
	for k, v := range q {
		if !slices.Contains(keys, k) {
			if len(keys) == 0 {
				return fmt.Errorf("%s:// takes no ?query", u.Scheme)
			}
			return fmt.Errorf("%s:// query: unknown key (known: %v)", u.Scheme, keys)
		}
		if len(v) > 1 {
			return fmt.Errorf("%s:// query: %s given twice", u.Scheme, k)
		}
	}
	return nil
}

// checkNodeTLS reports what is wrong with nd's tls, if it has one.
func checkNodeTLS(nd Node) error {
	t := nd.TLS
	if t == nil {
		return nil
	}
	if u, err := url.Parse(nd.Addr); err != nil || u.Scheme != "tcp" {
		return errors.New("tls is for tcp:// addresses only")
	}
	if t.Cert.IsSet() != t.Key.IsSet() {
		return errors.New("tls: cert and key go together")
	}
	if !t.CA.IsSet() && !t.Cert.IsSet() && t.ServerName == "" {
		return errors.New("tls: empty (want ca, cert and key, server_name)")
	}
	return nil
}
