// Package examples holds no code: its tests keep the examples honest. The GitHub Actions
// workflows must pass the real actionlint (with shellcheck on their scripts), the composite
// action must be well formed, and every archmirror command line in them must use only the CLI's
// verbs and flags.
package examples

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/archmirror/archmirror/internal/testenv"
)

// The files of examples/github-actions, and where README.md tells users to put them.
var layout = map[string]string{
	"github-actions/mirror.yml":                  ".github/workflows/mirror.yml",
	"github-actions/schedule.yml":                ".github/workflows/schedule.yml",
	"github-actions/setup-archmirror/action.yml": ".github/actions/setup-archmirror/action.yml",
}

var workflows = []string{".github/workflows/mirror.yml", ".github/workflows/schedule.yml"}

// project lays the examples out in a fresh repository as README.md says. actionlint checks a
// local reusable workflow call or local action against the callee's inputs and secrets only
// when the callee is found in the repository (a Git work tree with .github/workflows) of the
// file it lints; otherwise it skips those checks silently.
func project(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	for src, dst := range layout {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, dst), b)
	}
	return root
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// actionlint lints files (relative to dir) and returns what it reported and its exit code:
// 0 clean, 1 problems found, 2 bad usage, 3 fatal.
func actionlint(t *testing.T, bin, shellcheck, dir string, files ...string) (string, int) {
	t.Helper()
	args := append([]string{"-no-color", "-oneline", "-shellcheck=" + shellcheck, "-pyflakes="}, files...)
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	return string(out), 0
}

func TestGitHubActionsLint(t *testing.T) {
	bin := testenv.Actionlint(t)
	shellcheck := testenv.Shellcheck(t)
	if out, err := exec.Command(bin, "-version").Output(); err == nil {
		t.Logf("%s", bytes.SplitN(out, []byte("\n"), 2)[0])
	}

	dir := project(t)
	if out, code := actionlint(t, bin, shellcheck, dir, workflows...); code != 0 || out != "" {
		t.Errorf("actionlint %s: exit %d\n%s", strings.Join(workflows, " "), code, out)
	}

	// The same linter on broken workflows next to the examples: it fails, for the right reason,
	// so the clean run above means something (including the checks across files and shellcheck).
	broken := []struct{ name, yml, want string }{
		{"undefined job", "on: push\njobs:\n  a:\n    needs: nope\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo a\n",
			`job "a" needs job "nope" which does not exist`},
		{"reusable workflow input", "on: push\njobs:\n  a:\n    uses: ./.github/workflows/mirror.yml\n    with:\n      no-such-input: x\n",
			`input "no-such-input" is not defined in "./.github/workflows/mirror.yml" reusable workflow`},
		{"action input", "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - uses: ./.github/actions/setup-archmirror\n        with:\n          no-such-input: x\n",
			`input "no-such-input" is not defined in action "Set up archmirror"`},
		{"shellcheck", "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo $HOME\n",
			"SC2086"},
	}
	for _, b := range broken {
		t.Run("broken/"+b.name, func(t *testing.T) {
			dir := project(t)
			writeFile(t, filepath.Join(dir, ".github/workflows/broken.yml"), []byte(b.yml))
			out, code := actionlint(t, bin, shellcheck, dir, ".github/workflows/broken.yml")
			if code != 1 || !strings.Contains(out, b.want) {
				t.Errorf("actionlint on\n%s\nexit %d, want 1 reporting %q:\n%s", b.yml, code, b.want, out)
			}
		})
	}

	// actionlint does not run shellcheck on a composite action's steps; do it here, with each
	// ${{ expression }} standing for a word.
	t.Run("setup-archmirror scripts", func(t *testing.T) {
		a := readAction(t)
		for i, s := range a.Runs.Steps {
			if s.Run == "" {
				continue
			}
			script := "#!/usr/bin/env bash\n" + expression.ReplaceAllString(s.Run, "EXPR")
			cmd := exec.CommandContext(t.Context(), shellcheck, "--shell=bash", "-")
			cmd.Stdin = strings.NewReader(script)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("step %d (%s): shellcheck: %v\n%s", i, s.ID, err, out)
			}
		}
	})
}

