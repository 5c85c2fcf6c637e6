package lifecycle

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pgtenancy/pgtenancy/internal/snapshot"
)

func TestLeadsWith(t *testing.T) {
	t.Parallel()
	fk := []string{"store_id", "product_id"}
	for _, c := range []struct {
		ix   snapshot.Index
		want bool
	}{
		{snapshot.Index{Columns: []string{"store_id", "product_id"}}, true},
		{snapshot.Index{Columns: []string{"product_id", "store_id", "at"}}, true},
		{snapshot.Index{Columns: []string{"store_id"}}, false},
		{snapshot.Index{Columns: []string{"store_id", "at", "product_id"}}, false},
		{snapshot.Index{Columns: []string{"store_id", ""}}, false}, // an expression
		{snapshot.Index{Columns: []string{"store_id", "product_id"}, Partial: true}, false},
	} {
		assert.Equal(t, c.want, leadsWith(c.ix, fk), "%+v", c.ix)
	}
}
