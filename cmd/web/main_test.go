package main

import (
	"testing"

	"teslalink/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
