package riverjobs

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Tables are River's own tables as of its migration version 8 (River
// v0.51): the job queue, shared by all tenants. They have no tenant column
// and no row level security; the jobs' tenants are in their metadata.
//
// Declare them as global tables to pgtenancy, so that verify knows them
// (and does not take them for tables it was not told about):
//
//	model.Global = append(model.Global, riverjobs.Tables...)
//
// or on the command line, `--global river_job --global river_leader ...`.
// A global table gets only SELECT from generate; River's client needs to
// write them, which [GrantSQL] grants.
var Tables = []string{"river_job", "river_leader", "river_migration", "river_notification", "river_queue"}

// sequences are the sequences of River's tables (bigserial columns).
var sequences = []string{"river_job_id_seq", "river_notification_id_seq"}

// GrantSQL returns the statements that let role run a River client and
// insert jobs: SELECT, INSERT, UPDATE, DELETE on River's tables in schema
// ("public" when empty; SELECT only on river_migration, which River's
// migrations own) and USAGE on their sequences. Run them as the owner of
// River's tables, after River's migrations; the application role does not
// own them (pgtenancy's verify reports an application role that owns
// tables). TRUNCATE is not granted.
//
// schema and role are quoted as identifiers; an empty role, or a name
// with a NUL byte, is an error.
func GrantSQL(schema, role string) (string, error) {
	if schema == "" {
		schema = "public"
	}
	for _, n := range []struct{ what, name string }{{"schema", schema}, {"role", role}} {
		if n.name == "" || strings.IndexByte(n.name, 0) >= 0 || len(n.name) > 63 {
			return "", fmt.Errorf("riverjobs: invalid %s name %q", n.what, n.name)
		}
	}
	r := pgx.Identifier{role}.Sanitize()
	var b strings.Builder
	for _, t := range Tables {
		priv := "SELECT, INSERT, UPDATE, DELETE"
		if t == "river_migration" {
			priv = "SELECT"
		}
		fmt.Fprintf(&b, "GRANT %s ON TABLE %s TO %s;\n", priv, pgx.Identifier{schema, t}.Sanitize(), r)
	}
	for _, s := range sequences {
		fmt.Fprintf(&b, "GRANT USAGE ON SEQUENCE %s TO %s;\n", pgx.Identifier{schema, s}.Sanitize(), r)
	}
	return b.String(), nil
}
