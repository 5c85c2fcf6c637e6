package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pgtenancy/pgtenancy/internal/sqlquote"
	"github.com/pgtenancy/pgtenancy/rls"
)

// Preparation describes the tables that need the tenant column before
// [Generate] can isolate them, and what each still lacks: what
// catalog.Prepare reads from a database for [Prepare] to write. Table names
// may be schema-qualified; unqualified names are in Schema.
type Preparation struct {
	// KeyType is the type of the tenant column added.
	KeyType rls.KeyType
	// Schema is the schema of unqualified names; "public" when empty.
	Schema string
	// Setting is the tenant setting of the column defaults;
	// [rls.DefaultSetting] when empty.
	Setting string
	// BatchSize is the number of rows that the backfill updates per
	// transaction; 1000 when 0.
	BatchSize int
	// LockTimeout bounds how long each statement that changes a table
	// waits for its lock before it fails (and can be run again); 5s when
	// 0. Index builds are not bounded: CREATE INDEX CONCURRENTLY waits for
	// the transactions that could use the index, which is not a lock it
	// blocks others with.
	LockTimeout time.Duration
	// Tables are the tables to prepare, parents before the tables that
	// take the tenant from them.
	Tables []PrepareTable
	// Keys are the unique keys (tenant column first) that the composite
	// foreign keys of Tables reference and that their tables lack.
	Keys []PrepareKey
}

// PrepareTable is one table to prepare and what it lacks.
type PrepareTable struct {
	// Name is the table.
	Name string
	// TenantColumn is its tenant column.
	TenantColumn string
	// TenantType is the type of an existing tenant column when it is
	// another integer type than the Preparation's KeyType (see
	// [Table.TenantType]); its default casts to it. Zero: KeyType.
	TenantType rls.KeyType
	// AddColumn: the column does not exist; it is added, nullable.
	AddColumn bool
	// SetDefault: the column's default is not [TenantDefaultExpr].
	SetDefault bool
	// Sources are where the backfill takes each row's tenant from: the
	// parent row it references. Empty: nothing to fill.
	Sources []TenantSource
	// Key is the table's single-column key, which the backfill walks in
	// order, a batch at a time; "" fills each source in one UPDATE.
	Key string
	// NotNull makes the column NOT NULL: through a CHECK added NOT VALID,
	// then validated (which blocks no writes), then SET NOT NULL, which
	// the valid CHECK makes instant. CheckExists: that CHECK is there
	// (from an earlier run), so only the last steps are written.
	NotNull, CheckExists bool
	// Index builds an index on the tenant column, concurrently.
	Index bool
	// ForeignKeys are the composite foreign keys to create (NOT VALID,
	// then validated) or, with Exists, to validate.
	ForeignKeys []PrepareFK
}

// TenantSource is a reference from a table to a parent row that holds its
// tenant: the row's tenant is the parent's.
type TenantSource struct {
	// Columns are the referencing columns, such as ["contact_id"].
	Columns []string
	// RefTable is the parent table; RefColumns its referenced columns
	// (["id"] when empty); RefTenantColumn its tenant column (for the root
	// table, its key).
	RefTable        string
	RefColumns      []string
	RefTenantColumn string
	// TypeColumn and TypeValue restrict a polymorphic reference to the
	// rows whose TypeColumn is TypeValue, such as taggable_type =
	// 'Contact'.
	TypeColumn, TypeValue string
}

// PrepareFK is a composite foreign key that Prepare creates NOT VALID and
// then validates.
type PrepareFK struct {
	// Columns are the referencing columns without the tenant column.
	Columns []string
	// RefTable, RefTenantColumn and RefColumns (["id"] when empty) are the
	// referenced table, its tenant column and the other referenced columns.
	RefTable        string
	RefTenantColumn string
	RefColumns      []string
	// OnDelete, Deferrable and InitiallyDeferred are as in [ForeignKey],
	// copied from the plain key it will replace.
	OnDelete                      string
	Deferrable, InitiallyDeferred bool
	// Exists: the key is there, NOT VALID; it is only validated.
	Exists bool
}

