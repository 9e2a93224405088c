package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzParse: any bytes give a config or an error that names the file, never a panic or a hang.
func FuzzParse(f *testing.F) {
	design, _ := os.ReadFile("testdata/design.yaml")
	f.Add(design)
	f.Add([]byte(base))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, *b]\n"))
	f.Add([]byte("apps: {x: {components: {y: {context: '{{ref \"y\"}}'}}}}"))
	f.Add([]byte("target: !!binary aGVsbG8=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		done := make(chan struct{})
		timer := time.AfterFunc(5*time.Second, func() {
			select {
			case <-done:
			default:
				panic(fmt.Sprintf("Parse hangs on %q", data))
			}
		})
		defer timer.Stop()
		cfg, err := Parse("f.yaml", data, noKinds{})
		close(done)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if cfg.Target.Registry == "" || len(cfg.Apps) == 0 || len(cfg.Platforms) == 0 {
			t.Fatalf("accepted an incomplete config: %+v", cfg)
		}
		for _, a := range cfg.Apps {
			if len(a.Components) == 0 || a.Versions == nil || a.Versions.Max < 1 {
				t.Fatalf("accepted app %s without components or window", a.Name)
			}
		}
	})
}
