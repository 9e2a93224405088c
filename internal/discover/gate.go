package discover

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/platform"
	"github.com/archmirror/archmirror/internal/untrusted"
)

// Gate decides whether a version passes an app's require: gates.
type Gate interface {
	// Check returns "" when v passes, else why it does not ("gitlab framagit.org x/y: tag
	// v1.2.3-limitless not found"). An error means the gate could not be checked (network,
	// 5xx, a template that does not render): discovery fails rather than guess.
	Check(ctx context.Context, v Version) (reason string, err error)
}

// GateFunc adapts a function to Gate.
type GateFunc func(ctx context.Context, v Version) (string, error)

// Check calls f.
func (f GateFunc) Check(ctx context.Context, v Version) (string, error) { return f(ctx, v) }

// HTTPGate checks require: gates over HTTP: gitlab-tag gates through the GitLab API (with the
// token tokenFor allows: $GITLAB_TOKEN to gitlab.com, nothing to another host), url gates with
// HEAD, once per platform. Its requests count against the host limit (WithHostLimit) like the
// sources'.
type HTTPGate struct {
	reqs      []config.Require
	platforms []platform.Platform
	client    *http.Client // url gates: redirects followed, as downloads are
	api       *http.Client // gitlab-tag gates: no redirect to another host
	token     *string      // see options.gateToken
	userAgent string
}

// NewGate returns the gate for reqs; url gates are checked for each of platforms.
func NewGate(reqs []config.Require, platforms []platform.Platform, opts ...Option) *HTTPGate {
	o := newOptions(opts)
	var c http.Client
	if o.client != nil {
		c = *o.client
	}
	// A 5xx or a dropped connection is retried, as for the sources: one flaky HEAD must not
	// drop every version of the app. The timeouts are the sources' too (WithTimeouts).
	c.Transport = requestBound(o.requestTimeout, upstreamRetry.Transport(o.hostLimit.Transport(headerBound(o.headerTimeout, c.Transport))))
	api := c
	next := c.CheckRedirect
	api.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := sameHostRedirect(req, via); err != nil {
			return err
		}
		if len(via) > 0 && !sameOrigin(req.URL, via[0].URL) {
			req.Header.Del("Private-Token") // https to http on the same host
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &HTTPGate{reqs: reqs, platforms: platforms, client: &c, api: &api, token: o.gateToken(), userAgent: o.userAgent}
}

// Check checks every gate in order and returns the first failure.
func (g *HTTPGate) Check(ctx context.Context, v Version) (string, error) {
	for _, r := range g.reqs {
		if r.GitLabTag != nil {
			if reason, err := g.gitlabTag(ctx, r.GitLabTag, v); reason != "" || err != nil {
				return reason, err
			}
		}
		if r.URL != nil {
			plats := g.platforms
			if len(plats) == 0 {
				plats = []platform.Platform{{}}
			}
			for _, p := range plats {
				if reason, err := g.url(ctx, r.URL, v, p); reason != "" || err != nil {
					return reason, err
				}
			}
		}
	}
	return "", nil
}

func (g *HTTPGate) gitlabTag(ctx context.Context, gt *config.GitLabTag, v Version) (string, error) {
	host := gt.Host
	if host == "" {
		host = DefaultGitLabHost
	}
	name := "gitlab " + host + " " + gt.Project
	base, err := gitlabBase(host, gt.Project, "")
	if err != nil {
		return "", fmt.Errorf("gitlab %s %s: %w", untrusted.Quote(host, 80), untrusted.Quote(gt.Project, 120), err)
	}
	tag, err := gt.Tag.Render(config.Data{Version: v.Version, Tag: v.Tag}, nil)
	if err != nil {
		return "", fmt.Errorf("%s: tag: %w", name, err)
	}
	if tag == "" || len(tag) > 255 || strings.ContainsFunc(tag, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) {
		return "", fmt.Errorf("%s: tag %s: not a tag name", name, untrusted.Quote(tag, 80))
	}
	u, err := gitlabProjectURL(base, gt.Project, "/repository/tags/"+url.PathEscape(tag))
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", g.userAgent)
	token, err := tokenFor(&url.URL{Scheme: u.Scheme, Host: u.Host}, g.token)
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token)
	}
	resp, err := g.api.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s: tag %s: %w", name, tag, unwrapURLError(ctx, err))
	}
	drain(resp)
	switch resp.StatusCode {
	case http.StatusOK:
		return "", nil
	case http.StatusNotFound:
		return fmt.Sprintf("%s: tag %s not found", name, tag), nil
	}
	return "", fmt.Errorf("%s: tag %s: GET %s: %s", name, tag, u.EscapedPath(), statusText(resp.StatusCode))
}

// statusText is a status for a message: the code and its standard text, never the reason
// phrase a server (or whatever a redirect led to) chose.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprintf("status %d", code)
}

// url checks that the rendered URL answers 200 to HEAD (following redirects); a server that
// does not do HEAD (405, 501) is asked for its first byte with GET instead.
func (g *HTTPGate) url(ctx context.Context, t *config.Template, v Version, p platform.Platform) (string, error) {
	d := config.Data{Version: v.Version, Tag: v.Tag, OS: p.OS, Arch: p.Arch, Variant: p.Variant}
	if p.OS != "" {
		d.Platform = p.String()
	}
	raw, err := t.Render(d, nil)
	if err != nil {
		return "", fmt.Errorf("url %s: %w", t.Text, err)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("url %s: want an http(s) URL", untrusted.Quote(raw, 200))
	}
	shown := displayURL(u)
	on := ""
	if d.Platform != "" {
		on = " (" + d.Platform + ")"
	}
	status, statusText, err := g.probe(ctx, http.MethodHead, u)
	if err == nil && (status == http.StatusMethodNotAllowed || status == http.StatusNotImplemented) {
		status, statusText, err = g.probe(ctx, http.MethodGet, u)
	}
	if err != nil {
		return "", fmt.Errorf("url %s%s: %w", shown, on, err)
	}
	switch {
	case status == http.StatusOK || status == http.StatusPartialContent:
		return "", nil
	case status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
		return fmt.Sprintf("url %s%s: %s", shown, on, statusText), nil
	}
	return "", fmt.Errorf("url %s%s: %s", shown, on, statusText)
}

func (g *HTTPGate) probe(ctx context.Context, method string, u *url.URL) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("User-Agent", g.userAgent)
	if method == http.MethodGet {
		req.Header.Set("Range", "bytes=0-0")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", method, unwrapURLError(ctx, err))
	}
	resp.Body.Close() // never read (nor quoted): a server ignoring Range may be sending the whole file
	return resp.StatusCode, statusText(resp.StatusCode), nil
}

// displayURL is a URL for a message: no credentials, no query (it may carry a signature).
func displayURL(u *url.URL) string {
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" {
		s += "?…"
	}
	return s
}

func unwrapURLError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
