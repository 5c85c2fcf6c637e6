package migrations

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// VersionTable is the tern version table of the library's own migrations.
const VersionTable = "pgtenancy.schema_version"

// separator splits a tern migration into its up and down parts.
const separator = "---- create above / drop below ----"

// disableTx is tern's comment that runs a migration outside a transaction.
const disableTx = "---- tern: disable-tx ----"

// Options configure the library's own objects.
type Options struct {
	// Setting is the name of the setting that holds the current tenant;
	// [rls.DefaultSetting] when empty. It must match the Setting of the
	// schema model and of the pool.
	Setting string
}

// Install creates the pgtenancy schema and brings the library's own objects
// ([policy.Library]) to the newest version through tern, recording progress
// in [VersionTable]. It is safe to run again: installed steps are skipped.
// conn must belong to a role allowed to create a schema (usually the owner
// of the application's tables). For other migration tools,
// [policy.LibrarySQL] is the same SQL as one script.
func Install(ctx context.Context, conn *pgx.Conn, opts Options) error {
	setting, err := rls.Setting(opts.Setting)
	if err != nil {
		return err
	}
	steps, err := policy.Library(setting)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+policy.LibrarySchema); err != nil {
		return fmt.Errorf("migrations: create schema %s: %w", policy.LibrarySchema, err)
	}
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	for _, s := range steps {
		m.AppendMigration(s.Name, s.Up, s.Down)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrations: install library objects: %w", err)
	}
	return checkInstalledSetting(ctx, conn, setting)
}

// ErrSettingMismatch is returned by [Install] when the library's objects are
// already installed for another setting: tern skips installed steps, so the
// function would go on setting the old one.
var ErrSettingMismatch = errors.New("migrations: pgtenancy is installed for another setting")

var installedSetting = regexp.MustCompile(`SET LOCAL ([a-z0-9_.]+) = %L`)

// checkInstalledSetting compares the setting pgtenancy.set_tenant sets with want.
func checkInstalledSetting(ctx context.Context, conn *pgx.Conn, want string) error {
	var body string
	err := conn.QueryRow(ctx, "SELECT prosrc FROM pg_catalog.pg_proc WHERE oid = 'pgtenancy.set_tenant(text)'::regprocedure").Scan(&body)
	if err != nil {
		return fmt.Errorf("migrations: read pgtenancy.set_tenant: %w", err)
	}
	m := installedSetting.FindStringSubmatch(body)
	if m == nil || m[1] != want {
		got := "an altered body"
		if m != nil {
			got = strconv.Quote(m[1])
		}
		return fmt.Errorf("%w: pgtenancy.set_tenant sets %s, want %q (reinstall: drop schema pgtenancy, then install)", ErrSettingMismatch, got, want)
	}
	return nil
}

// ErrBadMigrationName is returned by [WriteTernFile] for a name that is not
// lower-case letters, digits and underscores.
var ErrBadMigrationName = errors.New("migrations: migration name must match [a-z0-9_]+")

// ErrEmptyMigration is returned by [WriteTernFile] for a migration without
// up SQL.
var ErrEmptyMigration = errors.New("migrations: empty migration")

var (
	ternFile = regexp.MustCompile(`^(\d+)_.+\.sql$`)
	goodName = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// WriteTernFile writes m as the next tern migration in dir: NNN_name.sql,
// numbered one past the highest existing migration. It never overwrites a
// file: if another writer takes the number first, it tries the next one.
// Template delimiters in m are escaped, because tern evaluates migrations as
// Go templates. A migration with [policy.Migration.NoTransaction] gets
// tern's disable-tx comment in both directions: tern then runs its
// statements one at a time, outside a transaction. It returns the path
// written.
func WriteTernFile(dir, name string, m *policy.Migration) (string, error) {
	if !goodName.MatchString(name) {
		return "", fmt.Errorf("%w: %q", ErrBadMigrationName, name)
	}
	if m == nil || strings.TrimSpace(m.Up) == "" {
		return "", ErrEmptyMigration
	}
	up, down := m.Up, m.Down
	if m.NoTransaction {
		up, down = disableTx+"\n"+up, disableTx+"\n"+down
	}
	content := []byte(escapeTemplate(strings.TrimRight(up, "\n")) + "\n\n" + separator + "\n\n" +
		escapeTemplate(strings.TrimRight(down, "\n")) + "\n")
	for range 10 {
		n, err := nextNumber(dir)
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, fmt.Sprintf("%03d_%s.sql", n, name))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("migrations: %w", err)
		}
		if _, err := f.Write(content); err != nil {
			f.Close()
			os.Remove(path)
			return "", fmt.Errorf("migrations: %w", err)
		}
		if err := f.Close(); err != nil {
			os.Remove(path)
			return "", fmt.Errorf("migrations: %w", err)
		}
		return path, nil
	}
	return "", errors.New("migrations: could not find a free migration number")
}

func nextNumber(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("migrations: %w", err)
	}
	highest := 0
	for _, e := range entries {
		if match := ternFile.FindStringSubmatch(e.Name()); match != nil {
			n, err := strconv.Atoi(match[1])
			if err == nil && n > highest {
				highest = n
			}
		}
	}
	return highest + 1, nil
}

// escapeTemplate makes s survive tern's text/template evaluation unchanged.
func escapeTemplate(s string) string {
	return strings.ReplaceAll(s, "{{", `{{"{{"}}`)
}
