package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// laughs is a "billion laughs": level 0 is a list of fan strings, each further level a list of
// fan aliases to the one before, starting at line first. indent prefixes every line.
func laughs(indent string, levels, fan int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%sl0: &l0 [%s]\n", indent, strings.TrimSuffix(strings.Repeat("lol, ", fan), ", "))
	for i := 1; i < levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*l%d, ", i-1), fan), ", ")
		fmt.Fprintf(&b, "%sl%d: &l%d [%s]\n", indent, i, i, refs)
	}
	return b.String()
}

// merges is a billion laughs of merge keys: each level a mapping merging fan aliases of the
// one before.
func merges(levels, fan int) string {
	var b strings.Builder
	b.WriteString("m0: &m0 {lol: lol}\n")
	for i := 1; i < levels; i++ {
		refs := strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*m%d, ", i-1), fan), ", ")
		fmt.Fprintf(&b, "m%d: &m%d {<<: [%s]}\n", i, i, refs)
	}
	return b.String()
}

// TestHostileConfig loads alias bombs and deep nesting, each placed where the loader would
// otherwise walk or decode it. Each must fail with an error that names the file and the line,
// having allocated little: a loader that expanded the aliases would need gigabytes (or hang).
func TestHostileConfig(t *testing.T) {
	body := strings.TrimPrefix(base, "target: {registry: oci:./mirror}\n")
	blockNest := func(levels int) string {
		var b strings.Builder
		for i := range levels {
			fmt.Fprintf(&b, "%sk:\n", strings.Repeat(" ", i))
		}
		return b.String()
	}
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			// Each level is 10× the last: the aliases of line 4 pass the bound.
			name: "billion laughs at the top level",
			yaml: laughs("", 9, 10) + base,
			want: "c.yaml:4: aliases expand to more than 10000 nodes",
		},
		{
			name: "billion laughs in a map the loader walks",
			yaml: "runners:\n" + laughs("  ", 9, 10) + base,
			want: "c.yaml:5: aliases expand to more than 10000 nodes",
		},
		{
			name: "billion laughs in a component's build args",
			yaml: strings.Replace(base, "{context: ./ctx}", "\n        context: ./ctx\n        args:\n"+laughs("          ", 9, 10), 1),
			want: "c.yaml:12: aliases expand to more than 10000 nodes",
		},
		{
			name: "billion laughs through merge keys",
			yaml: merges(9, 10) + "target: {registry: oci:./mirror, <<: *m8}\n" + body,
			want: "c.yaml:5: aliases expand to more than 10000 nodes",
		},
		{
			name: "a wide alias fan at one level",
			yaml: "x: &x [" + strings.Repeat("a, ", 200) + "a]\nplatforms: [" + strings.TrimSuffix(strings.Repeat("*x, ", 60), ", ") + "]\n" + body,
			want: "c.yaml:2: aliases expand to more than 10000 nodes",
		},
		{
			name: "flow nesting past the parser's bound on line 1",
			yaml: "target: " + strings.Repeat("[", 10_001) + strings.Repeat("]", 10_001) + "\n" + body,
			want: "c.yaml:1: YAML syntax: exceeded max depth of 10000",
		},
		{
			name: "flow nesting past the parser's bound further down",
			yaml: base + "runners: " + strings.Repeat("{a: ", 10_001) + "1" + strings.Repeat("}", 10_001) + "\n",
			want: "c.yaml:7: YAML syntax: exceeded max depth of 10000",
		},
		{
			name: "flow nesting within the parser's bound",
			yaml: strings.Replace(base, "{context: ./ctx}", "{context: ./ctx, args: {A: "+strings.Repeat("[", 9000)+strings.Repeat("]", 9000)+"}}", 1),
			want: "c.yaml:6: nested deeper than 64 levels",
		},
		{
			name: "block nesting",
			yaml: "target:\n" + blockNest(100),
			want: "c.yaml:65: nested deeper than 64 levels", // each line one level deeper
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := Parse("c.yaml", []byte(tt.yaml), noKinds{})
			runtime.ReadMemStats(&after)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %.500v\nwant it to contain %q", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), "c.yaml:") {
				t.Errorf("error does not name the file and line: %.200v", err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n > 3 {
				t.Errorf("%d errors: the bomb was walked anyway:\n%.500v", n, err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB for a %d-byte file", alloc>>20, len(tt.yaml))
			}
		})
	}
}

// TestHostileConfigFile: Load refuses a file larger than MaxFileSize, naming it, before
// parsing it.
func TestHostileConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(path, []byte(base+"# "+strings.Repeat("lol ", MaxFileSize/4)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, noKinds{}); err == nil || err.Error() != fmt.Sprintf("config %s: larger than %d bytes", path, MaxFileSize) {
		t.Fatalf("err = %.200v", err)
	}
}

// TestAliasesStillWork: the bounds leave the ordinary use of anchors alone.
func TestAliasesStillWork(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(`target: {registry: oci:./mirror}
apps:
  app:
    source: {github: acme/app}
    platforms: &plats [linux/arm64]
    components:
      app: {context: ./ctx, args: &args {A: x, B: "{{.Version}}"}}
  other:
    source: {github: acme/other}
    platforms: *plats
    components:
      other: {context: ./ctx, args: *args}
`), noKinds{})

	if err != nil {
		t.Fatal(err)
	}
	other := cfg.App("other")
	if len(other.Platforms) != 1 || other.Platforms[0].String() != "linux/arm64" {
		t.Errorf("platforms %v", other.Platforms)
	}
	if got, err := other.Components[0].Args["B"].Render(Data{Version: "1.2.3"}, nil); err != nil || got != "1.2.3" || other.Components[0].Args["A"].Text != "x" {
		t.Errorf("args %v: B = %q, %v", other.Components[0].Args, got, err)
	}
}
