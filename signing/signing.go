package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pgtenancy/pgtenancy/rls"
)

// version is the prefix of every signed value, and of the message its MAC
// covers.
const version = "v1"

// The bounds of a key's secret, in bytes: at least the output size of
// SHA-256, at most its block size (so the database uses it as is).
const (
	MinSecretLen = 32
	MaxSecretLen = 64
)

// ErrInvalidKey matches, with errors.Is, every error about a key id or
// secret that pgtenancy does not accept.
var ErrInvalidKey = errors.New("signing: invalid key")

// ErrInvalidValue matches, with errors.Is, every reason [Verify] rejects a
// value: malformed, unknown key, wrong MAC, expired.
var ErrInvalidValue = errors.New("signing: invalid signed tenant")

var (
	keyIDRE = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)
	expRE   = regexp.MustCompile(`^(0|[1-9][0-9]{0,17})$`)
	macRE   = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Key is a signing key: an id, which travels in every signed value, and a
// secret, which never leaves the application process and the key table.
type Key struct {
	// ID names the key: 1 to 32 characters of a-z, 0-9 and _.
	ID string
	// Secret is 32 to 64 random bytes.
	Secret []byte
}

// Check reports whether k is a valid key: an error matching
// [ErrInvalidKey] when it is not.
func (k Key) Check() error {
	if !keyIDRE.MatchString(k.ID) {
		return fmt.Errorf("%w: id %q: want 1 to 32 characters of a-z, 0-9 and _", ErrInvalidKey, k.ID)
	}
	if len(k.Secret) < MinSecretLen || len(k.Secret) > MaxSecretLen {
		return fmt.Errorf("%w %q: secret of %d bytes, want %d to %d", ErrInvalidKey, k.ID, len(k.Secret), MinSecretLen, MaxSecretLen)
	}
	return nil
}

// NewKey returns a key named id with a secret of 32 random bytes.
func NewKey(id string) (Key, error) {
	k := Key{ID: id, Secret: make([]byte, MinSecretLen)}
	if err := k.Check(); err != nil {
		return Key{}, err
	}
	if _, err := rand.Read(k.Secret); err != nil {
		return Key{}, fmt.Errorf("signing: %w", err)
	}
	return k, nil
}

// Encode returns the key in the text form that [ParseKey] reads, for a
// secret store or an environment variable: id, a colon, and the secret in
// unpadded URL-safe base64. It holds the secret: keep it out of logs.
func (k Key) Encode() string {
	return k.ID + ":" + base64.RawURLEncoding.EncodeToString(k.Secret)
}

// String returns the key's id only, so that printing a Key does not
// reveal its secret.
func (k Key) String() string { return "signing.Key(" + k.ID + ")" }

// ParseKey reads a key in the form [Key.Encode] writes.
func ParseKey(s string) (Key, error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		return Key{}, fmt.Errorf("%w: want id:secret (the secret in URL-safe base64)", ErrInvalidKey)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(secret, "="))
	if err != nil {
		return Key{}, fmt.Errorf("%w %q: secret is not URL-safe base64", ErrInvalidKey, id)
	}
	k := Key{ID: id, Secret: b}
	if err := k.Check(); err != nil {
		return Key{}, err
	}
	return k, nil
}

// Signer signs tenants with one key. It is safe for concurrent use.
type Signer struct {
	id  string
	ttl time.Duration
	now func() time.Time
	mac sync.Pool // of hash.Hash, HMAC-SHA256 with the key
}

// NewSigner returns a Signer that signs with k. A ttl above zero gives
// every value an expiry ttl after it is signed (rounded up to the second);
// zero signs values that do not expire. The expiry bounds how long a value
// that leaked (from a log, a session's settings) stays usable; keep it
// above the longest transaction.
func NewSigner(k Key, ttl time.Duration) (*Signer, error) {
	if err := k.Check(); err != nil {
		return nil, err
	}
	if ttl < 0 {
		return nil, fmt.Errorf("signing: negative ttl %v", ttl)
	}
	secret := append([]byte(nil), k.Secret...)
	s := &Signer{id: k.ID, ttl: ttl, now: time.Now}
	s.mac.New = func() any { return hmac.New(sha256.New, secret) }
	return s, nil
}

