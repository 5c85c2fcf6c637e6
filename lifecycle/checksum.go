package lifecycle

import (
	"context"
	"fmt"
	"math/big"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// TableChecksum is the checksum of a tenant's rows in one table.
type TableChecksum struct {
	Table    string   `json:"table"`
	Checksum Checksum `json:"checksum"`
}

// Checksums computes, on the server, the checksum of tenant t's rows in
// each of the model's tables, in foreign key order, in one REPEATABLE READ
// transaction with the tenant set: no row leaves the server. Unlike the
// other operations it needs no row in the root table: after [Delete] every
// count is 0. Row level security must apply to the connecting role
// ([*NoRLSError]).
func Checksums(ctx context.Context, db *pgxpool.Pool, m *policy.Model, t rls.Tenant) ([]TableChecksum, error) {
	if err := checkTenant(m, t); err != nil {
		return nil, err
	}
	d, err := open(db, m.KeyType, m.Setting)
	if err != nil {
		return nil, err
	}
	tx, err := d.begin(ctx, t, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read only
	l, err := readLayout(ctx, tx, m)
	if err != nil {
		return nil, err
	}
	tables := l.tables
	if err := checkRLS(ctx, tx, tables); err != nil {
		return nil, err
	}
	sums, err := checksums(ctx, tx, tables, t)
	if err != nil {
		return nil, err
	}
	out := make([]TableChecksum, len(tables))
	for i, tb := range tables {
		out[i] = TableChecksum{Table: tb.name(), Checksum: sums[i]}
	}
	return out, nil
}

// CompareManifest computes the checksums of the tenant's rows of the
// export in dir on db (see [Checksums]), with the model the manifest
// gives, and returns a [*ChecksumError] for the first table that differs.
// where names db in it ("source", "target").
func CompareManifest(ctx context.Context, db *pgxpool.Pool, dir, where string) ([]TableChecksum, error) {
	man, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	return compareManifest(ctx, db, man, where)
}

func compareManifest(ctx context.Context, db *pgxpool.Pool, man *Manifest, where string) ([]TableChecksum, error) {
	t, err := man.tenant()
	if err != nil {
		return nil, err
	}
	sums, err := Checksums(ctx, db, man.model(), t)
	if err != nil {
		return nil, err
	}
	got := map[string]Checksum{}
	for _, s := range sums {
		got[s.Table] = s.Checksum
	}
	for _, mt := range man.Tables {
		if g := got[mt.Name]; g != mt.Checksum {
			return sums, &ChecksumError{Table: mt.Name, Where: where, Want: mt.Checksum, Got: g}
		}
	}
	return sums, nil
}

// checksums computes the checksums of the tenant's rows of tables in tx,
// in one round trip.
func checksums(ctx context.Context, tx pgx.Tx, tables []*table, t rls.Tenant) ([]Checksum, error) {
	b := &pgx.Batch{}
	for _, tb := range tables {
		b.Queue(tb.checksumSQL(t.Key()), t.String())
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	out := make([]Checksum, len(tables))
	for i, tb := range tables {
		var sum string
		if err := br.QueryRow().Scan(&out[i].Rows, &sum); err != nil {
			return nil, fmt.Errorf("lifecycle: checksum %s: %w", tb.name(), err)
		}
		s, ok := new(big.Int).SetString(sum, 10)
		if !ok {
			return nil, fmt.Errorf("lifecycle: checksum %s: bad sum %q", tb.name(), sum)
		}
		out[i].Sum = s.Mod(s, new(big.Int).Lsh(big.NewInt(1), 64)).Uint64()
	}
	return out, br.Close()
}
