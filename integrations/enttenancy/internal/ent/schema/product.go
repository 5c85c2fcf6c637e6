// Package schema is the ent schema of the integration test: products and
// purchases of the shop schema (internal/shoptest), whose tables exist
// already; ent only reads and writes them.
package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Product is a product of a store (the tenant).
type Product struct{ ent.Schema }

// Fields of Product.
func (Product) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.Int64("store_id"),
		field.String("name"),
		field.Int64("price_cents"),
	}
}

// Purchase is a purchase of a product of the same store.
type Purchase struct{ ent.Schema }

// Fields of Purchase.
func (Purchase) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id"),
		field.Int64("store_id"),
		field.Int64("product_id"),
		field.Int("quantity"),
	}
}
