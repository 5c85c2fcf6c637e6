package policy_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// citusModel is the store model with Citus on.
func citusModel() *policy.Model {
	m := storeModel(rls.BigInt, "app")
	m.Citus = true
	return m
}

// citusExisting is what catalog.Existing reads from internal/testschema's
// DDL for citusModel (and what Resolve used to put in the model: the
// primary keys of the three tables, and the constraints). The foreign keys
// are Replaceable, as the catalog reports plain keys without ON UPDATE,
// MATCH FULL, DEFERRABLE or NOT VALID.
func citusExisting() *policy.Existing {
	return &policy.Existing{Constraints: []policy.Constraint{
		{Table: "products", Name: "products_currency_fkey", Type: "FOREIGN KEY", Columns: []string{"currency"}, RefTable: "currencies", RefColumns: []string{"code"}, Replaceable: true, Definition: "FOREIGN KEY (currency) REFERENCES currencies(code)"},
		{Table: "products", Name: "products_pkey", Type: "PRIMARY KEY", Columns: []string{"id"}, Definition: "PRIMARY KEY (id)"},
		{Table: "products", Name: "products_store_id_fkey", Type: "FOREIGN KEY", Columns: []string{"store_id"}, RefTable: "stores", RefColumns: []string{"id"}, Replaceable: true, Definition: "FOREIGN KEY (store_id) REFERENCES stores(id)"},
		{Table: "purchases", Name: "purchases_pkey", Type: "PRIMARY KEY", Columns: []string{"id"}, Definition: "PRIMARY KEY (id)"},
		{Table: "purchases", Name: "purchases_product_id_fkey", Type: "FOREIGN KEY", Columns: []string{"product_id"}, RefTable: "products", RefColumns: []string{"id"}, Replaceable: true, Definition: "FOREIGN KEY (product_id) REFERENCES products(id)"},
		{Table: "purchases", Name: "purchases_store_id_fkey", Type: "FOREIGN KEY", Columns: []string{"store_id"}, RefTable: "stores", RefColumns: []string{"id"}, Replaceable: true, Definition: "FOREIGN KEY (store_id) REFERENCES stores(id)"},
		{Table: "stores", Name: "stores_pkey", Type: "PRIMARY KEY", Columns: []string{"id"}, Definition: "PRIMARY KEY (id)"},
	}}
}

