//go:build !unix

package db

// Lock does nothing where there is no flock: the data directory is not
// guarded against a second process.
func Lock(dir string) (unlock func(), err error) { return func() {}, nil }
