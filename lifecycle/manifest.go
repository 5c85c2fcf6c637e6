package lifecycle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgtenancy/pgtenancy/policy"
	"github.com/pgtenancy/pgtenancy/rls"
)

// ManifestFile is the name of an export's manifest in its directory.
const ManifestFile = "manifest.json"

// ManifestVersion is the version of the manifest's format.
const ManifestVersion = 1

// Manifest describes an export: what [Export] wrote into a directory, and
// what [Import] reads. It is written last, so a directory without one holds
// no complete export.
type Manifest struct {
	FormatVersion int `json:"format_version"`
	// ExportID identifies the export; an import in batches records its
	// progress under it.
	ExportID  string    `json:"export_id"`
	CreatedAt time.Time `json:"created_at"`
	// Tenant is the tenant's key, in canonical text form.
	Tenant  string      `json:"tenant"`
	KeyType rls.KeyType `json:"key_type"`
	// Setting is the tenant setting the policies read.
	Setting string `json:"setting"`
	Format  Format `json:"format"`
	// ChecksumAlgorithm is [ChecksumAlgorithm].
	ChecksumAlgorithm string `json:"checksum_algorithm"`
	Source            Source `json:"source"`
	// Tables are the tenant tables in foreign key order: each after the
	// tables it references.
	Tables []ManifestTable `json:"tables"`
}

// Source describes the database an export was read from.
type Source struct {
	Database      string `json:"database"`
	ServerVersion string `json:"server_version"`
	// LibraryVersion is the version in pgtenancy.schema_version (the
	// library's objects that pgtenancy install puts there), or 0 when the
	// database has none or the exporting role may not read it.
	LibraryVersion int `json:"library_version"`
}

// ManifestTable is one table of an export.
type ManifestTable struct {
	// Name is schema.name.
	Name         string `json:"name"`
	TenantColumn string `json:"tenant_column"`
	Root         bool   `json:"root,omitempty"`
	// File is the data file's name in the export's directory.
	File    string   `json:"file"`
	Columns []Column `json:"columns"`
	Rows    int64    `json:"rows"`
	// Checksum is the rows' checksum (see [Checksum]), which [Checksums]
	// computes on a database.
	Checksum Checksum `json:"checksum"`
	// SHA256 is the SHA-256 of the data file, in hex.
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// Column is a column of an exported table, in the order of the data
// file's fields.
type Column struct {
	Name string `json:"name"`
	// Type is the type as format_type prints it.
	Type string `json:"type"`
	// Text is set when the column travels as its text: composite types,
	// arrays of types that are not built in, reg* types, whose binary form
	// names type OIDs that differ between databases.
	Text bool `json:"text,omitempty"`
}

// tenant returns the manifest's tenant.
func (m *Manifest) tenant() (rls.Tenant, error) {
	t, err := rls.Parse(m.KeyType, m.Tenant)
	if err != nil {
		return rls.Tenant{}, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	return t, nil
}

// model returns the schema model of the manifest's tables, for reading
// the target's.
func (m *Manifest) model() *policy.Model {
	pm := &policy.Model{KeyType: m.KeyType, Setting: m.Setting}
	for _, t := range m.Tables {
		pm.Tables = append(pm.Tables, policy.Table{Name: t.Name, TenantColumn: t.TenantColumn, Root: t.Root})
	}
	return pm
}

// ReadManifest reads the manifest of the export in dir and checks that it
// is one this version reads and that its files are there. It does not
// read the files; [Import] checks their SHA-256.
func ReadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s (an export that did not finish, or not an export)", ErrManifest, dir, ManifestFile)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrManifest, ManifestFile, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrManifest, ManifestFile, fmt.Sprintf(format, args...))
	}
	switch {
	case m.FormatVersion != ManifestVersion:
		return nil, bad("format version %d; this pgtenancy reads version %d", m.FormatVersion, ManifestVersion)
	case m.ChecksumAlgorithm != ChecksumAlgorithm:
		return nil, bad("checksum algorithm %q; this pgtenancy computes %q", m.ChecksumAlgorithm, ChecksumAlgorithm)
	case !m.Format.valid():
		return nil, bad("format %q", m.Format)
	case len(m.Tables) == 0:
		return nil, bad("no tables")
	}
	if _, err := m.tenant(); err != nil {
		return nil, err
	}
	if _, err := rls.Setting(m.Setting); err != nil {
		return nil, bad("%v", err)
	}
	for _, t := range m.Tables {
		if t.File == "" || t.File != filepath.Base(t.File) || strings.HasPrefix(t.File, ".") {
			return nil, bad("table %s: bad file name %q", t.Name, t.File)
		}
		if len(t.Columns) == 0 {
			return nil, bad("table %s: no columns", t.Name)
		}
		st, err := os.Stat(filepath.Join(dir, t.File))
		if err != nil {
			return nil, fmt.Errorf("%w: table %s: %w", ErrManifest, t.Name, err)
		}
		if st.Size() != t.Bytes {
			return nil, fmt.Errorf("%w: table %s: %s holds %d bytes, the manifest says %d", ErrManifest, t.Name, t.File, st.Size(), t.Bytes)
		}
	}
	return &m, nil
}

// CheckFiles reads every data file of the export in dir and compares its
// SHA-256 with the manifest's.
func CheckFiles(dir string, m *Manifest) error {
	for _, t := range m.Tables {
		f, err := os.Open(filepath.Join(dir, t.File))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrManifest, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrManifest, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != t.SHA256 {
			return fmt.Errorf("%w: table %s: %s has SHA-256 %s, the manifest says %s (the file changed)", ErrManifest, t.Name, t.File, got, t.SHA256)
		}
	}
	return nil
}

// writeManifest writes m into dir atomically: a temporary file, synced,
// then renamed.
func writeManifest(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ManifestFile), append(b, '\n'))
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// fileName returns the data file name of the i-th table (from 0): its
// position and its name, with every byte that is not a letter, a digit, a
// dot, a dash or an underscore replaced.
func fileName(i int, name string, f Format) string {
	b := []byte(name)
	for j, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		if !ok {
			b[j] = '_'
		}
	}
	return fmt.Sprintf("%02d_%s%s", i+1, b, f.ext())
}
