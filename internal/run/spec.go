package run

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/archmirror/archmirror/internal/build"
	"github.com/archmirror/archmirror/internal/config"
	"github.com/archmirror/archmirror/internal/plan"
	"github.com/archmirror/archmirror/internal/platform"
)

// spec renders a job's templates for its platform.
func (s *syncer) spec(u *unit, j plan.Job, refs config.RefFunc) (build.Spec, error) {
	p, err := platform.Parse(j.Platform)
	if err != nil {
		return build.Spec{}, err
	}
	data := config.Data{Version: u.version.Version, Tag: u.version.Tag, OS: p.OS, Arch: p.Arch, Variant: p.Variant, Platform: p.String()}
	c := u.comp
	ctxText, err := c.Context.Render(data, refs)
	if err != nil {
		return build.Spec{}, fmt.Errorf("context: %w", err)
	}
	args := map[string]string{}
	for name, t := range c.Args {
		if args[name], err = t.Render(data, refs); err != nil {
			return build.Spec{}, fmt.Errorf("args.%s: %w", name, err)
		}
	}
	spec := build.Spec{
		JobID: j.ID, Platform: p, Context: s.resolveContext(ctxText), Dockerfile: c.Dockerfile,
		Patches: c.Patches, Args: args, Labels: s.annotations(u.app.App, c, u.version),
		SourceDateEpoch: u.version.Published, Output: s.tgt.Output(c.Name),
	}
	if c.Cache == "registry" {
		spec.CacheRef = spec.Output.Cache("cache-" + p.Slug())
	}
	return spec, nil
}

// resolveContext makes a local context relative to the config file's directory.
func (s *syncer) resolveContext(c string) string {
	if strings.Contains(c, "://") || strings.HasPrefix(c, "git@") || filepath.IsAbs(c) {
		return c
	}
	return filepath.Join(filepath.Dir(s.cfg.Path), c)
}

// ref resolves {{ref "component"}} for unit u: that component's index of the same version,
// by digest — published earlier in this run, or already complete in the target.
func (s *syncer) ref(u *unit, name string) (string, error) {
	from, err := s.tgt.Output(name).Pull()
	if err != nil {
		return "", fmt.Errorf("{{ref %q}}: %w", name, err)
	}
	if d, ok := s.index(unitKey{u.app.App.Name, name, u.version.Version}); ok {
		return from + "@" + d, nil
	}
	return "", fmt.Errorf("{{ref %q}}: %s %s is not published", name, name, u.version.Version)
}