var expression = regexp.MustCompile(`\$\{\{.*?\}\}`)

// action is the part of action.yml's metadata the tests read; unknown keys fail the decode.
type action struct {
	Name        string
	Description string
	Inputs      map[string]struct {
		Description string
		Required    bool
		Default     string
	}
	Outputs map[string]struct {
		Description string
		Value       string
	}
	Runs struct {
		Using string
		Steps []struct {
			ID    string
			Name  string
			If    string
			Uses  string
			Run   string
			Shell string
			With  map[string]string
			Env   map[string]string
		}
	}
}

func readAction(t *testing.T) action {
	t.Helper()
	b, err := os.ReadFile("github-actions/setup-archmirror/action.yml")
	if err != nil {
		t.Fatal(err)
	}
	var a action
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("setup-archmirror/action.yml: %v", err)
	}
	return a
}

// actionlint reads a local action's metadata only where a workflow uses it; the action itself
// is checked here.
func TestSetupArchmirrorAction(t *testing.T) {
	a := readAction(t)
	if a.Name == "" || a.Description == "" {
		t.Errorf("name %q, description %q: both are required", a.Name, a.Description)
	}
	if a.Runs.Using != "composite" {
		t.Errorf("runs.using = %q, want composite", a.Runs.Using)
	}
	if len(a.Runs.Steps) == 0 {
		t.Fatal("no runs.steps")
	}
	var text strings.Builder
	for i, s := range a.Runs.Steps {
		if (s.Run == "") == (s.Uses == "") {
			t.Errorf("step %d: want exactly one of run and uses", i)
		}
		if s.Run != "" && s.Shell == "" {
			t.Errorf("step %d runs a script without shell: (a composite action's run steps need one)", i)
		}
		fmt.Fprintln(&text, s.If, s.Run, s.With, s.Env)
	}
	for _, o := range a.Outputs {
		fmt.Fprintln(&text, o.Value)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`inputs\.([\w-]+)`).FindAllStringSubmatch(text.String(), -1) {
		used[m[1]] = true
		if _, ok := a.Inputs[m[1]]; !ok {
			t.Errorf("inputs.%s is used but not declared", m[1])
		}
	}
	for name := range a.Inputs {
		if !used[name] {
			t.Errorf("input %s is declared but never used", name)
		}
	}
	if _, ok := a.Inputs["version"]; !ok {
		t.Error("no version input")
	}
}

