package policy

import (
	"bytes"
	"embed"
	"errors"
	"io/fs"
	"strings"
	"text/template"

	"github.com/pgtenancy/pgtenancy/rls"
)

// The library's own objects: the pgtenancy schema and what it holds, in
// steps, as SQL files embedded here and nowhere else. The migrations
// package installs them with tern; verify compares the installed function
// with them.
//
//go:embed library/*.sql
var libraryFiles embed.FS

// LibrarySchema is the schema that holds the library's own objects.
const LibrarySchema = "pgtenancy"

// librarySeparator splits a library step into its up and down parts, as in
// a tern migration.
const librarySeparator = "---- create above / drop below ----"

// LibraryStep is one step of the library's own objects, rendered for a
// setting.
type LibraryStep struct {
	// Name is the step's file name without its extension, such as
	// "001_set_tenant".
	Name string
	// Up creates the step's objects in [LibrarySchema], which must exist;
	// Down drops them.
	Up, Down string
}

// Library returns the steps of the library's own objects, in order,
// rendered for a tenant setting ("" for [rls.DefaultSetting]). The
// function pgtenancy.set_tenant(text) that they create sets the setting,
// and its companion [rls.XactSetting], for the current transaction. An
// invalid setting is an error matching [rls.ErrInvalidSetting].
func Library(setting string) ([]LibraryStep, error) {
	setting, err := rls.Setting(setting)
	if err != nil {
		return nil, err
	}
	data := map[string]string{"setting": setting, "xact": rls.XactSetting(setting), "stamp": rls.XactStamp}
	names, err := fs.Glob(libraryFiles, "library/*.sql")
	if err != nil {
		return nil, err
	}
	var steps []LibraryStep
	for _, name := range names {
		body, err := libraryFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		t, err := template.New(name).Option("missingkey=error").Parse(string(body))
		if err == nil {
			err = t.Execute(&b, data)
		}
		if err != nil {
			return nil, err
		}
		up, down, _ := strings.Cut(b.String(), librarySeparator)
		steps = append(steps, LibraryStep{
			Name: strings.TrimSuffix(strings.TrimPrefix(name, "library/"), ".sql"),
			Up:   strings.TrimSpace(up) + "\n",
			Down: strings.TrimSpace(down) + "\n",
		})
	}
	return steps, nil
}

// LibrarySQL returns the library's own objects as one script for
// migration tools other than tern: the schema and every step of [Library],
// and in Down their reverse.
func LibrarySQL(setting string) (*Migration, error) {
	steps, err := Library(setting)
	if err != nil {
		return nil, err
	}
	up := []string{"CREATE SCHEMA IF NOT EXISTS " + LibrarySchema + ";"}
	var down []string
	for _, s := range steps {
		up = append(up, strings.TrimSpace(s.Up))
		down = append([]string{strings.TrimSpace(s.Down)}, down...)
	}
	down = append(down, "DROP SCHEMA "+LibrarySchema+";")
	return &Migration{Up: strings.Join(up, "\n\n") + "\n", Down: strings.Join(down, "\n\n") + "\n"}, nil
}

// SignedTenantBody returns the body of pgtenancy.tenant(), the function
// that verifies a signed tenant, that [Library] creates for a setting, as
// pg_proc.prosrc holds it.
func SignedTenantBody(setting string) (string, error) {
	return functionBody(setting, "CREATE FUNCTION pgtenancy.tenant()")
}

// SetTenantBody returns the body of pgtenancy.set_tenant(text) that
// [Library] creates for a setting, as pg_proc.prosrc holds it: the text
// between its dollar quotes.
func SetTenantBody(setting string) (string, error) {
	return functionBody(setting, "CREATE FUNCTION pgtenancy.set_tenant(tenant text)")
}

// functionBody returns the body of the library function that fn creates.
func functionBody(setting, fn string) (string, error) {
	steps, err := Library(setting)
	if err != nil {
		return "", err
	}
	const tag = "$pgtenancy$"
	for _, s := range steps {
		if _, def, ok := strings.Cut(s.Up, fn); ok {
			if _, rest, ok := strings.Cut(def, tag); ok {
				if body, _, ok := strings.Cut(rest, tag); ok {
					return body, nil
				}
			}
		}
	}
	return "", errors.New("policy: the library has no " + strings.TrimPrefix(fn, "CREATE FUNCTION "))
}