// KeyID returns the id of the signer's key.
func (s *Signer) KeyID() string { return s.id }

// Sign returns the signed form of t, with an expiry when the signer has a
// ttl:
//
//	v1:<key id>:<expiry in epoch seconds, 0 for none>:<HMAC-SHA256, hex>:<tenant>
//
// The MAC covers "v1:<key id>:<expiry>:<tenant>". The tenant comes last
// and the fields before it cannot hold a colon, so no tenant text can
// shift them. Sign panics on the zero Tenant.
func (s *Signer) Sign(t rls.Tenant) string {
	var exp int64
	if s.ttl > 0 {
		exp = s.now().Add(s.ttl + time.Second - 1).Unix()
	}
	return s.sign(t, exp)
}

// SignUntil is [Signer.Sign] with an explicit expiry; the zero time signs
// a value that does not expire.
func (s *Signer) SignUntil(t rls.Tenant, expiry time.Time) string {
	var exp int64
	if !expiry.IsZero() {
		exp = max(expiry.Unix(), 1)
	}
	return s.sign(t, exp)
}

func (s *Signer) sign(t rls.Tenant, exp int64) string {
	if t.IsZero() {
		panic("signing: Sign of the zero Tenant")
	}
	h := s.mac.Get().(hash.Hash)
	h.Reset()
	var buf [2*sha256.Size + 160]byte
	msg := message(buf[:0], s.id, exp, t.String())
	h.Write(msg)
	var sum [sha256.Size]byte
	mac := h.Sum(sum[:0])
	s.mac.Put(h)
	// msg is "v1:id:exp:tenant"; the value puts the MAC before the tenant.
	head := len(msg) - len(t.String())
	out := make([]byte, 0, len(msg)+2*sha256.Size+1)
	out = append(out, msg[:head]...)
	out = hex.AppendEncode(out, mac)
	out = append(out, ':')
	out = append(out, t.String()...)
	return string(out)
}

// message appends what a MAC covers to b.
func message(b []byte, id string, exp int64, tenant string) []byte {
	b = append(b, version+":"...)
	b = append(b, id...)
	b = append(b, ':')
	b = strconv.AppendInt(b, exp, 10)
	b = append(b, ':')
	return append(b, tenant...)
}

// Verify checks a signed value as pgtenancy.tenant() does in the database
// (without its transaction stamp), against keys, at time now. It returns
// the tenant text, or an error matching [ErrInvalidValue].
func Verify(value string, keys []Key, now time.Time) (string, error) {
	f := strings.SplitN(value, ":", 5)
	if len(f) != 5 || f[0] != version || !keyIDRE.MatchString(f[1]) || !expRE.MatchString(f[2]) ||
		!macRE.MatchString(f[3]) || f[4] == "" {
		return "", fmt.Errorf("%w: malformed", ErrInvalidValue)
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: malformed expiry", ErrInvalidValue)
	}
	if exp != 0 && exp <= now.Unix() {
		return "", fmt.Errorf("%w: expired at %s", ErrInvalidValue, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	for _, k := range keys {
		if k.ID != f[1] {
			continue
		}
		h := hmac.New(sha256.New, k.Secret)
		h.Write(message(nil, k.ID, exp, f[4]))
		got, _ := hex.DecodeString(f[3])
		if !hmac.Equal(h.Sum(nil), got) {
			return "", fmt.Errorf("%w: wrong MAC", ErrInvalidValue)
		}
		return f[4], nil
	}
	return "", fmt.Errorf("%w: unknown key %q", ErrInvalidValue, f[1])
}
