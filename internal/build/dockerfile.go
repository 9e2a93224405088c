package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver/pb"
)

// maxDockerfile bounds what is read from a context as a Dockerfile.
const maxDockerfile = 1 << 20

// source is an upstream Dockerfile before patching.
type source struct {
	data   []byte
	ignore []byte  // the Dockerfile-specific "<name>.dockerignore" beside it, nil if none
	where  string  // for messages: the file's path, or "URL#ref:subdir/Dockerfile"
	pin    *gitPin // how buildkitd resolved a git context's ref; nil for a local context
}

// gitContext parses a git build context the way BuildKit's Dockerfile frontend does
// ("https://host/repo.git#ref:subdir", "git://…", "git@host:repo.git#ref"); it returns nil for
// a local directory.
func gitContext(ctx string) (*dfgitutil.GitRef, error) {
	if filepath.IsAbs(ctx) {
		return nil, nil
	}
	g, ok, err := dfgitutil.ParseGitRef(ctx)
	if ok {
		if err != nil {
			return nil, fmt.Errorf("context %q: %w", ctx, err)
		}
		return g, nil
	}
	if strings.Contains(ctx, "://") {
		return nil, fmt.Errorf("context %q: not a git URL (want https://host/repo.git#ref:subdir, git://…)", ctx)
	}
	return nil, nil
}

// contextDir is a local context as an absolute directory.
func contextDir(ctx string) (string, error) {
	dir, err := filepath.Abs(ctx)
	if err != nil {
		return "", fmt.Errorf("context %q: %w", ctx, err)
	}
	return dir, nil
}

// dockerfileName is the Dockerfile's path in the context (its subdir for a git context).
func dockerfileName(s Spec) string {
	if s.Dockerfile == "" {
		return "Dockerfile"
	}
	return s.Dockerfile
}

// gitDockerfile reads the Dockerfile of a git context through buildkitd itself, which fetches
// the repository at the ref (so the machine running archmirror needs neither git nor access
// to the repository, only buildkitd does).
func (b *BuildKit) gitDockerfile(ctx context.Context, c *client.Client, g *dfgitutil.GitRef, name string, sess []session.Attachable, log io.Writer) (source, error) {
	file := path.Join(g.SubDir, name)
	src := source{where: redact(g.Remote) + "#" + g.Ref + ":" + file}
	opts := []llb.GitOption{llb.GitRef(g.Ref), llb.WithCustomName("[internal] load " + src.where)}
	if g.Checksum != "" {
		opts = append(opts, llb.GitChecksum(g.Checksum))
	}
	if g.Submodules != nil && !*g.Submodules {
		opts = append(opts, llb.GitSkipSubmodules())
	}
	repo := llb.Git(g.Remote, "", opts...)

	read := func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		def, err := repo.Marshal(ctx)
		if err != nil {
			return nil, err
		}
		src.pin = resolveGit(ctx, gw, def)
		res, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		ref, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		// one ReadDir rather than a StatFile per name: a missing file is not an error here
		// (buildkitd would log each failed StatFile as one)
		base := path.Base(file)
		entries, err := ref.ReadDir(ctx, gateway.ReadDirRequest{Path: path.Dir(file), IncludePattern: base + "*"})
		if err != nil {
			return nil, fmt.Errorf("no %s in the repository at %s", file, g.Ref)
		}
		sizes := map[string]int64{}
		for _, e := range entries {
			sizes[e.Path] = e.Size
		}
		for _, f := range []struct {
			name     string
			dst      *[]byte
			optional bool
		}{{base, &src.data, false}, {base + ".dockerignore", &src.ignore, true}} {
			size, ok := sizes[f.name]
			switch {
			case !ok && f.optional:
				continue
			case !ok:
				return nil, fmt.Errorf("no %s in the repository at %s", file, g.Ref)
			case size > maxDockerfile:
				return nil, fmt.Errorf("%s is %d bytes, more than a Dockerfile should be", path.Join(path.Dir(file), f.name), size)
			}
			if *f.dst, err = ref.ReadFile(ctx, gateway.ReadRequest{Filename: path.Join(path.Dir(file), f.name)}); err != nil {
				return nil, err
			}
		}
		return gateway.NewResult(), nil
	}
	prog := newProgress(log, b.o.tailLines)
	_, err := c.Build(ctx, client.SolveOpt{Session: sess}, "archmirror", read, prog.ch)
	prog.wait()
	if err != nil {
		return source{}, fmt.Errorf("read %s: %w", src.where, prog.explain(err))
	}
	return src, nil
}

// resolveGit asks buildkitd what the git source of def resolves to, as the build's own
// resolution will: the pinned object and, for an annotated tag, the commit it points to. It
// only lists the remote's refs. A failure is kept in the pin (the build can go on without).
func resolveGit(ctx context.Context, gw gateway.Client, def *llb.Definition) *gitPin {
	pin := &gitPin{}
	var op *pb.SourceOp
	for _, dt := range def.Def {
		var o pb.Op
		if err := o.UnmarshalVT(dt); err != nil {
			pin.err = err
			return pin
		}
		if op = o.GetSource(); op != nil {
			break
		}
	}
	if op == nil {
		pin.err = errors.New("no git source in the definition")
		return pin
	}
	md, err := gw.ResolveSourceMetadata(ctx, op, sourceresolver.Opt{LogName: "[internal] resolve " + redact(op.Identifier)})
	switch {
	case err != nil:
		pin.err = err
	case md.Git == nil || md.Git.Checksum == "":
		pin.err = errors.New("buildkitd returned no git checksum")
	default:
		pin.checksum, pin.commit = md.Git.Checksum, md.Git.Checksum
		if md.Git.CommitChecksum != "" {
			pin.commit = md.Git.CommitChecksum
		}
	}
	return pin
}

// redact hides a password or token in a remote's URL ("https://user:xxxxx@host/repo.git").
func redact(remote string) string {
	u, err := url.Parse(remote)
	if err != nil || u.User == nil {
		return remote
	}
	return u.Redacted()
}

// localDockerfile reads the Dockerfile at p, in a local context directory.
func localDockerfile(p string) (source, error) {
	src := source{where: p}
	st, err := os.Stat(p)
	if err != nil {
		return src, err
	}
	if st.Size() > maxDockerfile {
		return src, fmt.Errorf("%s is %d bytes, more than a Dockerfile should be", p, st.Size())
	}
	if src.data, err = os.ReadFile(p); err != nil {
		return src, err
	}
	src.ignore, err = os.ReadFile(p + ".dockerignore")
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return src, err
}
