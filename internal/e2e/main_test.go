package e2e

import (
	"testing"

	"teslalink/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
