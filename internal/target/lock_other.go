//go:build !unix

package target

import (
	"context"
	"fmt"
	"runtime"
)

// lockDir has no implementation here: writing a layout without a lock could lose a tag.
func lockDir(context.Context, string) (func(), error) {
	return nil, fmt.Errorf("writing an OCI layout needs file locks, which archmirror does not implement on %s", runtime.GOOS)
}
