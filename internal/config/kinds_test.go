package config

// noKinds is a SourceKinds that finds nothing wrong with any source: the tests in this package
// check the loader; the kinds of source, and how the loader reports their problems, are
// checked in sources_test.go with discover's table.
type noKinds struct{}

func (noKinds) CheckSource(*Source) []FieldError { return nil }
