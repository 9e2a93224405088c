package testenv

import (
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/archmirror/archmirror/internal/fixture"
)

// DebsEnv and BasePath are fixture's, kept here for tests that name them.
const (
	DebsEnv  = fixture.DebsEnv
	BasePath = fixture.BasePath
)

// BaseImage pushes fixture.BaseIndex (a tiny two-platform busybox image) to
// registry/base:latest and returns the reference, the index digest and the linux/amd64
// manifest's digest.
func BaseImage(t testing.TB, registry string) (ref string, index, amd64Manifest v1.Hash) {
	t.Helper()
	idx, amd64, err := fixture.BaseIndex()
	if errors.Is(err, fixture.ErrMissing) {
		Missing(t, err.Error())
		return
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ref = registry + "/base:latest"
	return ref, Push(t, ref, idx), amd64
}
