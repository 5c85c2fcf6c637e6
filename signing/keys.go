package signing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// KeyTable is the table that holds the database's copy of the keys, which
// only its owner (the role that installed the library) can read.
const KeyTable = "pgtenancy.signing_keys"

// MaxActiveKeys is how many keys [Rotate] lets a database hold at once: the
// one the application signs with and, during a rotation, the next one.
const MaxActiveKeys = 2

// Conn is what the key functions need of a connection: a *pgx.Conn, a
// *pgxpool.Pool or a pgx.Tx (they use a savepoint in it) of the role that
// owns [KeyTable].
type Conn interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	Begin(ctx context.Context) (pgx.Tx, error)
}

// ErrTooManyKeys is returned by [Rotate] and [AddKey] when the database
// already holds [MaxActiveKeys] keys: retire the old one first.
var ErrTooManyKeys = errors.New("signing: the database already holds two keys; retire one first")

// ErrUnknownKey is returned by [Retire] for a key id the database does
// not hold.
var ErrUnknownKey = errors.New("signing: unknown key id")

// ErrLastKey is returned by [Retire] for the only key left: with it gone,
// no signed value verifies and every tenant sees no rows.
var ErrLastKey = errors.New("signing: refusing to retire the last key")

// ErrDuplicateKey is returned by [AddKey] and [Rotate] for a key id the
// database holds already.
var ErrDuplicateKey = errors.New("signing: key id exists already")

// KeyInfo describes a key in the database, without its secret.
type KeyInfo struct {
	ID      string
	Created time.Time
}

// Keys lists the keys the database holds, oldest first.
func Keys(ctx context.Context, conn Conn) ([]KeyInfo, error) {
	rows, err := conn.Query(ctx, "SELECT id, created_at FROM "+KeyTable+" ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("signing: list keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (KeyInfo, error) {
		var k KeyInfo
		err := r.Scan(&k.ID, &k.Created)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("signing: list keys: %w", err)
	}
	return out, nil
}

// lockSQL makes key changes take turns, so two rotations cannot both see
// one key and leave three.
const lockSQL = "LOCK TABLE " + KeyTable + " IN EXCLUSIVE MODE"

// change runs fn in a transaction on conn (a savepoint in a pgx.Tx) that
// holds lockSQL's lock, with the keys the database holds.
func change(ctx context.Context, conn Conn, fn func(tx pgx.Tx, keys []KeyInfo) error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit, a no-op
	if _, err := tx.Exec(ctx, lockSQL); err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	keys, err := Keys(ctx, tx)
	if err != nil {
		return err
	}
	if err := fn(tx, keys); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("signing: %w", err)
	}
	return nil
}

// AddKey stores k in the database, so that values signed with it verify
// there. It refuses a database that holds [MaxActiveKeys] keys already
// ([ErrTooManyKeys]) and a key id that it holds ([ErrDuplicateKey]).
func AddKey(ctx context.Context, conn Conn, k Key) error {
	if err := k.Check(); err != nil {
		return err
	}
	return change(ctx, conn, func(tx pgx.Tx, keys []KeyInfo) error {
		for _, e := range keys {
			if e.ID == k.ID {
				return fmt.Errorf("%w: %q", ErrDuplicateKey, k.ID)
			}
		}
		if len(keys) >= MaxActiveKeys {
			return ErrTooManyKeys
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+KeyTable+" (id, secret) VALUES ($1, $2)", k.ID, k.Secret); err != nil {
			return fmt.Errorf("signing: add key %q: %w", k.ID, err)
		}
		return nil
	})
}

// Rotate starts a key rotation: it makes a new key named id, stores it in
// the database and returns it. Values signed with the old key still verify,
// so nothing fails while the application moves to the new key (give it the
// new key, see it sign with it, then [Retire] the old one). It refuses a
// database that holds two keys already ([ErrTooManyKeys]).
func Rotate(ctx context.Context, conn Conn, id string) (Key, error) {
	k, err := NewKey(id)
	if err != nil {
		return Key{}, err
	}
	if err := AddKey(ctx, conn, k); err != nil {
		return Key{}, err
	}
	return k, nil
}

// Retire ends a rotation: it deletes the key named id, and values signed
// with it stop verifying at once. It refuses the last key ([ErrLastKey])
// and an id the database does not hold ([ErrUnknownKey]).
func Retire(ctx context.Context, conn Conn, id string) error {
	return change(ctx, conn, func(tx pgx.Tx, keys []KeyInfo) error {
		found := false
		for _, e := range keys {
			found = found || e.ID == id
		}
		switch {
		case !found:
			return fmt.Errorf("%w %q", ErrUnknownKey, id)
		case len(keys) == 1:
			return fmt.Errorf("%w %q", ErrLastKey, id)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM "+KeyTable+" WHERE id = $1", id); err != nil {
			return fmt.Errorf("signing: retire key %q: %w", id, err)
		}
		return nil
	})
}
