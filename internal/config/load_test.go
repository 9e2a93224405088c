package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadDesignExample(t *testing.T) {
	cfg, err := Load("testdata/design.yaml", noKinds{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(cfg.Apps); got != 3 {
		t.Fatalf("apps = %d, want 3", got)
	}
	if names := []string{cfg.Apps[0].Name, cfg.Apps[1].Name, cfg.Apps[2].Name}; strings.Join(names, ",") != "mattermost,mostlymatter,outline" {
		t.Errorf("apps not in file order: %v", names)
	}
	if cfg.Schedule != DefaultSchedule || cfg.Versions.Max != 10 || cfg.Versions.Order != OrderPublished {
		t.Errorf("defaults: schedule %q, max %d, order %q", cfg.Schedule, cfg.Versions.Max, cfg.Versions.Order)
	}
	if cfg.Sign.Key.Ref != "env://COSIGN_PRIVATE_KEY" || cfg.Sign.Off {
		t.Errorf("sign = %+v", cfg.Sign)
	}
	mm := cfg.App("mostlymatter")
	if len(mm.Require) != 2 || mm.Require[0].GitLabTag.Host != "framagit.org" || mm.Require[1].URL == nil {
		t.Errorf("mostlymatter require = %+v", mm.Require)
	}
	patches := mm.Components[0].Patches
	if len(patches) != 3 || !patches[0].UnpinDigests || patches[1].InsertAfter == nil || patches[2].Replace == nil {
		t.Fatalf("patches = %+v", patches)
	}
	if !patches[2].Replace.MatchRE.MatchString("curl | tar -xvz") {
		t.Error("replace regex not compiled")
	}
	ol := cfg.App("outline")
	if ol.Components[0].Name != "outline-base" || ol.Components[0].Dockerfile != "Dockerfile.base" {
		t.Errorf("outline-base = %+v", ol.Components[0])
	}
	deps, err := ol.Components[1].Dependencies()
	if err != nil || len(deps) != 1 || deps[0] != "outline-base" {
		t.Errorf("outline dependencies = %v, %v", deps, err)
	}
	got, err := ol.Components[1].Args["BASE_IMAGE"].Render(Data{Version: "0.82.0"}, func(c string) (string, error) {
		return "reg/" + c + "@sha256:abc", nil
	})
	if err != nil || got != "reg/outline-base@sha256:abc" {
		t.Errorf("BASE_IMAGE = %q, %v", got, err)
	}
	arg, err := cfg.App("mattermost").Components[0].Args["MM_PACKAGE"].Render(Data{Version: "10.3.1", Arch: "arm64"}, nil)
	if err != nil || arg != "https://releases.mattermost.com/10.3.1/mattermost-10.3.1-linux-arm64.tar.gz?src=docker" {
		t.Errorf("MM_PACKAGE = %q, %v", arg, err)
	}
	if len(ol.Platforms) != 2 || ol.Platforms[1].String() != "linux/arm64" || *ol.Versions != cfg.Versions {
		t.Errorf("app defaults not inherited: %v %+v", ol.Platforms, ol.Versions)
	}
}

const base = `target: {registry: oci:./mirror}
apps:
  app:
    source: {github: acme/app}
    components:
      app: {context: ./ctx}
`

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // every one must appear in the error
	}{
		{"unknown top-level field", "targett: {registry: x}\n" + base, []string{"c.yaml:1: targett: unknown field (known: apps, builders,"}},
		{"misspelt nested field", strings.Replace(base, "{context: ./ctx}", "{context: ./ctx, dockerfiel: D}", 1),
			[]string{"c.yaml:6: apps.app.components.app.dockerfiel: unknown field"}},
		{"misspelt source field", strings.Replace(base, "{github: acme/app}", "{github: acme/app, incude: x}", 1),
			[]string{"c.yaml:4: apps.app.source.incude: unknown field"}},
		{"bad regex", strings.Replace(base, "{github: acme/app}", "{github: acme/app, include: '^v(10'}", 1),
			[]string{"c.yaml:4: apps.app.source.include: bad regular expression"}},
		{"version regex without group", strings.Replace(base, "{github: acme/app}", "{github: acme/app, version: '^v.*'}", 1),
			[]string{"apps.app.source.version: needs a capture group"}},
		{"bad template", strings.Replace(base, "{context: ./ctx}", "{context: './{{.Version'}", 1),
			[]string{"c.yaml:6: apps.app.components.app.context: template:"}},
		{"unknown template field", strings.Replace(base, "{context: ./ctx}", "{context: './{{.Verison}}'}", 1),
			[]string{"c.yaml:6: apps.app.components.app.context:", "Verison"}},
		{"bad platform", "platforms: [linux/amd64, linux/amd46]\n" + base, []string{"c.yaml:1: platforms[1]: platform \"linux/amd46\": unknown architecture"}},
		{"duplicate platform", "platforms: [linux/arm64, linux/arm64/v8]\n" + base, []string{"platforms[1]: linux/arm64 is listed twice"}},
		{"bad cron", "schedule: '0 */6 * *'\n" + base, []string{"c.yaml:1: schedule: bad cron spec"}},
		{"bad timezone", "timezone: Mars/Olympus\n" + base, []string{"c.yaml:1: timezone: unknown time zone"}},
		{"inline secret", "sign: {key: hunter2-secret-key}\n" + base, []string{"c.yaml:1: sign.key: secrets must come from env://NAME or file:///path"}},
		{"key and keyless", "sign: {key: env://K, keyless: true}\n" + base, []string{"sign: key and keyless: true exclude each other"}},
		{"empty sign", "sign: {}\n" + base, []string{"c.yaml:1: sign: want key: env://NAME"}},
		{"fulcio with a key", "sign: {key: env://K, fulcio: 'https://f.example'}\n" + base, []string{"sign: fulcio, rekor and identity_token are for keyless: true"}},
		{"password keyless", "sign: {keyless: true, password: env://P}\n" + base, []string{"sign: password is for a key"}},
		{"bad rekor", "sign: {keyless: true, rekor: 'ftp://r'}\n" + base, []string{"sign: \"ftp://r\": want an http(s) URL"}},
		{"fulcio off", "sign: {keyless: true, fulcio: 'off'}\n" + base, []string{"sign: fulcio cannot be off"}},
		{"inline token", "sign: {keyless: true, identity_token: eyJhbGciOi}\n" + base, []string{"sign.identity_token: secrets must come from"}},
		{"wrong kind", "versions: {max: ten}\n" + base, []string{"c.yaml:1: versions.max: want a whole number, got \"ten\""}},
		{"bad order", "versions: {order: newest}\n" + base, []string{"versions.order: \"newest\": want published"}},
		{"bad constraint", "versions: {constraint: '>= x.y'}\n" + base, []string{"versions.constraint: bad semver constraint"}},
		{"no target", strings.Replace(base, "target: {registry: oci:./mirror}", "target: {}", 1), []string{"c.yaml:1: target.registry: required"}},
		{"target with scheme", strings.Replace(base, "oci:./mirror", "https://ghcr.io/acme", 1), []string{"target.registry: \"https://ghcr.io/acme\": write the registry without a scheme"}},
		{"no apps", "target: {registry: oci:./m}\n", []string{"apps: required"}},
		{"no components", strings.Replace(base, "    components:\n      app: {context: ./ctx}\n", "", 1), []string{"apps.app.components: required"}},
		{"bad component name", strings.Replace(base, "      app: {", "      App_Web: {", 1), []string{"apps.app.components.App_Web: component names become repository names"}},
		{"unknown patch", strings.Replace(base, "{context: ./ctx}", "{context: ./ctx, patches: [unpin]}", 1), []string{"apps.app.components.app.patches[0]: unknown patch \"unpin\""}},
		{"patch bad regex", strings.Replace(base, "{context: ./ctx}", "{context: ./ctx, patches: [{replace: {match: '(', with: x}}]}", 1),
			[]string{"apps.app.components.app.patches[0]: replace.match: bad regular expression"}},
		{"ref to unknown component", strings.Replace(base, "{context: ./ctx}", "{context: ./ctx, args: {B: '{{ref \"base\"}}'}}", 1),
			[]string{"apps.app.components.app: depends on \"base\", which is not a component of app app"}},
		{"bad arg name", strings.Replace(base, "{context: ./ctx}", "{context: ./ctx, args: {'A-B': x}}", 1), []string{"apps.app.components.app.args.A-B: not a build argument name"}},
		{"bad builder", "builders: {default: /run/buildkit.sock}\n" + base, []string{"builders.default: \"/run/buildkit.sock\" is not a BuildKit address"}},
		{"bad builder in a list", "builders: {linux/arm64: [tcp://a:1234, 'b:1234']}\n" + base, []string{"builders.linux/arm64[1]: \"b:1234\" is not a BuildKit address"}},
		{"builder twice", "builders: {linux/arm64: [tcp://a:1234, tcp://a:1234]}\n" + base, []string{"builders.linux/arm64[1]: tcp://a:1234 is listed twice"}},
		{"builder without addr", "builders: {linux/arm64: [{max: 2}]}\n" + base, []string{"a node needs addr"}},
		{"builder unknown field", "builders: {linux/arm64: [{addr: 'tcp://a:1', maxx: 2}]}\n" + base, []string{"maxx"}},
		{"negative max", "builders: {linux/arm64: [{addr: 'tcp://a:1', max: -1}]}\n" + base, []string{"max -1"}},
		{"docker-container without name", "builders: {default: 'docker-container://'}\n" + base, []string{"c.yaml:1: builders.default: \"docker-container://\" is not a BuildKit address: want docker-container://CONTAINER"}},
		{"unknown scheme", "builders: {default: 'foo://x'}\n" + base, []string{"c.yaml:1: builders.default: \"foo://x\" is not a BuildKit address: unknown scheme"}},
		{"npipe is Windows only", "builders: {default: 'npipe:////./pipe/buildkitd'}\n" + base, []string{"c.yaml:1: builders.default:", "unknown scheme"}},
		{"tcp without port", "builders: {default: 'tcp://host'}\n" + base, []string{"c.yaml:1: builders.default:", "with a port"}},
		{"unix relative", "builders: {default: 'unix://buildkitd.sock'}\n" + base, []string{"c.yaml:1: builders.default:", "want unix:///absolute/path.sock"}},
		{"ssh password", "builders: {default: 'ssh://me:pw@host'}\n" + base, []string{"c.yaml:1: builders.default:", "no password"}},
		{"kube-pod upper case", "builders: {default: 'kube-pod://Pod'}\n" + base, []string{"c.yaml:1: builders.default:", "want kube-pod://POD"}},
		{"kube-pod unknown query", "builders: {default: 'kube-pod://pod?ns=x'}\n" + base, []string{"c.yaml:1: builders.default:", "unknown key"}},
		{"podman query", "builders: {default: 'podman-container://b?context=x'}\n" + base, []string{"c.yaml:1: builders.default:", "takes no ?query"}},
		{"tls on unix", "builders:\n  default:\n    - {addr: 'unix:///run/b.sock', tls: {ca: 'file:///ca.pem'}}\n" + base, []string{"c.yaml:3: builders.default: \"unix:///run/b.sock\": tls is for tcp:// addresses only"}},
		{"tls on docker-container", "builders:\n  default:\n    - {addr: 'docker-container://b', tls: {ca: 'file:///ca.pem'}}\n" + base, []string{"c.yaml:3: builders.default:", "tls is for tcp://"}},
		{"cert without key", "builders:\n  default:\n    - {addr: 'tcp://b:1234', tls: {ca: 'file:///ca.pem', cert: 'file:///c.pem'}}\n" + base, []string{"c.yaml:3: builders.default: \"tcp://b:1234\": tls: cert and key go together"}},
		{"key without cert", "builders:\n  default:\n    - {addr: 'tcp://b:1234', tls: {key: 'env://KEY'}}\n" + base, []string{"c.yaml:3:", "cert and key go together"}},
		{"tls differs between keys", "builders:\n  default: [{addr: 'tcp://b:1234', tls: {ca: 'file:///ca.pem'}}]\n  linux/arm64: tcp://b:1234\n" + base, []string{"c.yaml:3: builders.linux/arm64: tcp://b:1234 is listed elsewhere in builders with another tls"}},
		{"line of the node in a list", "builders:\n  default:\n    - tcp://a:1234\n    - addr: tcp://b:1234\n      max: 1\n      tls:\n        cert: file:///c.pem\n" + base, []string{"c.yaml:7: builders.default[1]: \"tcp://b:1234\": tls: cert and key go together"}},
		{"line of a bad address in a list", "builders:\n  default:\n    - tcp://a:1234\n    - docker-container://\n" + base, []string{"c.yaml:4: builders.default[1]: \"docker-container://\" is not a BuildKit address"}},
		{"tls empty", "builders:\n  default:\n    - {addr: 'tcp://b:1234', tls: {}}\n" + base, []string{"c.yaml:3:", "tls: empty"}},
		{"tls key inline", "builders:\n  default:\n    - {addr: 'tcp://b:1234', tls: {cert: 'file:///c.pem', key: '-----BEGIN'}}\n" + base, []string{"c.yaml:3: builders.default[0].tls.key:", "secrets must come from env://NAME"}},
		{"tls unknown field", "builders:\n  default:\n    - {addr: 'tcp://b:1234', tls: {ca: 'file:///ca.pem', servername: x}}\n" + base, []string{"c.yaml:3: builders.default[0].tls.servername: unknown field"}},
		{"emulation not bool", "emulation: sometimes\n" + base, []string{"emulation"}},
		{"bad require", strings.Replace(base, "    components:", "    require: [{url: 'ftp://x/{{.Arch}}'}]\n    components:", 1), []string{"apps.app.require[0].url:", "does not render to an http(s) URL"}},
		{"syntax error", "target: [\n", []string{"c.yaml:", "YAML syntax"}},
		{"two documents", base + "---\n" + base, []string{"more than one YAML document"}},
		{"component in two apps", base + "  other:\n    source: {github: acme/other}\n    components:\n      app: {context: ./x}\n",
			[]string{"c.yaml:10: apps.other.components.app: component \"app\" is also defined by app app"}},
		{"cycle", strings.Replace(base, "      app: {context: ./ctx}\n", "      a: {context: ./a, depends: [b]}\n      b: {context: ./b, depends: [a]}\n", 1),
			[]string{"components depend on each other in a cycle: a → b → a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml), noKinds{})
			if err == nil {
				t.Fatalf("no error for:\n%s", tt.yaml)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is %T, want *config.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error leaks the inline secret: %v", err)
			}
		})
	}
}

