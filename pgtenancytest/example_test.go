package pgtenancytest_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pgtenancy/pgtenancy/pgtenancytest"
)

// notesTemplate is built once per test process, on first use; every NewDB
// clones it.
var notesTemplate = &pgtenancytest.Template{Name: "example_notes", Setup: func(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `CREATE TABLE notes (id int PRIMARY KEY, body text);
INSERT INTO notes VALUES (1, 'hello');
GRANT SELECT ON notes TO `+pgtenancytest.AppRole)
	return err
}}

// NewDB gives each test (here an example, through ExampleTB) a database of
// its own, cloned from a template, and drops it at the end; the owner role
// built it and the application role (no BYPASSRLS, owns nothing) reads it.
func ExampleNewDB() {
	tb := pgtenancytest.NewExampleTB()
	defer tb.Done()
	db := pgtenancytest.NewDB(tb, notesTemplate)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db.AppURL)
	if err != nil {
		panic(err)
	}
	defer conn.Close(ctx)
	var user, body string
	if err := conn.QueryRow(ctx, "SELECT current_user, body FROM notes WHERE id = 1").Scan(&user, &body); err != nil {
		panic(err)
	}
	fmt.Println(user, body)
	// Output:
	// pgtenancy_test_app hello
}
