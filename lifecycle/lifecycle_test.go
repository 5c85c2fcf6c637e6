package lifecycle_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pgtenancy/pgtenancy/catalog"
	"github.com/pgtenancy/pgtenancy/internal/testschema"
	"github.com/pgtenancy/pgtenancy/lifecycle"
	"github.com/pgtenancy/pgtenancy/migrations"
	"github.com/pgtenancy/pgtenancy/pgtenancytest"
	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TestRoundTrip exports tenant 1 from one database, imports it into
// another, and deletes it from the first: the checksums are equal, and
// equal to what the rows say, other tenants' are unchanged, nothing
// dangles, and tenant 1's counts are zero.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, format := range []lifecycle.Format{lifecycle.Binary, lifecycle.CSV} {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			src := pgtenancytest.NewDB(t, shop)
			dst := pgtenancytest.NewDB(t, emptyShop)
			srcPool, dstPool := src.OwnerPool(t), dst.OwnerPool(t)
			srcAdmin, dstAdmin := src.AdminConn(t), dst.AdminConn(t)
			before := map[rls.Tenant]map[string]lifecycle.Checksum{}
			for _, tn := range []rls.Tenant{tenant1, tenant2, tenant3} {
				before[tn] = sums(t, srcPool, tn)
			}
			wantRows := rowsText(t, srcAdmin, tenant1)

			dir := filepath.Join(t.TempDir(), "export")
			man, err := lifecycle.Export(ctx, srcPool, shopModel(), tenant1, dir, lifecycle.ExportOptions{Format: format})
			require.NoError(t, err)
			require.Len(t, man.Tables, 4)
			names := []string{}
			for _, mt := range man.Tables {
				names = append(names, mt.Name)
				assert.Equal(t, before[tenant1][mt.Name], mt.Checksum, "%s: the export's checksum is the server's", mt.Name)
			}
			assert.Equal(t, []string{"public.stores", "public.categories", "public.products", "public.purchases"}, names)
			assert.Equal(t, int64(40), man.Tables[2].Rows)
			steps, err := policy.Library("")
			require.NoError(t, err)
			assert.Equal(t, len(steps), man.Source.LibraryVersion, "the library's version: one per step")

			res, err := lifecycle.Import(ctx, dstPool, dir, lifecycle.ImportOptions{})
			require.NoError(t, err)
			require.Len(t, res.Tables, 4)
			assert.Equal(t, before[tenant1], sums(t, dstPool, tenant1), "the target's checksums are the source's")
			assert.Equal(t, wantRows, rowsText(t, dstAdmin, tenant1), "the target holds the same rows")
			assert.Zero(t, dangling(t, dstAdmin))

			// Sequences were advanced past the imported keys.
			app := dst.AppPool(t)
			var id int64
			_, err = app.Exec(ctx, "SELECT 1") // the app role connects
			require.NoError(t, err)
			require.NoError(t, dstAdmin.QueryRow(ctx, "SELECT nextval(pg_get_serial_sequence('products', 'id'))").Scan(&id))
			assert.Greater(t, id, int64(1040))
			require.NoError(t, dstAdmin.QueryRow(ctx, "SELECT nextval(pg_get_serial_sequence('categories', 'id'))").Scan(&id))
			assert.Greater(t, id, int64(103))

			del, err := lifecycle.Delete(ctx, srcPool, shopModel(), tenant1, lifecycle.DeleteOptions{})
			require.NoError(t, err)
			assert.Equal(t, "public.stores", del.Tables[3].Table, "the root goes last")
			assert.Equal(t, int64(40), del.Tables[0].Rows)
			for _, tn := range []rls.Tenant{tenant2, tenant3} {
				assert.Equal(t, before[tn], sums(t, srcPool, tn), "tenant %s is untouched", tn)
			}
			for name, c := range sums(t, srcPool, tenant1) {
				assert.Zero(t, c.Rows, name)
			}
			assert.Equal(t, strings.Repeat("\n--\n", 4), rowsText(t, srcAdmin, tenant1), "no row of tenant 1 is left")
			assert.Zero(t, dangling(t, srcAdmin))
		})
	}
}

// TestKeyTypes moves tenants B and C of the store schema, for the key
// types the shop does not have: the text keys hold a quote (o'brien) and a
// backslash (c\d).
func TestKeyTypes(t *testing.T) {
	t.Parallel()
	for _, key := range []rls.KeyType{rls.UUID, rls.Text} {
		t.Run(key.String(), func(t *testing.T) {
			t.Parallel()
			src := pgtenancytest.NewDB(t, storeTemplates[key][0])
			dst := pgtenancytest.NewDB(t, storeTemplates[key][1])
			m := testschema.Model(key, pgtenancytest.AppRole)
			tenants := testschema.Tenants(key)
			for i, tenant := range tenants[1:] {
				want, err := lifecycle.Checksums(t.Context(), src.OwnerPool(t), m, tenant)
				require.NoError(t, err)
				assert.Equal(t, int64(2-i), want[1].Checksum.Rows, "B has 2 products, C 1")
				dir := filepath.Join(t.TempDir(), "move")
				_, err = lifecycle.Move(t.Context(), src.OwnerPool(t), dst.OwnerPool(t), m, tenant, dir, lifecycle.MoveOptions{Format: lifecycle.CSV})
				require.NoError(t, err)
				got, err := lifecycle.Checksums(t.Context(), dst.OwnerPool(t), m, tenant)
				require.NoError(t, err)
				assert.Equal(t, want, got)
			}
		})
	}
}