func TestLoadReportsEveryError(t *testing.T) {
	y := "platforms: [linux/x]\nschedule: nope\n" + strings.Replace(base, "{github: acme/app}", "{github: acme/app, include: '('}", 1)
	_, err := Parse("c.yaml", []byte(y), noKinds{})
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Errors) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
}

func TestSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tok")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AM_TEST_TOKEN", "from-env")
	cfg, err := Parse("c.yaml", []byte("target: {registry: r.example/ns, username: u, password: env://AM_TEST_TOKEN}\n"+
		"sign: {key: file://"+path+"}\n"+strings.TrimPrefix(base, "target: {registry: oci:./mirror}\n")), noKinds{})

	if err != nil {
		t.Fatal(err)
	}
	if v, err := cfg.Target.Password.Value(); err != nil || v != "from-env" {
		t.Errorf("env secret = %q, %v", v, err)
	}
	if v, err := cfg.Sign.Key.Value(); err != nil || v != "s3cret" {
		t.Errorf("file secret = %q, %v", v, err)
	}
	if s := cfg.Target.Password.String(); strings.Contains(s, "from-env") {
		t.Errorf("String() leaks: %s", s)
	}
	missing := Secret{Ref: "env://AM_TEST_UNSET_VAR"}
	if _, err := missing.Value(); err == nil || !strings.Contains(err.Error(), "AM_TEST_UNSET_VAR is not set") {
		t.Errorf("unset secret: %v", err)
	}
}