func TestGenerateCitusGolden(t *testing.T) {
	t.Parallel()
	mig, err := policy.Plan(citusModel(), citusExisting())
	require.NoError(t, err)
	path := filepath.Join("testdata", "store_citus.golden")
	got := goldenText(mig)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create the golden file")
	assert.Equal(t, string(want), got)

	up := mig.Up
	policies := regexp.MustCompile(`(?s)CREATE POLICY .*?;`).FindAllString(up, -1)
	assert.Len(t, policies, 6)
	for _, stmt := range policies {
		assert.NotRegexp(t, `(?i)\(\s*select`, stmt, "no subqueries in policies: Citus rejects them")
	}
	assert.Contains(t, up, "USING ("+policy.CitusPolicyExpr("store_id", rls.BigInt, rls.DefaultSetting)+")")
	order := []string{
		"SET LOCAL citus.multi_shard_modify_mode TO 'sequential'",
		`DROP CONSTRAINT IF EXISTS "purchases_product_id_fkey"`,
		`ADD CONSTRAINT "products_pkey" PRIMARY KEY ("store_id", "id")`,
		`create_distributed_table('"public"."stores"', 'id', colocate_with => 'none')`,
		`create_distributed_table('"public"."products"', 'store_id', colocate_with => '"public"."stores"')`,
		`create_reference_table('"public"."currencies"')`,
		`ADD CONSTRAINT "products_currency_fkey" FOREIGN KEY (currency) REFERENCES currencies(code)`,
		`"purchases_store_id_product_id_pgtenancy_fkey" FOREIGN KEY`,
		"ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY",
		"GRANT SELECT, INSERT",
	}
	last := -1
	for _, s := range order {
		i := strings.Index(up, s)
		require.Greater(t, i, last, "%q must come after the previous step", s)
		last = i
	}
	assert.NotContains(t, up, "_pgtenancy_key", "the replaced primary key (store_id, id) is the key the composite foreign key references")
	assert.NotContains(t, up, `ADD CONSTRAINT "purchases_product_id_fkey"`, "the plain foreign key is replaced, not re-created")
	assert.Contains(t, mig.Down, `ADD CONSTRAINT "purchases_product_id_fkey" FOREIGN KEY (product_id) REFERENCES products(id)`)
	assert.Contains(t, mig.Down, `DROP CONSTRAINT "products_pkey", ADD CONSTRAINT "products_pkey" PRIMARY KEY (id)`)
	assert.Contains(t, mig.Down, "undistribute_table")
	for _, line := range strings.Split(up, "\n") {
		if strings.HasPrefix(line, "ALTER TABLE") || strings.HasPrefix(line, "DROP POLICY") {
			t.Errorf("with Citus every ALTER TABLE runs in a DO block: %s", line)
		}
	}

	// Without Citus, only the plain foreign key that a composite key
	// replaces matters: it is dropped after the composite key is created.
	plain := citusModel()
	plain.Citus = false
	e := citusExisting()
	a, err := policy.Plan(plain, e)
	require.NoError(t, err)
	e.Constraints = slices.DeleteFunc(e.Constraints, func(c policy.Constraint) bool { return c.Name != "purchases_product_id_fkey" })
	require.Len(t, e.Constraints, 1)
	b, err := policy.Plan(plain, e)
	require.NoError(t, err)
	assert.Equal(t, b, a)
	assert.Contains(t, a.Up, `ALTER TABLE "public"."purchases" DROP CONSTRAINT "purchases_product_id_fkey";`)
	assert.Contains(t, a.Down, `ALTER TABLE "public"."purchases" ADD CONSTRAINT "purchases_product_id_fkey" FOREIGN KEY ("product_id") REFERENCES "public"."products" ("id");`)
	assert.Less(t, strings.Index(a.Up, "purchases_store_id_product_id_pgtenancy_fkey"), strings.Index(a.Up, `DROP CONSTRAINT "purchases_product_id_fkey"`))
	assert.Less(t, strings.Index(a.Down, "ADD CONSTRAINT \"purchases_product_id_fkey\""), strings.Index(a.Down, "DROP CONSTRAINT \"purchases_store_id_product_id_pgtenancy_fkey\""))
	e.Constraints = nil
	c, err := policy.Plan(plain, e)
	require.NoError(t, err)
	assert.NotContains(t, c.Up, "purchases_product_id_fkey")
	g, err := policy.Generate(plain)
	require.NoError(t, err)
	assert.Equal(t, withoutSequenceBlock(g), c, "an Existing without facts plans Generate's SQL, less the sequences it does not list")
}

func TestGenerateCitusErrors(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		edit func(m *policy.Model, e *policy.Existing)
		want string
	}{
		"global references tenant": {func(m *policy.Model, e *policy.Existing) {
			e.Constraints = append(e.Constraints, policy.Constraint{Table: "currencies", Name: "c_fkey", Type: "FOREIGN KEY",
				Columns: []string{"store"}, RefTable: "stores", RefColumns: []string{"id"}, Definition: "FOREIGN KEY (store) REFERENCES stores(id)"})
		}, "Citus refuses foreign keys from reference tables"},
		"plain tenant key not modeled": {func(m *policy.Model, e *policy.Existing) {
			m.Tables[2].ForeignKeys = nil
		}, "declare it in the table's ForeignKeys"},
		// Was "key without its constraint" (ExistingKeys without a
		// Constraint naming the key): keys now come from the constraints
		// only, so the closest is a key whose Definition is missing, which
		// Down needs to restore it.
		"key without its definition": {func(m *policy.Model, e *policy.Existing) {
			e.Constraints[1].Definition = ""
		}, "its Definition is needed to restore it in Down"},
		"semicolon": {func(m *policy.Model, e *policy.Existing) {
			e.Constraints[1].Definition = "PRIMARY KEY (id); DROP TABLE x"
		}, "holds a semicolon"},
		"type": {func(m *policy.Model, e *policy.Existing) {
			e.Constraints[1].Type = "CHECK"
		}, "is not PRIMARY KEY, UNIQUE or FOREIGN KEY"},
		"outside the model": {func(m *policy.Model, e *policy.Existing) {
			e.Constraints[0].RefTable = "elsewhere"
		}, "not in the model"},
		"duplicate": {func(m *policy.Model, e *policy.Existing) {
			e.Constraints = append(e.Constraints, e.Constraints[0])
		}, "listed twice"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			m, e := citusModel(), citusExisting()
			c.edit(m, e)
			mig, err := policy.Plan(m, e)
			assert.Nil(t, mig)
			assert.ErrorIs(t, err, policy.ErrInvalidModel)
			assert.ErrorContains(t, err, c.want)
		})
	}
}
