package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver/pb"

	"github.com/archmirror/archmirror/internal/redact"
	"github.com/archmirror/archmirror/internal/untrusted"
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
		if err == nil {
			err = checkGitRef(g)
		}
		if err != nil {
			return nil, fmt.Errorf("context %s: %w", untrusted.Quote(redact.Value(ctx), maxQuoted), err)
		}
		return g, nil
	}
	if strings.Contains(ctx, "://") {
		return nil, fmt.Errorf("context %s: not a git URL (want https://host/repo.git#ref:subdir, git://…)", untrusted.Quote(redact.Value(ctx), maxQuoted))
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
	src := source{where: redact.Value(g.Remote) + "#" + g.Ref + ":" + file}
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
		sizes, links := map[string]int64{}, map[string]string{}
		for _, e := range entries {
			sizes[e.Path] = e.Size
			if os.FileMode(e.Mode)&os.ModeSymlink != 0 {
				links[e.Path] = e.Linkname
			}
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
			// buildkitd would resolve a symlink inside the checkout (one to /etc/passwd
			// reads <checkout>/etc/passwd), but one that points out is refused, as for a
			// local context. It reads only a regular file; the size listed is a symlink's
			// own, so the read is bounded too.
			name := path.Join(path.Dir(file), f.name)
			if target, ok := links[f.name]; ok && (path.IsAbs(target) || !filepath.IsLocal(filepath.FromSlash(path.Join(path.Dir(name), target)))) {
				return nil, fmt.Errorf("%s is a symlink to %s, outside the context: refused", untrusted.Quote(name, maxQuoted), untrusted.Quote(target, maxQuoted))
			}
			if *f.dst, err = ref.ReadFile(ctx, gateway.ReadRequest{Filename: name, Range: &gateway.FileRange{Length: maxDockerfile + 1}}); err != nil {
				return nil, err
			}
			if len(*f.dst) > maxDockerfile {
				return nil, fmt.Errorf("%s is over %d bytes, more than a Dockerfile should be", name, maxDockerfile)
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
	md, err := gw.ResolveSourceMetadata(ctx, op, sourceresolver.Opt{LogName: "[internal] resolve " + redact.Value(op.Identifier)})
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

// localDockerfile reads the Dockerfile name (slash-separated, inside the context) of the local
// context dir, and the Dockerfile-specific "<name>.dockerignore" beside it. Both are opened
// through an os.Root on dir, so a symlink that leads out of the context (a Dockerfile ->
// /etc/shadow, a directory evil -> /etc, ../../..) is refused, never followed: archmirror does
// not read a file of the host, send it to buildkitd as a Dockerfile, or quote it in an error.
// A symlink that stays inside the context is followed, as BuildKit does.
func localDockerfile(dir, name string) (source, error) {
	src := source{where: filepath.Join(dir, filepath.FromSlash(name))}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return src, fmt.Errorf("context %s: %w", dir, err)
	}
	defer root.Close()
	if src.data, err = readConfined(root, dir, name); err != nil {
		return source{where: src.where}, err
	}
	src.ignore, err = readConfined(root, dir, name+".dockerignore")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		src.ignore = nil
	case err != nil:
		return source{where: src.where}, err
	}
	return src, nil
}

// readConfined reads the regular file name of root (the directory dir), at most maxDockerfile
// bytes. Errors name the file by its full path.
func readConfined(root *os.Root, dir, name string) ([]byte, error) {
	full := filepath.Join(dir, filepath.FromSlash(name))
	// O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below)
	f, err := root.OpenFile(filepath.FromSlash(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if link, target, ok := linkOut(dir, name); ok {
			return nil, fmt.Errorf("%s: %s is a symlink to %s, outside the context: refused", full, untrusted.Quote(link, maxQuoted), untrusted.Quote(target, maxQuoted))
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			pe.Path = full
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s): refused", full, st.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxDockerfile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxDockerfile {
		return nil, fmt.Errorf("%s is %d bytes, more than a Dockerfile should be", full, max(st.Size(), int64(len(b))))
	}
	return b, nil
}

// linkOut finds the first symlink on the way to name inside dir that leads outside dir (an
// absolute target, or one that climbs above dir), to say why os.Root refused to open it. It
// looks at each link alone: one inside that leads to another going out is not named.
func linkOut(dir, name string) (link, target string, ok bool) {
	rel := ""
	for _, part := range strings.Split(path.Clean(name), "/") {
		rel = path.Join(rel, part)
		st, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return "", "", false
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		t, err := os.Readlink(filepath.Join(dir, filepath.FromSlash(rel)))
		if err != nil {
			return "", "", false
		}
		if filepath.IsAbs(t) || !filepath.IsLocal(filepath.Join(filepath.Dir(filepath.FromSlash(rel)), t)) {
			return rel, t, true
		}
	}
	return "", "", false
}
