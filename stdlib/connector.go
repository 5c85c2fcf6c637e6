package stdlib

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"

	"github.com/jackc/pgx/v5"
	pgxstdlib "github.com/jackc/pgx/v5/stdlib"

	"github.com/pgtenancy/pgtenancy/internal/unit"
)

// Connector is a [driver.Connector] whose connections run every statement
// with the tenant of its context. Pass it to [sql.OpenDB], or use
// [OpenDB], which also runs [Config.Audit].
type Connector struct {
	c driver.Connector // pgx's
	t *unit.Tenancy
}

var _ driver.Connector = (*Connector)(nil)

// NewConnector returns a Connector for cfg. It does not connect.
func NewConnector(cfg *Config) (*Connector, error) {
	t, err := newTenancy(cfg)
	if err != nil {
		return nil, err
	}
	return &Connector{c: pgxstdlib.GetConnector(*cfg.ConnConfig, cfg.Options...), t: t}, nil
}

// Connect opens a connection. See [driver.Connector].
func (c *Connector) Connect(ctx context.Context) (driver.Conn, error) {
	dc, err := c.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{c: dc.(*pgxstdlib.Conn), t: c.t}, nil
}

// Driver returns a driver whose Open always fails: a pgtenancy connection
// is made by a Connector, which carries the configuration. See
// [driver.Connector].
func (c *Connector) Driver() driver.Driver { return noDriver{} }

// ErrNoDriverOpen is returned by the Open of [Connector.Driver]'s driver.
var ErrNoDriverOpen = errors.New("stdlib: open pgtenancy connections with OpenDB or NewConnector, not by driver name")

type noDriver struct{}

func (noDriver) Open(string) (driver.Conn, error) { return nil, ErrNoDriverOpen }

// OpenDB returns a *sql.DB whose connections come from a [Connector] for
// cfg. It runs [Config.Audit] first when it is set, on a connection of its
// own; otherwise, like [sql.OpenDB], it does not connect.
func OpenDB(ctx context.Context, cfg *Config) (*sql.DB, error) {
	c, err := NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Audit != nil {
		conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
		if err != nil {
			return nil, err
		}
		err = cfg.Audit(ctx, conn)
		closeErr := conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		if closeErr != nil {
			return nil, closeErr
		}
	}
	return sql.OpenDB(c), nil
}

// Open is [OpenDB] with the [Config] that [ParseConfig] returns for
// connString.
func Open(ctx context.Context, connString string) (*sql.DB, error) {
	cfg, err := ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	return OpenDB(ctx, cfg)
}
