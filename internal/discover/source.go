package discover

import (
	"context"
	"fmt"

	"github.com/archmirror/archmirror/internal/config"
)

// New returns the source a config describes, built by its kind (see SourceKinds). The
// config's token (a secret reference) is read here; opts come after the config's own settings
// and override them.
func New(src config.Source, opts ...Option) (Source, error) {
	kind, err := SourceKinds().Of(src)
	if err != nil {
		return nil, err
	}
	var base []Option
	if src.Token.None {
		base = append(base, WithToken(""))
	}
	if src.Token.Ref != "" {
		token, err := src.Token.Value()
		if err != nil {
			return nil, fmt.Errorf("%s source: token: %w", kind.Name, err)
		}
		base = append(base, WithToken(token))
	}
	if src.MaxPages > 0 {
		base = append(base, WithMaxPages(src.MaxPages))
	}
	return kind.New(src, append(base, opts...)...), nil
}

// ForApp discovers app's versions with its own window (app.Versions, as the loader resolves
// it) and platforms: New, NewGate and Discover in one call.
func ForApp(ctx context.Context, app *config.App, opts ...Option) (Result, error) {
	src, err := New(app.Source, opts...)
	if err != nil {
		return Result{}, fmt.Errorf("discover %s: %w", app.Name, err)
	}
	win := config.Versions{}
	if app.Versions != nil {
		win = *app.Versions
	}
	var gate Gate
	if len(app.Require) > 0 {
		gate = NewGate(app.Require, app.Platforms, opts...)
	}
	res, err := Discover(ctx, src, app, win, gate, opts...)
	if rl, ok := src.(RateLimited); ok {
		res.RateLimit = rl.RateLimit()
	}
	return res, err
}

// RateLimited is implemented by the sources that see an API rate limit (GitHub, GitLab), for
// metrics: what the API last said of it, nil before any response.
type RateLimited interface {
	RateLimit() *RateLimit
}

var (
	_ RateLimited = (*GitHub)(nil)
	_ RateLimited = (*GitLab)(nil)
	_ Source      = (*GitHub)(nil)
	_ Source      = (*GitLab)(nil)
	_ Source      = (*Git)(nil)
	_ Source      = (*Registry)(nil)
	_ Gate        = (*HTTPGate)(nil)
)