// storeTemplates are, per key type, the store schema with its three
// tenants and without any, both isolated.
var storeTemplates = map[rls.KeyType][2]*pgtenancytest.Template{}

func init() {
	for _, key := range []rls.KeyType{rls.UUID, rls.Text} {
		storeTemplates[key] = [2]*pgtenancytest.Template{
			{Name: "lifecycle_store_" + key.String(), Setup: func(ctx context.Context, conn *pgx.Conn) error {
				return testschema.Isolated(ctx, conn, key, pgtenancytest.AppRole)
			}},
			{Name: "lifecycle_store_empty_" + key.String(), Setup: func(ctx context.Context, conn *pgx.Conn) error {
				if _, err := conn.Exec(ctx, testschema.DDL(key)); err != nil {
					return err
				}
				if err := migrations.Install(ctx, conn, migrations.Options{}); err != nil {
					return err
				}
				mig, err := catalog.Plan(ctx, conn, testschema.Model(key, pgtenancytest.AppRole))
				if err != nil {
					return err
				}
				_, err = conn.Exec(ctx, mig.Up)
				return err
			}},
		}
	}
}

// TestEmptyTables moves a store that has no category, product or purchase:
// files of no rows, in both formats.
func TestEmptyTables(t *testing.T) {
	t.Parallel()
	for _, format := range []lifecycle.Format{lifecycle.Binary, lifecycle.CSV} {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			src := pgtenancytest.NewDB(t, shop)
			dst := pgtenancytest.NewDB(t, emptyShop)
			tenant5 := rls.Int64(5)
			want := sums(t, src.OwnerPool(t), tenant5)
			res, err := lifecycle.Move(t.Context(), src.OwnerPool(t), dst.OwnerPool(t), shopModel(), tenant5,
				filepath.Join(t.TempDir(), "move"), lifecycle.MoveOptions{Format: format})
			require.NoError(t, err)
			assert.Equal(t, int64(0), res.Manifest.Tables[3].Rows)
			assert.Equal(t, want, sums(t, dst.OwnerPool(t), tenant5))
			assert.Equal(t, int64(1), res.Delete.Tables[3].Rows)
		})
	}
}

// TestImportAdvancesSequences: an import advances the sequences that a
// column's default calls (not only those a column owns) past the imported
// ids, and leaves a descending one alone.
func TestImportAdvancesSequences(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src := pgtenancytest.NewDB(t, shop)
	dst := pgtenancytest.NewDB(t, emptyShop)
	const ddl = `CREATE SEQUENCE ticket_seq; CREATE SEQUENCE countdown_seq INCREMENT -1;
ALTER TABLE purchases ADD COLUMN ticket bigint DEFAULT nextval('ticket_seq'), ADD COLUMN countdown bigint DEFAULT nextval('countdown_seq')`
	for _, db := range []*pgtenancytest.DB{src, dst} {
		_, err := db.OwnerConn(t).Exec(ctx, ddl)
		require.NoError(t, err)
	}
	srcAdmin, dstAdmin := src.AdminConn(t), dst.AdminConn(t)
	_, err := srcAdmin.Exec(ctx, "UPDATE purchases SET ticket = 500000 + id, countdown = -id")
	require.NoError(t, err)

	var countdownBefore int64
	require.NoError(t, dstAdmin.QueryRow(ctx, "SELECT last_value FROM countdown_seq").Scan(&countdownBefore))
	dir := filepath.Join(t.TempDir(), "export")
	_, err = lifecycle.Export(ctx, src.OwnerPool(t), shopModel(), tenant1, dir, lifecycle.ExportOptions{})
	require.NoError(t, err)
	_, err = lifecycle.Import(ctx, dst.OwnerPool(t), dir, lifecycle.ImportOptions{})
	require.NoError(t, err)

	var maxTicket, ticket, countdown int64
	require.NoError(t, dstAdmin.QueryRow(ctx, "SELECT max(ticket) FROM purchases WHERE store_id = 1").Scan(&maxTicket))
	assert.Equal(t, int64(501040), maxTicket)
	require.NoError(t, dstAdmin.QueryRow(ctx, "SELECT nextval('ticket_seq'), (SELECT last_value FROM countdown_seq)").Scan(&ticket, &countdown))
	assert.Greater(t, ticket, maxTicket, "the sequence the default calls is past the imported ids")
	assert.Equal(t, countdownBefore, countdown, "a descending sequence is not moved")
}
