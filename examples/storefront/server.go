package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgtenancy/pgtenancy/examples/storefront/internal/db"
	"github.com/pgtenancy/pgtenancy/middleware"
	"github.com/pgtenancy/pgtenancy/pool"
	"github.com/pgtenancy/pgtenancy/rls"
)

// server is the storefront's JSON API. Its handlers never filter by store:
// the pgtenancy pool sets the request's tenant for every query and PostgreSQL's
// policies do the filtering.
type server struct {
	q   *db.Queries
	log *slog.Logger
}

// newHandler wires the routes behind the tenant middleware. The tenant comes
// from the X-Tenant-ID header; the caller is authorized for it when its
// bearer token belongs to a member of that store.
func newHandler(p *pool.Pool, log *slog.Logger) (http.Handler, error) {
	s := &server{q: db.New(p), log: log}
	tenant, err := middleware.New(middleware.Config{
		KeyType:     rls.BigInt,
		Resolver:    middleware.Header(middleware.DefaultHeader),
		Authorize:   s.authorize,
		ExemptPaths: []string{"/health"},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /products", s.listProducts)
	mux.HandleFunc("GET /products/{id}", s.getProduct)
	mux.HandleFunc("POST /products", s.createProduct)
	mux.HandleFunc("GET /purchases", s.listPurchases)
	mux.HandleFunc("POST /purchases", s.createPurchase)
	mux.HandleFunc("GET /summary", s.summary)
	return tenant(mux), nil
}

// authorize lets a request act for tenant t when its bearer token belongs to
// a member of t. The lookup runs through the same pool with t set, so the
// memberships policy itself limits it to t's members.
func (s *server) authorize(r *http.Request, t rls.Tenant) error {
	token := middleware.BearerToken(r)
	if token == "" {
		return middleware.ErrUnauthenticated
	}
	sum := sha256.Sum256([]byte(token))
	_, err := s.q.MemberByToken(rls.WithTenant(r.Context(), t), sum[:])
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return middleware.ErrForbidden
	case err != nil:
		return fmt.Errorf("%w: %v", middleware.ErrInternal, err)
	}
	return nil
}

func (s *server) listProducts(w http.ResponseWriter, r *http.Request) {
	products, err := s.q.ListProducts(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, products)
}

func (s *server) getProduct(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad product id"})
		return
	}
	p, err := s.q.GetProduct(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *server) createProduct(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name       string `json:"name"`
		PriceCents int64  `json:"price_cents"`
		Currency   string `json:"currency"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	t, _ := rls.FromContext(r.Context())
	p, err := s.q.CreateProduct(r.Context(), db.CreateProductParams{
		StoreID: storeID(t), Name: in.Name, PriceCents: in.PriceCents, Currency: in.Currency,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *server) listPurchases(w http.ResponseWriter, r *http.Request) {
	purchases, err := s.q.ListPurchases(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, purchases)
}

func (s *server) createPurchase(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ProductID int64 `json:"product_id"`
		Quantity  int32 `json:"quantity"`
	}
	if !readJSON(w, r, &in) {
		return
	}
	t, _ := rls.FromContext(r.Context())
	p, err := s.q.CreatePurchase(r.Context(), db.CreatePurchaseParams{StoreID: storeID(t), ProductID: in.ProductID, Quantity: in.Quantity})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, p)
}

func (s *server) summary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.q.StoreSummary(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

// storeID is the bigint value of a tenant the middleware validated.
func storeID(t rls.Tenant) int64 {
	n, _ := strconv.ParseInt(t.String(), 10, 64)
	return n
}

// apiError is the body of every error response. It names the SQLSTATE and
// constraint of a database refusal, never its message: messages can carry
// key values of other tenants' rows.
type apiError struct {
	Error      string `json:"error"`
	SQLState   string `json:"sqlstate,omitempty"`
	Constraint string `json:"constraint,omitempty"`
}

// fail maps a database error to a response.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		writeJSON(w, http.StatusNotFound, apiError{Error: "not found"})
	case errors.As(err, &pgErr) && pgErr.Code == "23503":
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "refused by the database: it references a row this store does not have", SQLState: pgErr.Code, Constraint: pgErr.ConstraintName})
	case errors.As(err, &pgErr) && pgErr.Code == "42501":
		writeJSON(w, http.StatusForbidden, apiError{Error: "refused by the database's row-level security", SQLState: pgErr.Code})
	case errors.As(err, &pgErr) && pgErr.Code[:2] == "23":
		writeJSON(w, http.StatusUnprocessableEntity, apiError{Error: "refused by a constraint", SQLState: pgErr.Code, Constraint: pgErr.ConstraintName})
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSON(w, http.StatusInternalServerError, apiError{Error: "internal error"})
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "bad JSON body"})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