// The workflow's shape the README promises: least privilege per job, id-token only where it
// signs, matrices that survive one failure, no overlapping runs per target.
func TestMirrorWorkflowShape(t *testing.T) {
	type job struct {
		If          string
		Needs       any
		RunsOn      string            `yaml:"runs-on"`
		Permissions map[string]string `yaml:"permissions"`
		Strategy    *struct {
			FailFast    *bool  `yaml:"fail-fast"`
			MaxParallel string `yaml:"max-parallel"`
			Matrix      string
		}
		Uses string
		With map[string]string
	}
	type workflow struct {
		On struct {
			WorkflowCall struct {
				Inputs map[string]struct{ Type string }
			} `yaml:"workflow_call"`
			WorkflowDispatch struct {
				Inputs map[string]struct{ Type string }
			} `yaml:"workflow_dispatch"`
			Schedule []struct{ Cron string }
		}
		Permissions map[string]string
		Concurrency struct {
			Group            string
			CancelInProgress *bool `yaml:"cancel-in-progress"`
		}
		Jobs map[string]job
	}
	read := func(path string) workflow {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var w workflow
		if err := yaml.Unmarshal(b, &w); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return w
	}

	m := read("github-actions/mirror.yml")
	for name, typ := range map[string]string{"config": "string", "registry": "string", "namespace": "string",
		"multi-arch": "boolean", "max-versions": "number", "archmirror-version": "string"} {
		if got := m.On.WorkflowCall.Inputs[name].Type; got != typ {
			t.Errorf("mirror.yml: workflow_call input %s: type %q, want %q", name, got, typ)
		}
	}
	if m.Permissions == nil || len(m.Permissions) != 0 {
		t.Errorf("mirror.yml: top-level permissions %v, want {} (each job asks for its own)", m.Permissions)
	}
	if !strings.Contains(m.Concurrency.Group, "inputs.registry") || m.Concurrency.CancelInProgress == nil || *m.Concurrency.CancelInProgress {
		t.Errorf("mirror.yml: concurrency %+v: want a group per registry, cancel-in-progress: false", m.Concurrency)
	}
	var matrices int
	for name, j := range m.Jobs {
		if j.Permissions["contents"] != "read" {
			t.Errorf("mirror.yml: job %s: permissions %v lack contents: read", name, j.Permissions)
		}
		wantID := ""
		if name == "attest" {
			wantID = "write"
		}
		if j.Permissions["id-token"] != wantID {
			t.Errorf("mirror.yml: job %s: id-token: %q, want %q (only attest signs)", name, j.Permissions["id-token"], wantID)
		}
		if s := j.Strategy; s != nil {
			matrices++
			if s.FailFast == nil || *s.FailFast || s.MaxParallel == "" {
				t.Errorf("mirror.yml: job %s: want fail-fast: false and a max-parallel", name)
			}
			if !strings.HasPrefix(s.Matrix, "${{ fromJSON(needs.") || j.RunsOn != "${{ matrix.runner }}" {
				t.Errorf("mirror.yml: job %s: matrix %q on %q: want the plan's matrix, each job on its runner", name, s.Matrix, j.RunsOn)
			}
			if !strings.Contains(j.If, "outputs.has-jobs == 'true'") {
				t.Errorf("mirror.yml: job %s: if %q: an empty matrix must skip the job", name, j.If)
			}
		}
	}
	if matrices != 2 {
		t.Errorf("mirror.yml: %d matrix jobs, want 2 (two build rounds)", matrices)
	}

	s := read("github-actions/schedule.yml")
	if len(s.On.Schedule) != 1 || s.On.Schedule[0].Cron != "0 */6 * * *" {
		t.Errorf("schedule.yml: schedule %+v, want cron 0 */6 * * *", s.On.Schedule)
	}
	var inputs []string
	for name := range s.On.WorkflowDispatch.Inputs {
		inputs = append(inputs, name)
	}
	slices.Sort(inputs)
	if want := []string{"max-versions", "multi-arch", "namespace", "registry"}; !slices.Equal(inputs, want) {
		t.Errorf("schedule.yml: workflow_dispatch inputs %v, want %v", inputs, want)
	}
	if j := s.Jobs["mirror"]; j.Uses != "./.github/workflows/mirror.yml" || j.Permissions["id-token"] != "write" {
		t.Errorf("schedule.yml: job mirror uses %q with %v: want ./.github/workflows/mirror.yml, granting id-token: write", j.Uses, j.Permissions)
	}
}

// The archmirror CLI as the workflows may use it: verb → flag → whether it takes a value.
// global holds the flags of every command. Keep it to the CLI's contract (README.md, CLI).
var (
	global = map[string]bool{
		"-c": true, "--config": true, "--app": true, "--json": false, "--log-level": true,
		"--target": true, "--max-versions": true, "--platform": true,
	}
	verbs = map[string]map[string]bool{
		"plan":    {"--format": true, "--stage": true},
		"build":   {"--job": true},
		"publish": {"--version": true},
		"attest":  {"--parallel": true},
		"verify": {"--key": true, "--certificate-identity": true, "--certificate-identity-regexp": true,
			"--certificate-oidc-issuer": true, "--certificate-oidc-issuer-regexp": true, "--trusted-root": true,
			"--insecure": false},
		"version": {},
	}
	positionals = map[string]int{"verify": 1} // others take none
	formats     = []string{"table", "json", "github-matrix"}
)