// PrepareKey is a unique key, tenant column first, that a composite foreign
// key references.
type PrepareKey struct {
	Table   string
	Columns []string
	// IndexExists: its unique index is there (built by an earlier run); it
	// is only attached as the constraint.
	IndexExists bool
}

// NamedMigration is one migration of [Prepare], with the name it suggests
// for the file ("pgtenancy_prepare_columns", ...).
type NamedMigration struct {
	Name string
	Migration
}

// The suffixes of the names Prepare gives the objects it creates.
const (
	notNullSuffix = "_pgtenancy_not_null"
	indexSuffix   = "_pgtenancy_idx"
)

// NotNullCheckName returns the name of the CHECK that [Prepare] adds on
// table's tenant column on the way to NOT NULL, and drops once the column
// is NOT NULL.
func NotNullCheckName(table, column string) string {
	return constraintName(table, []string{column}, notNullSuffix, "")
}

// TenantIndexName returns the name of the index that [Prepare] builds on
// table's tenant column.
func TenantIndexName(table, column string) string {
	return constraintName(table, []string{column}, indexSuffix, "")
}

// KeyName and ForeignKeyName return the names that [Prepare] and
// [Generate] give a unique key (the tenant column first) and a composite
// foreign key (its columns, the tenant column first), when no other name of
// the model clashes with them.
func KeyName(table string, cols []string) string {
	return constraintName(table, cols, "_pgtenancy_key", "")
}

// ForeignKeyName: see [KeyName].
func ForeignKeyName(table string, cols []string) string {
	return constraintName(table, cols, "_pgtenancy_fkey", "")
}

