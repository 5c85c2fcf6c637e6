-- Queries of the storefront. None of them filters by store: PostgreSQL's
-- row-level security does, for the tenant that pgtenancy sets from the context.

-- name: ListProducts :many
SELECT id, name, price_cents, currency FROM products ORDER BY id;

-- name: GetProduct :one
SELECT id, name, price_cents, currency FROM products WHERE id = $1;

-- name: CreateProduct :one
INSERT INTO products (store_id, name, price_cents, currency)
VALUES ($1, $2, $3, $4)
RETURNING id, name, price_cents, currency;

-- name: CreatePurchase :one
INSERT INTO purchases (store_id, product_id, quantity)
VALUES ($1, $2, $3)
RETURNING id, product_id, quantity;

-- name: ListPurchases :many
SELECT pu.id, pu.product_id, p.name AS product_name, pu.quantity, p.price_cents * pu.quantity AS total_cents
FROM purchases pu JOIN products p ON p.id = pu.product_id
ORDER BY pu.id;

-- name: StoreSummary :one
SELECT s.name, count(DISTINCT p.id) AS products, coalesce(sum(pu.quantity), 0)::bigint AS items_sold
FROM stores s
LEFT JOIN products p ON p.store_id = s.id
LEFT JOIN purchases pu ON pu.product_id = p.id
GROUP BY s.name;

-- name: MemberByToken :one
-- The caller's user, if it is a member of the current store: memberships is
-- a tenant table, so the join sees the current store's members only.
SELECT u.id, u.name
FROM users u JOIN memberships m ON m.user_id = u.id
WHERE u.token_sha256 = $1;

-- name: CopyProducts :copyfrom
INSERT INTO products (store_id, name, price_cents, currency) VALUES ($1, $2, $3, $4);