// A command line of archmirror found in a file.
type command struct {
	where string // file:line
	verb  string
	flags map[string][]string // flag → values ("" for a switch)
	args  []string            // positional arguments
	split []string            // arrays expanded into the line ("${flags[@]}")
}

func TestArchmirrorCommandLines(t *testing.T) {
	files := []string{"github-actions/mirror.yml", "github-actions/schedule.yml", "github-actions/setup-archmirror/action.yml"}
	verbsSeen := map[string][]command{}
	for _, file := range files {
		cmds, arrays := workflowCommands(t, file)
		for _, c := range cmds {
			checkCommand(t, c)
			verbsSeen[c.verb] = append(verbsSeen[c.verb], c)
			for _, name := range c.split {
				if len(arrays[name]) == 0 {
					t.Errorf("%s: %q is expanded but never built in %s", c.where, name, file)
				}
			}
		}
		// Flags in an array that is expanded into commands of several verbs must be global.
		for name, elems := range arrays {
			for _, e := range elems {
				checkArgs(t, fmt.Sprintf("%s: array %s", file, name), e, global, nil)
			}
		}
	}
	for _, c := range readmeCommands(t, "github-actions/README.md") {
		checkCommand(t, c)
	}

	// Not vacuous: the pipeline is there, as the README describes it.
	for _, v := range []string{"plan", "build", "publish", "attest", "version"} {
		if len(verbsSeen[v]) == 0 {
			t.Errorf("no archmirror %s command found in %v", v, files)
		}
	}
	var matrices int
	for _, c := range verbsSeen["plan"] {
		if slices.Contains(c.flags["--format"], "github-matrix") {
			matrices++
		}
	}
	if matrices < 2 {
		t.Errorf("%d plan --format github-matrix commands, want 2 (before each build round)", matrices)
	}
}

func checkCommand(t *testing.T, c command) {
	t.Helper()
	own, ok := verbs[c.verb]
	if !ok {
		t.Errorf("%s: archmirror %s: not a command of the CLI", c.where, c.verb)
		return
	}
	if n := positionals[c.verb]; len(c.args) != n {
		t.Errorf("%s: archmirror %s: arguments %q, want %d", c.where, c.verb, c.args, n)
	}
	for flag, values := range c.flags {
		_, inGlobal := global[flag]
		_, inOwn := own[flag]
		if !inGlobal && !inOwn {
			t.Errorf("%s: archmirror %s: unknown flag %s", c.where, c.verb, flag)
		}
		for _, v := range values {
			switch flag {
			case "--format":
				if !slices.Contains(formats, v) {
					t.Errorf("%s: --format %s: want one of %v", c.where, v, formats)
				}
			case "--stage", "--max-versions", "--parallel":
				if n, err := strconv.Atoi(v); (err != nil || n < 0) && !strings.HasPrefix(v, "$") {
					t.Errorf("%s: %s %s: want a number", c.where, flag, v)
				}
			}
		}
	}
	if c.verb == "build" && len(c.flags["--job"]) != 1 {
		t.Errorf("%s: archmirror build without --job", c.where)
	}
	if c.flags["--stage"] != nil && !slices.Contains(c.flags["--format"], "github-matrix") {
		t.Errorf("%s: --stage without --format github-matrix", c.where)
	}
}