// Prepare returns the migrations that give tables the tenant column
// without long locks, in the order they must run, leaving out those that
// have nothing to do (none when the preparation is empty):
//
//  1. pgtenancy_prepare_columns, in a transaction: the column, added
//     nullable (instant), and its default [TenantDefaultExpr], so that
//     rows inserted from then on take the tenant of a transaction that
//     sets one (deploy the pool first).
//  2. pgtenancy_prepare_backfill, without a transaction: for each table,
//     parents first, a DO block that fills the column from the parent
//     row of each source, BatchSize rows at a time in key order, each
//     batch committed, so that no row stays locked for long; it updates
//     only rows still NULL, so a run that failed (on LockTimeout, say) can
//     run again. Then, for a column to be NOT NULL, it fails if a row is
//     still NULL (its parent is missing or has none): fix those rows, and
//     run it again.
//  3. pgtenancy_prepare_indexes, without a transaction: CREATE INDEX
//     CONCURRENTLY of the tenant column's index and of the unique keys
//     that the composite keys reference; each dropped first if it exists,
//     so that a build that failed and left an invalid index is redone.
//  4. pgtenancy_prepare_constraints, in a transaction: the NOT NULL CHECKs
//     and the composite foreign keys, NOT VALID (no scan, a short lock),
//     and the unique keys attached from their indexes.
//  5. pgtenancy_prepare_validate, in a transaction: VALIDATE the CHECKs
//     and foreign keys (a scan that blocks no writes), then SET NOT NULL
//     (instant with a valid CHECK) and drop the CHECKs.
//
// Statements that change a table set lock_timeout to LockTimeout first.
// The names of the keys are those [Generate] gives them, so a plan made
// afterwards finds them and writes none again. Down undoes each
// migration (the backfill's Down does nothing: dropping the column undoes
// it).
func Prepare(p *Preparation) ([]NamedMigration, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	setting, _ := rls.Setting(p.Setting)
	schema := cmp.Or(p.Schema, "public")
	batch := cmp.Or(p.BatchSize, 1000)
	timeout := cmp.Or(p.LockTimeout, 5*time.Second)
	lockTimeout := sqlquote.Literal(strconv.FormatInt(timeout.Milliseconds(), 10) + "ms")
	if timeout%time.Second == 0 {
		lockTimeout = sqlquote.Literal(strconv.FormatInt(int64(timeout/time.Second), 10) + "s")
	}
	header := fmt.Sprintf("-- Generated by pgtenancy prepare. Tenant key: %s; setting: %s.\n", p.KeyType, setting)
	q := func(name string) string { return splitName(schema, name).sql() }

	var out []NamedMigration
	add := func(name string, noTx bool, up, down []string) {
		if len(up) == 0 {
			return
		}
		slices.Reverse(down)
		out = append(out, NamedMigration{Name: name, Migration: Migration{
			Up: header + strings.Join(up, "\n") + "\n", Down: header + strings.Join(down, "\n") + "\n", NoTransaction: noTx}})
	}
	inTx := "SET LOCAL lock_timeout = " + lockTimeout + ";"

	// 1. Columns and defaults.
	var up, down []string
	for _, t := range p.Tables {
		tbl, col := q(t.Name), sqlquote.Ident(t.TenantColumn)
		if t.AddColumn {
			up = append(up, fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s;", tbl, col, p.KeyType))
			down = append(down, fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s;", tbl, col))
		}
		if t.SetDefault {
			up = append(up, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET DEFAULT %s;", tbl, col, TenantDefaultExpr(cmp.Or(t.TenantType, p.KeyType), setting)))
			if !t.AddColumn {
				down = append(down, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP DEFAULT;", tbl, col))
			}
		}
	}
	if len(up) > 0 {
		up = slices.Insert(up, 0, inTx, "",
			"-- The tenant column where it is missing, nullable until it is filled, and its default from the tenant setting: rows inserted from now on take the tenant of the transaction that sets one.")
		down = append(down, "", inTx)
	}
	add("pgtenancy_prepare_columns", false, up, down)

	// 2. Backfill.
	up, down = nil, nil
	for _, t := range p.Tables {
		if len(t.Sources) > 0 {
			up = append(up, backfill(t, schema, batch))
		} else if t.NotNull && !t.CheckExists {
			// A column that existed: only the check that nothing is NULL.
			up = append(up, backfill(t, schema, batch))
		}
	}
	if len(up) > 0 {
		up = slices.Insert(up, 0, "SET lock_timeout = "+lockTimeout+";", "",
			fmt.Sprintf("-- The tenant column filled from the parent rows, %d rows per transaction in key order: run again after a failure, it fills only what is still NULL.", batch))
		up = append(up, "RESET lock_timeout;")
		down = []string{"-- Nothing to undo: dropping the column (pgtenancy_prepare_columns) undoes the backfill."}
	}
	add("pgtenancy_prepare_backfill", true, up, down)

	// 3. Indexes.
	up, down = nil, nil
	for _, t := range p.Tables {
		if !t.Index {
			continue
		}
		name := TenantIndexName(splitName(schema, t.Name).name, t.TenantColumn)
		qi := sqlquote.Qualified(splitName(schema, t.Name).schema, name)
		up = append(up, fmt.Sprintf("DROP INDEX CONCURRENTLY IF EXISTS %s;", qi),
			fmt.Sprintf("CREATE INDEX CONCURRENTLY %s ON %s (%s);", sqlquote.Ident(name), q(t.Name), sqlquote.Ident(t.TenantColumn)))
		down = append(down, fmt.Sprintf("DROP INDEX CONCURRENTLY IF EXISTS %s;", qi))
	}
	for _, k := range p.Keys {
		if k.IndexExists {
			continue
		}
		tq := splitName(schema, k.Table)
		name := KeyName(tq.name, k.Columns)
		qi := sqlquote.Qualified(tq.schema, name)
		up = append(up, fmt.Sprintf("DROP INDEX CONCURRENTLY IF EXISTS %s;", qi),
			fmt.Sprintf("CREATE UNIQUE INDEX CONCURRENTLY %s ON %s (%s);", sqlquote.Ident(name), tq.sql(), identList(k.Columns)))
		down = append(down, fmt.Sprintf("DROP INDEX CONCURRENTLY IF EXISTS %s;", qi))
	}
	if len(up) > 0 {
		up = slices.Insert(up, 0, "-- Indexes built without blocking writes: the tenant column's, and the unique keys (tenant column first) that the composite foreign keys reference. Each is dropped first, so that a run after a failed build redoes it.")
	}
	add("pgtenancy_prepare_indexes", true, up, down)

	// 4. Constraints, NOT VALID.
	up, down = nil, nil
	for _, k := range p.Keys {
		tq := splitName(schema, k.Table)
		name := sqlquote.Ident(KeyName(tq.name, k.Columns))
		up = append(up, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s UNIQUE USING INDEX %s;", tq.sql(), name, name))
		down = append(down, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tq.sql(), name))
	}
	for _, t := range p.Tables {
		tq := splitName(schema, t.Name)
		if t.NotNull && !t.CheckExists {
			name := sqlquote.Ident(NotNullCheckName(tq.name, t.TenantColumn))
			up = append(up, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID;", tq.sql(), name, sqlquote.Ident(t.TenantColumn)))
			down = append(down, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tq.sql(), name))
		}
		for _, fk := range t.ForeignKeys {
			if fk.Exists {
				continue
			}
			cols := prepend(t.TenantColumn, fk.Columns)
			name := sqlquote.Ident(ForeignKeyName(tq.name, cols))
			up = append(up, fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)%s%s NOT VALID;",
				tq.sql(), name, identList(cols), q(fk.RefTable), identList(prepend(fk.RefTenantColumn, refColumns(fk.RefColumns))),
				onDeleteSQL(fk.OnDelete, fk.Columns), deferrableSQL(fk.Deferrable, fk.InitiallyDeferred)))
			down = append(down, fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tq.sql(), name))
		}
	}
	if len(up) > 0 {
		up = slices.Insert(up, 0, inTx, "",
			"-- NOT NULL as a CHECK, and the composite foreign keys, not validated yet: no scan, a short lock; new rows are checked from now on.")
		down = append(down, "", inTx)
	}
	add("pgtenancy_prepare_constraints", false, up, down)

	// 5. Validation, then NOT NULL.
	up, down = nil, nil
	var notNull, notNullDown []string
	for _, t := range p.Tables {
		tq := splitName(schema, t.Name)
		col := sqlquote.Ident(t.TenantColumn)
		if t.NotNull {
			name := sqlquote.Ident(NotNullCheckName(tq.name, t.TenantColumn))
			up = append(up, fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s;", tq.sql(), name))
			notNull = append(notNull, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s SET NOT NULL;", tq.sql(), col),
				fmt.Sprintf("ALTER TABLE %s DROP CONSTRAINT %s;", tq.sql(), name))
			notNullDown = append(notNullDown, fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s DROP NOT NULL;", tq.sql(), col),
				fmt.Sprintf("ALTER TABLE %s ADD CONSTRAINT %s CHECK (%s IS NOT NULL) NOT VALID;", tq.sql(), name, col))
		}
		for _, fk := range t.ForeignKeys {
			name := sqlquote.Ident(ForeignKeyName(tq.name, prepend(t.TenantColumn, fk.Columns)))
			up = append(up, fmt.Sprintf("ALTER TABLE %s VALIDATE CONSTRAINT %s;", tq.sql(), name))
		}
	}
	if len(up) > 0 {
		up = slices.Insert(up, 0, inTx, "",
			"-- Validation: a scan that blocks no writes. A row that fails names the constraint: fix it, and run this migration again.")
		if len(notNull) > 0 {
			up = append(up, "", "-- NOT NULL, instant with the valid CHECK, which is then dropped.")
			up = append(up, notNull...)
			for i := 0; i < len(notNullDown); i += 2 {
				down = append(down, notNullDown[i+1], notNullDown[i])
			}
		}
		down = append(down, "-- Validation has nothing to undo.", "", inTx)
	}
	add("pgtenancy_prepare_validate", false, up, down)
	return out, nil
}

// backfill returns the DO block that fills t's tenant column from its
// sources, batch rows per transaction in key order, and then, for a column
// to be NOT NULL, fails if a row is still NULL.
func backfill(t PrepareTable, schema string, batch int) string {
	tq := splitName(schema, t.Name)
	tbl, col := tq.sql(), sqlquote.Ident(t.TenantColumn)
	const row, parent = `"pgtenancy_row"`, `"pgtenancy_parent"`
	update := func(s TenantSource, bound string) string {
		var conds []string
		for i, c := range s.Columns {
			conds = append(conds, fmt.Sprintf("%s.%s = %s.%s", parent, sqlquote.Ident(refColumns(s.RefColumns)[i]), row, sqlquote.Ident(c)))
		}
		conds = append(conds, fmt.Sprintf("%s.%s IS NULL", row, col))
		if s.TypeColumn != "" {
			conds = append(conds, fmt.Sprintf("%s.%s = %s", row, sqlquote.Ident(s.TypeColumn), sqlquote.Literal(s.TypeValue)))
		}
		if bound != "" {
			conds = append(conds, bound)
		}
		return fmt.Sprintf("UPDATE %s AS %s SET %s = %s.%s FROM %s AS %s\n            WHERE %s;",
			tbl, row, col, parent, sqlquote.Ident(s.RefTenantColumn), splitName(schema, s.RefTable).sql(), parent,
			strings.Join(conds, "\n              AND "))
	}
	var b strings.Builder
	b.WriteString("\nDECLARE\n")
	if t.Key != "" && len(t.Sources) > 0 {
		key := sqlquote.Ident(t.Key)
		fmt.Fprintf(&b, "    last %s.%s%%TYPE;\n    upto %s.%s%%TYPE;\n", tbl, key, tbl, key)
	}
	b.WriteString("    n bigint;\n    filled bigint := 0;\nBEGIN\n")
	switch {
	case len(t.Sources) == 0:
	case t.Key == "":
		// No single-column key to walk: one UPDATE per source.
		for _, s := range t.Sources {
			fmt.Fprintf(&b, "    %s\n    GET DIAGNOSTICS n = ROW_COUNT;\n    filled := filled + n;\n    COMMIT;\n", strings.ReplaceAll(update(s, ""), "\n    ", "\n"))
		}
	default:
		key := sqlquote.Ident(t.Key)
		fmt.Fprintf(&b, "    LOOP\n")
		fmt.Fprintf(&b, "        IF last IS NULL THEN\n            SELECT max(%[1]s) INTO upto FROM (SELECT %[1]s FROM %[2]s ORDER BY %[1]s LIMIT %[3]d) AS batch;\n", key, tbl, batch)
		fmt.Fprintf(&b, "        ELSE\n            SELECT max(%[1]s) INTO upto FROM (SELECT %[1]s FROM %[2]s WHERE %[1]s > last ORDER BY %[1]s LIMIT %[3]d) AS batch;\n        END IF;\n", key, tbl, batch)
		b.WriteString("        EXIT WHEN upto IS NULL;\n")
		for _, s := range t.Sources {
			lower := fmt.Sprintf("%s.%s <= upto AND (last IS NULL OR %s.%s > last)", row, key, row, key)
			fmt.Fprintf(&b, "        %s\n        GET DIAGNOSTICS n = ROW_COUNT;\n        filled := filled + n;\n", update(s, lower))
		}
		b.WriteString("        last := upto;\n        COMMIT;\n    END LOOP;\n")
	}
	name := sqlquote.Literal(tq.String())
	if len(t.Sources) > 0 {
		fmt.Fprintf(&b, "    RAISE NOTICE 'pgtenancy prepare: %% row(s) of %% filled', filled, %s;\n", name)
	}
	if t.NotNull {
		fmt.Fprintf(&b, "    SELECT count(*) INTO n FROM %s WHERE %s IS NULL;\n", tbl, col)
		fmt.Fprintf(&b, "    IF n > 0 THEN\n        RAISE EXCEPTION 'pgtenancy prepare: %% row(s) of %% have no %%: their parent row is missing or has none. Fix or delete them (or give them a tenant), then run this migration again', n, %s, %s\n            USING ERRCODE = '23502';\n    END IF;\n",
			name, sqlquote.Literal(t.TenantColumn))
	}
	b.WriteString("END\n")
	return "DO " + dollarQuote(b.String()) + ";"
}

func refColumns(cols []string) []string {
	if len(cols) == 0 {
		return []string{"id"}
	}
	return cols
}

// validate checks the names of a preparation.
func (p *Preparation) validate() error {
	var errs []error
	bad := func(table, column, format string, args ...any) {
		errs = append(errs, &ModelError{Table: table, Column: column, Reason: fmt.Sprintf(format, args...)})
	}
	schema := cmp.Or(p.Schema, "public")
	if !p.KeyType.Valid() {
		bad("", "", "key type %v is not %s", p.KeyType, rls.ValidKeyTypes)
	}
	if _, err := rls.Setting(p.Setting); err != nil {
		errs = append(errs, &ModelError{Reason: err.Error(), err: err})
	}
	for _, t := range p.Tables {
		if t.TenantType != 0 && t.TenantType != p.KeyType && (!IntegerKey(t.TenantType) || !IntegerKey(p.KeyType)) {
			bad(t.Name, t.TenantColumn, "tenant type %v differs from the key type %v: only integer types (bigint, integer, smallint) mix", t.TenantType, p.KeyType)
		}
	}
	if p.BatchSize < 0 {
		bad("", "", "batch size %d is negative", p.BatchSize)
	}
	if p.LockTimeout < 0 {
		bad("", "", "lock timeout %v is negative", p.LockTimeout)
	}
	idents := func(table string, cols ...string) {
		for _, c := range cols {
			if r := checkIdent(c); r != "" {
				bad(table, c, "%s", r)
			}
		}
	}
	for _, t := range p.Tables {
		if r := checkTableName(schema, t.Name); r != "" {
			bad(t.Name, "", "%s", r)
		}
		idents(t.Name, t.TenantColumn)
		if t.Key != "" {
			idents(t.Name, t.Key)
		}
		for _, s := range t.Sources {
			if r := checkTableName(schema, s.RefTable); r != "" {
				bad(t.Name, "", "source table %q: %s", s.RefTable, r)
			}
			idents(t.Name, slices.Concat(s.Columns, s.RefColumns, []string{s.RefTenantColumn})...)
			if len(s.Columns) == 0 || len(refColumns(s.RefColumns)) != len(s.Columns) {
				bad(t.Name, strings.Join(s.Columns, ", "), "source %q: %d columns reference %d", s.RefTable, len(s.Columns), len(refColumns(s.RefColumns)))
			}
			if s.TypeColumn != "" {
				idents(t.Name, s.TypeColumn)
			}
		}
		for _, fk := range t.ForeignKeys {
			if r := checkTableName(schema, fk.RefTable); r != "" {
				bad(t.Name, "", "foreign key target %q: %s", fk.RefTable, r)
			}
			idents(t.Name, slices.Concat(fk.Columns, fk.RefColumns, []string{fk.RefTenantColumn})...)
			if len(fk.Columns) == 0 || len(refColumns(fk.RefColumns)) != len(fk.Columns) {
				bad(t.Name, strings.Join(fk.Columns, ", "), "foreign key to %q: %d columns reference %d", fk.RefTable, len(fk.Columns), len(refColumns(fk.RefColumns)))
			}
			if !slices.Contains(onDeleteActions, fk.OnDelete) {
				bad(t.Name, strings.Join(fk.Columns, ", "), "foreign key ON DELETE %q is not one of NO ACTION, RESTRICT, CASCADE, SET NULL, SET DEFAULT (or empty)", fk.OnDelete)
			}
		}
	}
	for _, k := range p.Keys {
		if r := checkTableName(schema, k.Table); r != "" {
			bad(k.Table, "", "%s", r)
		}
		if len(k.Columns) == 0 {
			bad(k.Table, "", "unique key without columns")
		}
		idents(k.Table, k.Columns...)
	}
	return errors.Join(errs...)
}
