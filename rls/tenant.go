package rls

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// KeyType is the SQL type of a tenant key.
type KeyType uint8

// The supported tenant key types. The values are stable: a model or
// configuration may store them.
const (
	BigInt   KeyType = iota + 1 // bigint (int8)
	UUID                        // uuid
	Text                        // text
	Integer                     // integer (int4): serial keys, as Rails before 5.1 and Django before 3.2 create them
	SmallInt                    // smallint (int2)
)

// MaxTextLen is the longest [Text] tenant accepted, in bytes.
const MaxTextLen = 128

// String returns the SQL name of the type: "bigint", "uuid", "text",
// "integer" or "smallint".
func (k KeyType) String() string {
	switch k {
	case BigInt:
		return "bigint"
	case UUID:
		return "uuid"
	case Text:
		return "text"
	case Integer:
		return "integer"
	case SmallInt:
		return "smallint"
	}
	return "KeyType(" + strconv.Itoa(int(k)) + ")"
}

// Valid reports whether k is one of [BigInt], [UUID], [Text], [Integer] or
// [SmallInt].
func (k KeyType) Valid() bool { return k >= BigInt && k <= SmallInt }

// ValidKeyTypes names the key types, for messages: "bigint, uuid, text,
// integer or smallint".
const ValidKeyTypes = "bigint, uuid, text, integer or smallint"

// ParseKeyType parses a key type name: "bigint" (or "int8"), "uuid",
// "text", "integer" (or "int", "int4") or "smallint" (or "int2").
func ParseKeyType(s string) (KeyType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "bigint", "int8":
		return BigInt, nil
	case "uuid":
		return UUID, nil
	case "text":
		return Text, nil
	case "integer", "int", "int4":
		return Integer, nil
	case "smallint", "int2":
		return SmallInt, nil
	}
	return 0, fmt.Errorf("%w %q (want %s)", ErrUnknownKeyType, s, ValidKeyTypes)
}

// ErrUnknownKeyType is returned by [ParseKeyType] for a name it does not know.
var ErrUnknownKeyType = errors.New("rls: unknown key type")

// Tenant is a validated tenant identifier in canonical text form. The zero
// Tenant means "no tenant".
type Tenant struct {
	key KeyType
	id  string
}

// Key returns the tenant's key type; 0 for the zero Tenant.
func (t Tenant) Key() KeyType { return t.key }

// String returns the canonical text form: a decimal integer, a lower-case
// hyphenated uuid, or the text itself.
func (t Tenant) String() string { return t.id }

// IsZero reports whether t is the zero Tenant (no tenant).
func (t Tenant) IsZero() bool { return t.key == 0 }

// Int64 returns a [BigInt] tenant.
func Int64(n int64) Tenant { return Tenant{key: BigInt, id: strconv.FormatInt(n, 10)} }

// Int32 returns an [Integer] tenant.
func Int32(n int32) Tenant { return Tenant{key: Integer, id: strconv.FormatInt(int64(n), 10)} }

// Int16 returns a [SmallInt] tenant.
func Int16(n int16) Tenant { return Tenant{key: SmallInt, id: strconv.FormatInt(int64(n), 10)} }

// MustParse is like [Parse] but panics on invalid input. It is meant for
// tests and constants.
func MustParse(key KeyType, s string) Tenant {
	t, err := Parse(key, s)
	if err != nil {
		panic(err)
	}
	return t
}

// ErrInvalidTenant matches every [*InvalidTenantError] with errors.Is.
var ErrInvalidTenant = errors.New("rls: invalid tenant")

// ErrNoTenant is returned when work that needs a tenant has none in its
// context.
var ErrNoTenant = errors.New("rls: no tenant in context")

// InvalidTenantError says why a value is not a valid tenant of a key type.
type InvalidTenantError struct {
	Key    KeyType // the key type the value was parsed as
	Value  string  // the offending value, shortened and quoted for display
	Reason string  // what is wrong, e.g. "not a decimal integer"
}