func TestSignOff(t *testing.T) {
	for _, v := range []string{"off", "false"} {
		cfg, err := Parse("c.yaml", []byte("sign: "+v+"\n"+base), noKinds{})
		if err != nil || !cfg.Sign.Off {
			t.Errorf("sign: %s → %+v, %v", v, cfg.Sign, err)
		}
	}
}

func TestBuilderAddresses(t *testing.T) {
	for _, addr := range []string{
		"unix:///run/buildkit/buildkitd.sock",
		"tcp://arm-1:1234",
		"tcp://10.0.0.1:1234",
		"tcp://[::1]:1234",
		"docker-container://buildx_buildkit_mybuilder0",
		"docker-container://b?context=remote",
		"podman-container://buildkitd",
		"nerdctl-container://buildkitd",
		"nerdctl-container://buildkitd?namespace=default",
		"kube-pod://buildkitd-0",
		"kube-pod://buildkitd-0?namespace=ci&container=buildkitd&context=prod",
		"ssh://host",
		"ssh://me@host:2222",
		"ssh://me@host/run/user/1000/buildkit/buildkitd.sock",
	} {
		if err := CheckBuilderAddress(addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
	for _, addr := range []string{
		"", "/run/buildkit.sock", "host:1234", "foo://x", "npipe:////./pipe/buildkitd",
		"unix://", "unix://rel.sock", "tcp://:1234", "tcp://host", "tcp://host:x", "tcp://host:1234/x",
		"docker-container://", "docker-container://a/b", "docker-container://b?namespace=x",
		"podman-container://", "podman-container://b?context=x", "nerdctl-container://",
		"kube-pod://", "kube-pod://Pod", "kube-pod://p?namespace=Bad", "kube-pod://p?container=a_b",
		"ssh://", "ssh://me:pw@host", "ssh://host?x=1", "ssh://host#f",
	} {
		if err := CheckBuilderAddress(addr); err == nil {
			t.Errorf("%q accepted", addr)
		}
	}
}

func TestBuilderTLS(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(`builders:
  default:
    - addr: tcp://b:1234
      tls: {ca: file:///certs/ca.pem, cert: file:///certs/cert.pem, key: env://BUILDKIT_KEY, server_name: buildkitd}
    - {addr: "tcp://c:1234", tls: {ca: "file:///certs/ca.pem"}}
`+base), noKinds{})
	if err != nil {
		t.Fatal(err)
	}
	want := Nodes{
		{Addr: "tcp://b:1234", TLS: &NodeTLS{CA: Secret{"file:///certs/ca.pem"}, Cert: Secret{"file:///certs/cert.pem"}, Key: Secret{"env://BUILDKIT_KEY"}, ServerName: "buildkitd"}},
		{Addr: "tcp://c:1234", TLS: &NodeTLS{CA: Secret{"file:///certs/ca.pem"}}},
	}
	if !reflect.DeepEqual(cfg.Builders["default"], want) {
		t.Fatalf("got %+v", cfg.Builders["default"])
	}
}

func TestBuilders(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(`builders:
  default: unix:///run/buildkit/buildkitd.sock
  linux/arm64: [tcp://arm-1:1234, {addr: "tcp://arm-2:1234", max: 3}]
emulation: false
`+base), noKinds{})

	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Nodes{
		"default":     {{Addr: "unix:///run/buildkit/buildkitd.sock"}},
		"linux/arm64": {{Addr: "tcp://arm-1:1234"}, {Addr: "tcp://arm-2:1234", Max: 3}},
	}
	if !reflect.DeepEqual(cfg.Builders, want) || cfg.Emulation {
		t.Fatalf("builders %+v, emulation %v", cfg.Builders, cfg.Emulation)
	}
	if cfg, err := Parse("c.yaml", []byte(base), noKinds{}); err != nil || !cfg.Emulation {
		t.Fatalf("emulation defaults to true: %v, %v", cfg.Emulation, err)
	}
}

