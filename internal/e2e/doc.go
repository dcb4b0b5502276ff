// Package e2e holds end-to-end tests that drive the whole service, the Tesla
// simulator and a database from a real headless Chromium. It has no
// non-test code.
package e2e
