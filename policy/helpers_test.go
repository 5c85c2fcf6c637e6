package policy_test

import (
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

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
