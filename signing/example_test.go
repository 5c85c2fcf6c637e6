package signing_test

import (
	"fmt"
	"time"

	"github.com/pgtenancy/pgtenancy/rls"
	"github.com/pgtenancy/pgtenancy/signing"
)

// A Signer turns a tenant into the value the pool sets in signed mode;
// Verify checks it as pgtenancy.tenant() does in the database.
func ExampleSigner() {
	key, err := signing.ParseKey("k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY")
	if err != nil {
		panic(err)
	}
	signer, err := signing.NewSigner(key, 0) // values without expiry
	if err != nil {
		panic(err)
	}
	v := signer.Sign(rls.Int64(42))
	fmt.Println(v)
	fmt.Println(signing.Verify(v, []signing.Key{key}, time.Now()))
	// Another tenant with the same MAC is rejected.
	_, err = signing.Verify(v[:len(v)-2]+"43", []signing.Key{key}, time.Now())
	fmt.Println(err)
	fmt.Println(key) // printing a key shows its id only
	// Output:
	// v1:k1:0:699705c291f050df19c8ecb8a5acce3a606e52075e5922fe19698eb0f05aef9b:42
	// 42 <nil>
	// signing: invalid signed tenant: wrong MAC
	// signing.Key(k1)
}
