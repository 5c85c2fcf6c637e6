package catalog_test

import (
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// The store and quoting models and schemas are those of policy/helpers_test.go.

// storeModel declares the classic store schema: stores is the root,
// products and purchases are tenant tables, currencies is global.
func storeModel(key rls.KeyType, appRole string) *policy.Model {
	return &policy.Model{
		KeyType: key,
		AppRole: appRole,
		Tables: []policy.Table{
			{Name: "stores", TenantColumn: "id", Root: true},
			{Name: "products", TenantColumn: "store_id"},
			{Name: "purchases", TenantColumn: "store_id", ForeignKeys: []policy.ForeignKey{
				{Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}},
			}},
		},
		Global: []string{"currencies"},
	}
}

// storeDDL creates the classic store schema for a key type, with two stores
// ('1' and '2' for integer keys) holding products and purchases.
// purchases.id is a bigserial so that inserting needs USAGE on its sequence.
//
// For text keys purchases.store_id is a varchar, which text keys accept.
func storeDDL(key rls.KeyType) string {
	var storeID, purchaseStoreID string
	switch key {
	case rls.BigInt, rls.Integer:
		storeID = key.String()
	case rls.UUID:
		storeID = "uuid"
	case rls.Text:
		storeID = "text"
	}
	purchaseStoreID = storeID
	if key == rls.Text {
		purchaseStoreID = "varchar(64)"
	}
	return `
CREATE TABLE currencies (code text PRIMARY KEY);
CREATE TABLE stores (id ` + storeID + ` PRIMARY KEY, name text NOT NULL);
CREATE TABLE products (
    store_id ` + storeID + ` NOT NULL REFERENCES stores (id),
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    price_cents integer NOT NULL,
    currency text NOT NULL REFERENCES currencies (code)
);
CREATE TABLE purchases (
    store_id ` + purchaseStoreID + ` NOT NULL REFERENCES stores (id),
    id bigserial PRIMARY KEY,
    product_id bigint REFERENCES products (id),
    qty integer NOT NULL
);
INSERT INTO currencies VALUES ('EUR'), ('USD');
INSERT INTO stores VALUES (` + tenantLit(key, 1) + `, 'one'), (` + tenantLit(key, 2) + `, 'two');
INSERT INTO products (store_id, name, price_cents, currency) VALUES
    (` + tenantLit(key, 1) + `, 'apple', 100, 'EUR'),
    (` + tenantLit(key, 1) + `, 'pear', 120, 'EUR'),
    (` + tenantLit(key, 2) + `, 'bolt', 5, 'USD');
INSERT INTO purchases (store_id, product_id, qty) VALUES
    (` + tenantLit(key, 1) + `, 1, 3),
    (` + tenantLit(key, 2) + `, 3, 100);
`
}

// tenantID returns the text form of tenant n (1 or 2) for a key type.
func tenantID(key rls.KeyType, n int) string {
	switch key {
	case rls.UUID:
		return [...]string{"", "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"}[n]
	case rls.Text:
		return [...]string{"", "shop-one", "shop-two"}[n]
	}
	return [...]string{"", "1", "2"}[n]
}

func tenantLit(key rls.KeyType, n int) string { return "'" + tenantID(key, n) + "'" }

// quotingModel has names that need quoting: spaces, capitals, a double
// quote, a schema, a dollar-quote tag, a name long enough to need a hashed
// constraint name, and a custom setting.
func quotingModel(appRole string) *policy.Model {
	return &policy.Model{
		KeyType: rls.BigInt,
		Setting: "tenancy.shop",
		AppRole: appRole,
		Tables: []policy.Table{
			{Name: "Shops", TenantColumn: "Shop ID", Root: true},
			{Name: "Orders", TenantColumn: "Shop ID"},
			{Name: "Sales Data.Order Items", TenantColumn: "Shop ID", ForeignKeys: []policy.ForeignKey{
				{Columns: []string{`order"ref`}, RefTable: "Orders", RefColumns: []string{"Order No"}, OnDelete: "SET NULL"},
				{Columns: []string{"sku"}, RefTable: longTable, RefColumns: []string{"sku"}, OnDelete: "CASCADE"},
			}},
			{Name: longTable, TenantColumn: "Shop ID", ForeignKeys: []policy.ForeignKey{
				{Columns: []string{"another_rather_long_column_name"}, RefTable: "Orders", RefColumns: []string{"Order No"}},
			}},
		},
		Global: []string{"Sales Data.Tax Rates"},
	}
}

const longTable = "ledger$pgtenancy$entries_with_a_rather_long_name_for_a_table"

const quotingDDL = `
CREATE SCHEMA "Sales Data";
CREATE TABLE "Shops" ("Shop ID" bigint PRIMARY KEY);
CREATE TABLE "Orders" (
    "Shop ID" bigint NOT NULL REFERENCES "Shops",
    "Order No" bigint NOT NULL PRIMARY KEY
);
CREATE TABLE "ledger$pgtenancy$entries_with_a_rather_long_name_for_a_table" (
    "Shop ID" bigint NOT NULL REFERENCES "Shops",
    sku text NOT NULL PRIMARY KEY,
    another_rather_long_column_name bigint REFERENCES "Orders"
);
CREATE TABLE "Sales Data"."Tax Rates" (country text PRIMARY KEY, rate numeric NOT NULL);
CREATE TABLE "Sales Data"."Order Items" (
    "Shop ID" bigint NOT NULL REFERENCES "Shops",
    line serial PRIMARY KEY,
    "order""ref" bigint REFERENCES "Orders" ON DELETE SET NULL,
    sku text REFERENCES "ledger$pgtenancy$entries_with_a_rather_long_name_for_a_table" ON DELETE CASCADE
);
INSERT INTO "Shops" VALUES (1), (2);
INSERT INTO "Orders" VALUES (1, 10), (2, 20);
INSERT INTO "ledger$pgtenancy$entries_with_a_rather_long_name_for_a_table" VALUES (1, 'a', 10), (2, 'b', NULL);
INSERT INTO "Sales Data"."Order Items" ("Shop ID", "order""ref", sku) VALUES (1, 10, 'a'), (2, 20, 'b');
`
