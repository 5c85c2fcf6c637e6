package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// MoveFile is the name of the journal of a move in its directory.
const MoveFile = "move.json"

// MoveOptions configure [Move].
type MoveOptions struct {
	// Format is the format of the export; [Binary] when empty.
	Format Format
	// BatchRows imports in batches (see [ImportOptions.BatchRows]).
	BatchRows int
	// Delete configures the delete from the source; its DryRun is ignored.
	Delete DeleteOptions
	// Progress, when not nil, is called with the progress of each table
	// of each step (see [ExportOptions.Progress]).
	Progress func(Progress)
	// Step, when not nil, is called as each step starts: "export",
	// "import", "verify", "delete", and with "skip export" and so on for a
	// step that an earlier run finished.
	Step func(step string)
}

// MoveResult is what [Move] did.
type MoveResult struct {
	Manifest *Manifest
	// Import is nil when an earlier run imported the export.
	Import *ImportResult
	// Target are the checksums of the target, equal to the manifest's.
	Target []TableChecksum
	// Delete is nil when an earlier run deleted the tenant from the source.
	Delete  *DeleteResult
	Elapsed time.Duration
}

// moveJournal is the state of a move, kept in dir/move.json.
type moveJournal struct {
	ExportID      string    `json:"export_id"`
	Tenant        string    `json:"tenant"`
	Imported      bool      `json:"imported"`
	Verified      bool      `json:"verified"`
	DeleteStarted bool      `json:"delete_started"`
	Deleted       bool      `json:"deleted"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Move moves tenant t from the source database to the target, through the
// directory dir: it exports the tenant into dir ([Export]), imports it into
// the target ([Import]), compares the checksums of the target and of the
// source with the export's, and only then deletes the tenant from the
// source ([Delete]). Stop the application's writes for the tenant first:
// rows written to the source after the export make the source's checksums
// differ, and Move then stops before deleting ([ErrSourceChanged]).
//
// Each step is recorded in dir/move.json when it succeeds, so a Move that
// stopped (killed, failed, a lost connection) continues when run again
// with the same dir: it reuses the export after checking its files'
// SHA-256, treats a target that holds exactly the export's rows as
// imported, resumes an import in batches, and finishes a delete that had
// started.
//
// The roles are those of each step: on the source, one that row level
// security applies to and that may delete; on the target, the tables'
// owner (see [Import]). On Citus, Move refuses ([ErrCitus]): to give a
// large tenant shards of its own inside a cluster, isolate it (package
// citus).
func Move(ctx context.Context, source, target *pgxpool.Pool, m *policy.Model, t rls.Tenant, dir string, opts MoveOptions) (*MoveResult, error) {
	start := time.Now()
	if err := checkTenant(m, t); err != nil {
		return nil, err
	}
	if source == nil || target == nil {
		return nil, errors.New("lifecycle: nil *pgxpool.Pool")
	}
	if same(ctx, source, target) {
		return nil, ErrSameDatabase
	}
	step := func(s string) {
		if opts.Step != nil {
			opts.Step(s)
		}
	}
	res := &MoveResult{}
	j, err := readMoveJournal(dir)
	if err != nil {
		return nil, err
	}
	man, err := ReadManifest(dir)
	switch {
	case err == nil:
		if man.Tenant != t.String() || man.KeyType != t.Key() || (j != nil && j.ExportID != man.ExportID) {
			return nil, fmt.Errorf("%w: %s holds an export of tenant %s, not of %s", ErrDirNotEmpty, dir, man.Tenant, t)
		}
		step("skip export")
		if err := CheckFiles(dir, man); err != nil {
			return nil, err
		}
	case errors.Is(err, ErrManifest) && j == nil:
		if err := clearPartialExport(dir); err != nil {
			return nil, err
		}
		step("export")
		man, err = Export(ctx, source, m, t, dir, ExportOptions{Format: opts.Format, Progress: opts.Progress})
		if err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	res.Manifest = man
	if j == nil {
		j = &moveJournal{ExportID: man.ExportID, Tenant: man.Tenant}
		if err := j.save(dir); err != nil {
			return nil, err
		}
	}

	if !j.Imported {
		// A run that imported in one transaction but stopped before it
		// wrote the journal left the target with exactly the export's rows.
		if _, err := compareManifest(ctx, target, man, "target"); err == nil {
			step("skip import")
		} else {
			step("import")
			if res.Import, err = Import(ctx, target, dir, ImportOptions{BatchRows: opts.BatchRows, Progress: opts.Progress}); err != nil {
				return nil, err
			}
		}
		j.Imported = true
		if err := j.save(dir); err != nil {
			return nil, err
		}
	} else {
		step("skip import")
	}

	step("verify")
	if res.Target, err = compareManifest(ctx, target, man, "target"); err != nil {
		return nil, err
	}
	if !j.DeleteStarted {
		if _, err := compareManifest(ctx, source, man, "source"); err != nil {
			var ce *ChecksumError
			if errors.As(err, &ce) {
				return nil, fmt.Errorf("%w (%v): nothing deleted; stop the writes, delete the tenant from the target, and move it again with a new directory", ErrSourceChanged, ce)
			}
			return nil, err
		}
		j.Verified, j.DeleteStarted = true, true
		if err := j.save(dir); err != nil {
			return nil, err
		}
	}

	if !j.Deleted {
		step("delete")
		del := opts.Delete
		del.DryRun, del.Progress = false, opts.Progress
		res.Delete, err = Delete(ctx, source, m, t, del)
		if err != nil && !(errors.Is(err, ErrUnknownTenant) && j.DeleteStarted) {
			return nil, err
		}
		j.Deleted = true
		if err := j.save(dir); err != nil {
			return nil, err
		}
	} else {
		step("skip delete")
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// same reports whether two pools connect to the same database: of the
// same cluster (its system identifier) and the same OID, or, when the
// server does not tell, of the same host, port and name.
func same(ctx context.Context, a, b *pgxpool.Pool) bool {
	const q = `SELECT s.system_identifier::text || '/' || d.oid::text
		FROM pg_catalog.pg_control_system() s, pg_catalog.pg_database d WHERE d.datname = current_database()`
	var ia, ib string
	if a.QueryRow(ctx, q).Scan(&ia) == nil && b.QueryRow(ctx, q).Scan(&ib) == nil {
		return ia == ib
	}
	ca, cb := a.Config().ConnConfig, b.Config().ConnConfig
	return ca.Host == cb.Host && ca.Port == cb.Port && ca.Database == cb.Database
}

func readMoveJournal(dir string) (*moveJournal, error) {
	b, err := os.ReadFile(filepath.Join(dir, MoveFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lifecycle: %w", err)
	}
	var j moveJournal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("lifecycle: %s: %w", MoveFile, err)
	}
	return &j, nil
}

func (j *moveJournal) save(dir string) error {
	j.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, MoveFile), append(b, '\n')); err != nil {
		return fmt.Errorf("lifecycle: write %s: %w", MoveFile, err)
	}
	return nil
}

// partialFile matches the files an export writes before its manifest.
var partialFile = regexp.MustCompile(`^[0-9]{2,}_.*\.(bin|csv)$|^manifest\.json\.tmp$`)

// clearPartialExport removes what an export that stopped before writing
// its manifest left in dir, so that the move can export again. It
// removes nothing when dir holds any other file.
func clearPartialExport(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lifecycle: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !partialFile.MatchString(e.Name()) {
			return fmt.Errorf("%w: %s holds %s, which is not part of an export", ErrDirNotEmpty, dir, e.Name())
		}
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("lifecycle: %w", err)
		}
	}
	return nil
}