func (e *InvalidTenantError) Error() string {
	return fmt.Sprintf("rls: invalid %s tenant %s: %s", e.Key, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidTenant) true.
func (e *InvalidTenantError) Is(target error) bool { return target == ErrInvalidTenant }

func invalid(key KeyType, s, reason string) error {
	const max = 40
	if len(s) > max {
		s = s[:max] + "..."
	}
	return &InvalidTenantError{Key: key, Value: strconv.Quote(s), Reason: reason}
}

// Parse validates s as a tenant of the given key type and returns it in
// canonical form.
//
//   - BigInt: a decimal int64 without sign '+', leading zeros or spaces.
//   - Integer, SmallInt: the same, in the int32 or int16 range.
//   - UUID: 36 characters, 8-4-4-4-12 hex digits, either case; stored lower-case.
//   - Text: 1 to [MaxTextLen] bytes of valid UTF-8 without control or format
//     characters (zero-width and bidi marks), private-use characters, or
//     white space other than the ASCII space, so that two tenants cannot
//     look alike.
func Parse(key KeyType, s string) (Tenant, error) {
	switch key {
	case BigInt:
		return parseInt(BigInt, s, 64)
	case Integer:
		return parseInt(Integer, s, 32)
	case SmallInt:
		return parseInt(SmallInt, s, 16)
	case UUID:
		return parseUUID(s)
	case Text:
		return parseText(s)
	}
	return Tenant{}, &InvalidTenantError{Key: key, Value: strconv.Quote(""), Reason: "unknown key type"}
}

// parseInt parses a decimal integer tenant of key, which holds bits bits.
func parseInt(key KeyType, s string, bits int) (Tenant, error) {
	if s == "" {
		return Tenant{}, invalid(key, s, "empty")
	}
	digits := strings.TrimPrefix(s, "-")
	if digits == "" {
		return Tenant{}, invalid(key, s, "not a decimal integer")
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return Tenant{}, invalid(key, s, "not a decimal integer")
		}
	}
	if len(digits) > 1 && digits[0] == '0' || s == "-0" {
		return Tenant{}, invalid(key, s, "leading zeros")
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil || len(digits) > 19 {
		return Tenant{}, invalid(key, s, "out of the "+key.String()+" range")
	}
	return Tenant{key: key, id: strconv.FormatInt(n, 10)}, nil
}

func parseUUID(s string) (Tenant, error) {
	if len(s) != 36 {
		return Tenant{}, invalid(UUID, s, "want 36 characters in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
	}
	var b [36]byte
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return Tenant{}, invalid(UUID, s, "hyphens must be at positions 9, 14, 19 and 24")
			}
		default:
			switch {
			case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			case c >= 'A' && c <= 'F':
				c += 'a' - 'A'
			default:
				return Tenant{}, invalid(UUID, s, "not a hex digit")
			}
		}
		b[i] = c
	}
	return Tenant{key: UUID, id: string(b[:])}, nil
}

func parseText(s string) (Tenant, error) {
	switch {
	case s == "":
		return Tenant{}, invalid(Text, s, "empty")
	case len(s) > MaxTextLen:
		return Tenant{}, invalid(Text, s, "longer than "+strconv.Itoa(MaxTextLen)+" bytes")
	case !utf8.ValidString(s):
		return Tenant{}, invalid(Text, s, "not valid UTF-8")
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r) || r == utf8.RuneError:
			return Tenant{}, invalid(Text, s, "contains a control character")
		case unicode.In(r, unicode.Cf, unicode.Co, unicode.Zl, unicode.Zp) || (unicode.IsSpace(r) && r != ' '):
			return Tenant{}, invalid(Text, s, "contains an invisible or look-alike character")
		}
	}
	return Tenant{key: Text, id: s}, nil
}

type ctxKey struct{}

// WithTenant returns a copy of ctx carrying t. A zero t yields a context
// without a tenant, even when ctx had one.
func WithTenant(ctx context.Context, t Tenant) context.Context {
	if t.IsZero() {
		if _, ok := FromContext(ctx); !ok {
			return ctx
		}
	}
	return context.WithValue(ctx, ctxKey{}, t)
}

// FromContext returns the tenant carried by ctx, and false when there is none.
func FromContext(ctx context.Context) (Tenant, bool) {
	t, _ := ctx.Value(ctxKey{}).(Tenant)
	return t, !t.IsZero()
}

// Require returns the tenant carried by ctx, or [ErrNoTenant].
func Require(ctx context.Context) (Tenant, error) {
	if t, ok := FromContext(ctx); ok {
		return t, nil
	}
	return Tenant{}, ErrNoTenant
}

// MarshalText encodes the key type as its SQL name, so models read and write
// it as "bigint", "uuid", "text", "integer" or "smallint" in JSON.
func (k KeyType) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("rls: invalid key type %d", k)
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes a key type name accepted by [ParseKeyType].
func (k *KeyType) UnmarshalText(b []byte) error {
	v, err := ParseKeyType(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// Bound is a tenant boxed once for attaching to many contexts: [WithTenant]
// allocates twice per call, [Bound.Context] once. Middleware that serves the
// same tenants again and again keeps one Bound per tenant.
type Bound struct{ v any }

// Bind prepares t for repeated use. Binding the zero Tenant gives a Bound
// whose Context clears the tenant.
func Bind(t Tenant) Bound {
	if t.IsZero() {
		return Bound{}
	}
	return Bound{v: t}
}

// Tenant returns the bound tenant.
func (b Bound) Tenant() Tenant {
	t, _ := b.v.(Tenant)
	return t
}

// Context returns a copy of ctx carrying the bound tenant, like
// WithTenant(ctx, b.Tenant()).
func (b Bound) Context(ctx context.Context) context.Context {
	if b.v == nil {
		return WithTenant(ctx, Tenant{})
	}
	return context.WithValue(ctx, ctxKey{}, b.v)
}