// checkArgs parses the words after `archmirror VERB` into c (nil: only check them against
// allowed).
func checkArgs(t *testing.T, where string, words []word, allowed map[string]bool, c *command) {
	t.Helper()
	for i := 0; i < len(words); i++ {
		w := words[i]
		if m := arrayExpansion.FindStringSubmatch(w.raw); m != nil {
			if c != nil {
				c.split = append(c.split, m[1])
			}
			continue
		}
		if !strings.HasPrefix(w.text, "-") || w.text == "-" {
			if c != nil {
				c.args = append(c.args, w.text)
			}
			continue
		}
		flag, value, hasValue := strings.Cut(w.text, "=")
		takesValue, known := allowed[flag]
		if c == nil && !known {
			t.Errorf("%s: flag %s is not a global flag of archmirror", where, flag)
		}
		if c == nil {
			if takesValue && !hasValue {
				i++
			}
			continue
		}
		if takesValue && !hasValue {
			if i+1 >= len(words) {
				t.Errorf("%s: %s needs a value", where, flag)
				break
			}
			i++
			value = words[i].text
		}
		c.flags[flag] = append(c.flags[flag], value)
	}
}

var arrayExpansion = regexp.MustCompile(`^"\$\{(\w+)\[@\]\}"$`)

// workflowCommands returns the archmirror command lines of every run: script in a workflow or
// action file, and the contents of the bash arrays those scripts build (name=(...), name+=(...)).
func workflowCommands(t *testing.T, file string) ([]command, map[string][][]word) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var cmds []command
	arrays := map[string][][]word{}
	for _, run := range runScripts(&doc) {
		// A literal block (run: |) starts on the line after the key.
		first := run.Line
		if run.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			first++
		}
		for _, l := range shellLines(run.Value) {
			where := fmt.Sprintf("%s:%d", file, first+l.n)
			words := lex(l.text)
			if m := arrayAssign.FindStringSubmatch(l.text); m != nil {
				inner := lex(m[2])
				arrays[m[1]] = append(arrays[m[1]], inner)
			}
			found := commandsIn(t, where, words)
			cmds = append(cmds, found...)
			if n := len(mention.FindAllString(joinRaw(words), -1)); n != len(found) {
				t.Errorf("%s: %d mentions of an archmirror command, %d parsed: write it as a plain command line\n%s", where, n, len(found), l.text)
			}
		}
	}
	return cmds, arrays
}

var (
	arrayAssign = regexp.MustCompile(`^\s*(?:if .*then\s+)?(\w+)\+?=\((.*)\);?\s*(?:fi)?\s*$`)
	mention     = regexp.MustCompile("(?:^|[\\s;&|(!\"'`])archmirror\\s+[a-z]") // in a message too
)

// runScripts finds every scalar run: value in a YAML document (jobs.*.steps[].run,
// runs.steps[].run); defaults.run is a mapping, not a script.
func runScripts(n *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, v := n.Content[i], n.Content[i+1]; k.Value == "run" && v.Kind == yaml.ScalarNode {
				out = append(out, v)
			}
		}
	}
	for _, c := range n.Content {
		out = append(out, runScripts(c)...)
	}
	return out
}

func readmeCommands(t *testing.T, file string) []command {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cmds []command
	fenced := false
	var block strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if fenced {
				for _, l := range shellLines(block.String()) {
					if strings.HasPrefix(strings.TrimSpace(l.text), "archmirror ") {
						cmds = append(cmds, commandsIn(t, fmt.Sprintf("%s:%d", file, start+l.n+1), lex(l.text))...)
					}
				}
				block.Reset()
			}
			fenced, start = !fenced, i+1
			continue
		}
		if fenced {
			block.WriteString(line + "\n")
		}
	}
	return cmds
}

// commandsIn returns the archmirror commands of one shell line: the word archmirror where a
// command starts, up to the next operator or redirection.
func commandsIn(t *testing.T, where string, words []word) []command {
	t.Helper()
	var cmds []command
	atStart := true
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w.op {
			atStart = !strings.ContainsAny(w.raw, "<>")
			continue
		}
		if !atStart {
			continue
		}
		if slices.Contains([]string{"if", "then", "else", "elif", "do", "while", "until", "!", "time"}, w.raw) ||
			assignment.MatchString(w.raw) {
			continue
		}
		atStart = false
		if w.raw != "archmirror" || i+1 >= len(words) || words[i+1].op {
			continue
		}
		c := command{where: where, verb: words[i+1].text, flags: map[string][]string{}}
		j := i + 2
		for j < len(words) && !words[j].op {
			j++
		}
		own := map[string]bool{}
		for f, v := range global {
			own[f] = v
		}
		for f, v := range verbs[c.verb] {
			own[f] = v
		}
		checkArgs(t, where, words[i+2:j], own, &c)
		cmds = append(cmds, c)
		i = j - 1
	}
	return cmds
}