func TestSignKeyless(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("sign: {keyless: true, fulcio: 'https://fulcio.example', rekor: 'off', identity_token: env://TOK}\n"+base), noKinds{})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Sign; !s.Keyless || s.Fulcio != "https://fulcio.example" || s.Rekor != "off" || s.IdentityToken.Ref != "env://TOK" || s.String() != "keyless" {
		t.Fatalf("sign = %+v", s)
	}
}

func TestAppOverrides(t *testing.T) {
	y := strings.Replace(base, "    components:", "    versions: {max: 3, order: semver}\n    platforms: [linux/arm64]\n    components:", 1)
	cfg, err := Parse("c.yaml", []byte(y), noKinds{})
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Apps[0]
	if a.Versions.Max != 3 || a.Versions.Order != OrderSemver || len(a.Platforms) != 1 || a.Platforms[0].String() != "linux/arm64" {
		t.Errorf("overrides = %+v %v", a.Versions, a.Platforms)
	}
	if cfg.Versions.Max != 10 {
		t.Errorf("top-level window changed: %+v", cfg.Versions)
	}
}

func TestTemplateLimits(t *testing.T) {
	for _, tt := range []struct{ text, want string }{
		{"{{range 100000000}}x{{end}}", "{{range}} is not supported"},
		{"{{if true}}{{range 3}}x{{end}}{{end}}", "{{range}} is not supported"},
		{`{{define "x"}}a{{end}}{{template "x"}}`, "not supported"},
		{`{{printf "%070000d" 1}}`, "renders more than 65536 bytes"},
	} {
		_, err := Parse("c.yaml", []byte(strings.Replace(base, "{context: ./ctx}", "{context: '"+tt.text+"'}", 1)), noKinds{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.text, err, tt.want)
		}
	}
	ok, err := ParseTemplate(`{{if eq .Arch "arm64"}}aarch64{{else}}x86_64{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := ok.Render(Data{Arch: "arm64"}, nil); s != "aarch64" {
		t.Errorf("conditional = %q", s)
	}
}

func TestWith(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte(strings.Replace(base, "apps:", "apps:\n  other:\n    source: {github: acme/other}\n    components:\n      other: {context: ./ctx}", 1)), noKinds{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.With(Overrides{Apps: []string{"app"}, MaxVersions: 2, Platforms: []string{"linux/arm64/v8"}, Target: "registry.example/ns"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Apps) != 1 || got.Apps[0].Name != "app" || got.Apps[0].Versions.Max != 2 ||
		len(got.Apps[0].Platforms) != 1 || got.Apps[0].Platforms[0].String() != "linux/arm64" || got.Target.Registry != "registry.example/ns" {
		t.Fatalf("With = %+v %+v", got.Apps[0], got.Target)
	}
	if len(cfg.Apps) != 2 || cfg.Apps[0].Versions.Max == 2 || cfg.Target.Registry == "registry.example/ns" || len(cfg.App("app").Platforms) != 2 {
		t.Fatal("With changed the config it was called on")
	}
	for _, o := range []Overrides{
		{Apps: []string{"nope"}}, {Platforms: []string{"linux/amd46"}}, {Platforms: []string{"linux/arm64", "linux/arm64/v8"}},
		{MaxVersions: -1}, {Target: "https://registry.example/ns"}, {Target: "oci:"},
	} {
		if _, err := cfg.With(o); err == nil {
			t.Errorf("With(%+v) accepted", o)
		}
	}
}
