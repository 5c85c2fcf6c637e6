package policy_test

import (
	"testing"

	"github.com/pgrls/pgrls/pgrlstest"
)

func TestMain(m *testing.M) { pgrlstest.Main(m) }