var assignment = regexp.MustCompile(`^\w+=`)

// joinRaw is the line as lexed: without its comment.
func joinRaw(words []word) string {
	raws := make([]string, len(words))
	for i, w := range words {
		raws[i] = w.raw
	}
	return strings.Join(raws, " ")
}

// A shell word (raw as written, text with its quotes removed) or an operator.
type word struct {
	raw, text string
	op        bool
}

// lex splits one shell line into words and operators, well enough for command lines: quotes,
// backslashes, ${...} and $(...) (with quotes inside) as parts of a word, and comments.
func lex(s string) []word {
	var words []word
	var raw, text strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, word{raw: raw.String(), text: text.String()})
		}
		raw.Reset()
		text.Reset()
		inWord = false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !inWord:
			flush()
			return words
		case c == '(' && inWord: // name=(...): the array's words are read by arrayAssign
			raw.WriteByte(c)
			text.WriteByte(c)
		case strings.IndexByte("|&;<>()", c) >= 0:
			flush()
			j := i + 1
			if strings.IndexByte("|&<>", c) >= 0 {
				for j < len(s) && strings.IndexByte("|&<>", s[j]) >= 0 {
					j++
				}
			}
			words = append(words, word{raw: s[i:j], text: s[i:j], op: true})
			i = j - 1
		case c == '\'' || c == '"':
			end := closing(s, i)
			raw.WriteString(s[i:min(end+1, len(s))])
			text.WriteString(s[i+1 : end])
			inWord, i = true, end
		case c == '$' && i+1 < len(s) && (s[i+1] == '(' || s[i+1] == '{'):
			end := closing(s, i+1)
			raw.WriteString(s[i:min(end+1, len(s))])
			text.WriteString(s[i:min(end+1, len(s))])
			inWord, i = true, end
		case c == '\\' && i+1 < len(s):
			raw.WriteString(s[i : i+2])
			text.WriteByte(s[i+1])
			inWord, i = true, i+1
		default:
			raw.WriteByte(c)
			text.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words
}

// closing returns the index of what closes the quote or bracket at s[i] (len(s) if nothing
// does): a single quote ends at the next one; a double quote and $( or ${ skip escapes and
// nested quotes and substitutions.
func closing(s string, i int) int {
	open := s[i]
	if open == '\'' {
		if j := strings.IndexByte(s[i+1:], '\''); j >= 0 {
			return i + 1 + j
		}
		return len(s)
	}
	close := map[byte]byte{'"': '"', '(': ')', '{': '}'}[open]
	depth := 1
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '\\':
			j++
		case c == close && open != '"':
			if depth--; depth == 0 {
				return j
			}
		case c == close:
			return j
		case c == open && open != '"':
			depth++
		case c == '$' && j+1 < len(s) && (s[j+1] == '(' || s[j+1] == '{'):
			j = closing(s, j+1)
		case (c == '"' || c == '\'') && open != '"':
			j = closing(s, j)
		}
	}
	return len(s)
}

// A logical shell line: continuation lines (ending in \) joined, n the 0-based index of its
// first physical line.
type line struct {
	n    int
	text string
}

func shellLines(script string) []line {
	var out []line
	var cur strings.Builder
	start := -1
	for i, l := range strings.Split(script, "\n") {
		if start < 0 {
			start = i
		}
		if t, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(t + " ")
			continue
		}
		cur.WriteString(l)
		out = append(out, line{n: start, text: cur.String()})
		cur.Reset()
		start = -1
	}
	return out
}
