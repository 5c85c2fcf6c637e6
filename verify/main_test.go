package verify_test

import (
	"testing"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

func TestMain(m *testing.M) { pgtenancytest.Main(m) }
