package discover

// DefaultHostConcurrency is how many requests one process sends to one upstream host at once,
// unless WithHostLimit says otherwise. GitHub asks API clients not to make concurrent
// requests; a few in flight keeps the discovery of many apps quick without looking like a
// flood.
const DefaultHostConcurrency = 4
