package publish

import "github.com/Masterminds/semver/v3"

// Latest is archmirror's one policy for the latest tag: the version, among versions, that
// latest points at or should — the highest stable (not pre-release) semver version for which
// eligible reports true (nil: every version), provided it is higher than current, the version
// latest has now ("" for none, or not known); "" when no version qualifies. So latest never
// moves backwards, and never steps to a pre-release or a version that is not semver.
//
// Sync and publish move latest, after their batch, to Latest(the window, "", complete); the
// Publisher moves it only when Latest([]string{version}, latest's version, nil) is version. The
// CI matrix marks latest: true on the jobs of Latest(the window, "", nil): the version that
// would be tagged latest once complete (the plan does not read the latest tag, so a latest
// above the whole window is not taken into account there; the publish step still never moves
// latest below it).
func Latest(versions []string, current string, eligible func(string) bool) string {
	var floor *semver.Version
	if current != "" {
		floor, _ = semver.NewVersion(current)
	}
	var best *semver.Version
	found := ""
	for _, v := range versions {
		sv, err := semver.NewVersion(v)
		if err != nil || sv.Prerelease() != "" || (floor != nil && !sv.GreaterThan(floor)) {
			continue
		}
		if eligible != nil && !eligible(v) {
			continue
		}
		if best == nil || sv.GreaterThan(best) {
			best, found = sv, v
		}
	}
	return found
}
