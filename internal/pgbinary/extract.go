package pgbinary

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// packagePrefix is the top directory of every entry of an npm tarball.
const packagePrefix = "package/"

// symlinkList is the file, relative to the package, that lists the
// symbolic links npm could not pack.
const symlinkList = "native/pg-symlinks.json"

// extract unpacks the gzipped tar r into dir, which must exist, dropping
// the package/ prefix. It accepts only regular files and directories whose
// paths stay inside the package, keeps the permission bits of files (and
// nothing else), and refuses duplicate files.
func extract(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("pgbinary: read the tarball: %w", err)
	}
	defer gz.Close()
	tr := tar.NewReader(gz)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pgbinary: read the tarball: %w", err)
		}
		rel, err := entryPath(hdr.Name)
		if err != nil {
			return err
		}
		if rel == "" { // package/ itself
			if hdr.Typeflag != tar.TypeDir {
				return &ArchiveError{Name: hdr.Name, Reason: "the package root is not a directory"}
			}
			continue
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if !within(dir, target) {
			return &ArchiveError{Name: hdr.Name, Reason: "outside the target directory"}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return fmt.Errorf("pgbinary: extract %s: %w", hdr.Name, err)
			}
		case tar.TypeReg: // the reader reports old-style TypeRegA files as TypeReg
			if err := writeFile(tr, target, fs.FileMode(hdr.Mode)&fs.ModePerm); err != nil {
				if errors.Is(err, fs.ErrExist) {
					return &ArchiveError{Name: hdr.Name, Reason: "duplicate entry"}
				}
				return fmt.Errorf("pgbinary: extract %s: %w", hdr.Name, err)
			}
		default:
			return &ArchiveError{Name: hdr.Name, Reason: "not a regular file or a directory (" + typeName(hdr.Typeflag) + ")"}
		}
	}
}

// entryPath checks the path of an archive entry and returns it relative to
// the package, "" for the package directory itself.
func entryPath(name string) (string, error) {
	switch {
	case name == "":
		return "", &ArchiveError{Name: name, Reason: "empty path"}
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "":
		return "", &ArchiveError{Name: name, Reason: "absolute path"}
	case strings.ContainsRune(name, '\\') || strings.ContainsRune(name, 0):
		return "", &ArchiveError{Name: name, Reason: "backslash or NUL in the path"}
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == ".." {
			return "", &ArchiveError{Name: name, Reason: `".." in the path`}
		}
	}
	clean := path.Clean(name)
	if clean == strings.TrimSuffix(packagePrefix, "/") {
		return "", nil
	}
	rel, ok := strings.CutPrefix(clean, packagePrefix)
	if !ok {
		return "", &ArchiveError{Name: name, Reason: "outside " + packagePrefix}
	}
	return rel, nil
}

// relPath checks a path that the symbolic link list gives relative to the
// package.
func relPath(name string) (string, error) {
	if strings.HasPrefix(name, packagePrefix) {
		return "", &ArchiveError{Name: name, Reason: "a link path must be relative to the package"}
	}
	rel, err := entryPath(packagePrefix + name)
	if err == nil && rel == "" {
		err = &ArchiveError{Name: name, Reason: "empty path"}
	}
	if ae := (*ArchiveError)(nil); errors.As(err, &ae) {
		ae.Name = name
	}
	return rel, err
}

// within reports whether target is dir or lies below it.
func within(dir, target string) bool {
	rel, err := filepath.Rel(dir, target)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// writeFile creates target (which must not exist) with content r and mode
// perm, whatever the umask. Missing parent directories are created.
func writeFile(r io.Reader, target string, perm fs.FileMode) (err error) {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return f.Chmod(perm)
}

// symlink is one entry of native/pg-symlinks.json.
type symlink struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// hydrate creates the symbolic links that native/pg-symlinks.json in dir
// lists: at each target, a link to the base name of its source, which must
// be a regular file of the package in the same directory. A missing list
// means no links; a target that exists already is left alone.
func hydrate(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(symlinkList)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgbinary: %w", err)
	}
	var links []symlink
	if err := json.Unmarshal(b, &links); err != nil {
		return &ArchiveError{Name: symlinkList, Reason: "not a JSON list of {source, target}: " + err.Error()}
	}
	for _, l := range links {
		src, err := relPath(l.Source)
		if err != nil {
			return err
		}
		dst, err := relPath(l.Target)
		if err != nil {
			return err
		}
		if path.Dir(src) != path.Dir(dst) {
			return &ArchiveError{Name: l.Target, Reason: "link target and source " + l.Source + " are in different directories"}
		}
		srcPath := filepath.Join(dir, filepath.FromSlash(src))
		if fi, err := os.Lstat(srcPath); err != nil || !fi.Mode().IsRegular() {
			return &ArchiveError{Name: l.Target, Reason: "link source " + l.Source + " is not a regular file of the package"}
		}
		err = os.Symlink(path.Base(src), filepath.Join(dir, filepath.FromSlash(dst)))
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("pgbinary: link %s: %w", l.Target, err)
		}
	}
	return nil
}

// typeName names a tar entry type for an error message.
func typeName(flag byte) string {
	switch flag {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	case tar.TypeXGlobalHeader:
		return "PAX global header"
	}
	return fmt.Sprintf("type %q", flag)
}
