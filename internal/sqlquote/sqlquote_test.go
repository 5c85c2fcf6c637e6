package sqlquote

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIdent(t *testing.T) {
	assert.Equal(t, `"a"`, Ident("a"))
	assert.Equal(t, `"Order ""Items"""`, Ident(`Order "Items"`))
	assert.Equal(t, `"public"."t"`, Qualified("public", "t"))
	assert.Equal(t, `"t"`, Qualified("", "t"))
}

func TestLiteral(t *testing.T) {
	assert.Equal(t, `'a'`, Literal("a"))
	assert.Equal(t, `'o''brien'`, Literal("o'brien"))
	assert.Equal(t, ` E'a\\b''c'`, Literal(`a\b'c`))
	assert.Panics(t, func() { Literal("a\x00") })
}
