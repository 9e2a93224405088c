// Command gobin is a Go binary with a dependency, built by the tests to be catalogued.
package main

import (
	"fmt"

	"github.com/spdx/tools-golang/spdx"
)

func main() { fmt.Println(spdx.Version) }
