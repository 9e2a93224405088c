package plan

// Matrix is a GitHub Actions strategy matrix: `strategy: {matrix: ${{ fromJSON(needs.plan.outputs.matrix) }}}`.
type Matrix struct {
	Include []Job `json:"include"`
}

// GitHubMatrixLimit is the most jobs one GitHub Actions matrix may have.
const GitHubMatrixLimit = 256

// Matrix returns the jobs as an include-matrix. stage < 0 keeps every job; otherwise only that
// stage's (a workflow runs stage 0, then stage 1 with `needs:` between them, so that
// `{{ref "outline-base"}}` resolves to a published index).
func (p Plan) Matrix(stage int) Matrix {
	m := Matrix{Include: []Job{}}
	for _, j := range p.Jobs {
		if stage < 0 || j.Stage == stage {
			m.Include = append(m.Include, j)
		}
	}
	return m
}

// Stages is the number of stages in the plan (0 when there are no jobs).
func (p Plan) Stages() int {
	n := 0
	for _, j := range p.Jobs {
		n = max(n, j.Stage+1)
	}
	return n
}
