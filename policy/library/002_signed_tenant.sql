-- pgtenancy library objects, step 2: the signed tenant (docs/security.md).
--
-- In signed mode the pool sets {{.setting}} to a value that carries the tenant
-- and an HMAC-SHA256 made with a key that only the application process holds:
--
--     v1:<key id>:<expiry, epoch seconds, 0 for none>:<HMAC, 64 hex digits>:<tenant>
--
-- The HMAC covers 'v1:<key id>:<expiry>:<tenant>'. The key id is
-- [a-z0-9_]{1,32} and the expiry decimal digits, so the tenant (everything
-- after the fourth colon) cannot shift a field. Policies compare the tenant
-- column with (SELECT pgtenancy.tenant()::<type>), once per statement.
--
-- The keys live in pgtenancy.signing_keys, which only the owner of these
-- objects can read; pgtenancy.tenant() reads it as that owner (SECURITY
-- DEFINER, with a pinned search_path). HMAC(K, m) = H((K xor opad) || H((K xor
-- ipad) || m)), with the padded keys computed once, when a key is added.
CREATE FUNCTION pgtenancy.hmac_pad(secret bytea, pad integer) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $pgtenancy$
SELECT pg_catalog.decode(pg_catalog.string_agg(pg_catalog.lpad(pg_catalog.to_hex(
           CASE WHEN i < pg_catalog.length(secret) THEN pg_catalog.get_byte(secret, i) ELSE 0 END # pad), 2, '0'),
           '' ORDER BY i), 'hex')
FROM pg_catalog.generate_series(0, 63) AS i
$pgtenancy$;

REVOKE ALL ON FUNCTION pgtenancy.hmac_pad(bytea, integer) FROM PUBLIC;

CREATE TABLE pgtenancy.signing_keys (
    id text PRIMARY KEY CHECK (id ~ '^[a-z0-9_]{1,32}$'),
    secret bytea NOT NULL CHECK (pg_catalog.length(secret) BETWEEN 32 AND 64),
    inner_pad bytea NOT NULL GENERATED ALWAYS AS (pgtenancy.hmac_pad(secret, 54)) STORED,
    outer_pad bytea NOT NULL GENERATED ALWAYS AS (pgtenancy.hmac_pad(secret, 92)) STORED,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

REVOKE ALL ON TABLE pgtenancy.signing_keys FROM PUBLIC;

COMMENT ON TABLE pgtenancy.signing_keys IS 'pgtenancy: the keys that sign tenants; readable by its owner only';

CREATE FUNCTION pgtenancy.tenant() RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $pgtenancy$
DECLARE
    v text := pg_catalog.current_setting('{{.setting}}', true);
    head text;
    mac text;
    k record;
BEGIN
    IF pg_catalog.left(v, 3) IS DISTINCT FROM 'v1:' OR pg_catalog.current_setting('{{.xact}}', true) IS DISTINCT FROM {{.stamp}} THEN
        RETURN NULL;
    END IF;
    -- v1:<key id>:<expiry>:<mac>:<tenant>. The MAC covers the value without
    -- its MAC field (head || tenant), so the key id and expiry need no
    -- checks before it: a value whose fields are not what the signer wrote
    -- does not verify. Each statement here costs about a microsecond, so
    -- there are few of them, and no regular expressions.
    head := 'v1:' || pg_catalog.split_part(v, ':', 2) || ':' || pg_catalog.split_part(v, ':', 3) || ':';
    mac := pg_catalog.split_part(v, ':', 4);
    v := pg_catalog.substr(v, pg_catalog.length(head) + 66);
    SELECT s.inner_pad, s.outer_pad INTO k FROM pgtenancy.signing_keys AS s WHERE s.id = pg_catalog.split_part(head, ':', 2);
    -- Compare digests of the two MACs' hex texts, so the time a comparison
    -- takes says nothing about how much of a forged MAC is right. No row
    -- (an unknown key) makes the computed MAC NULL: distinct.
    IF pg_catalog.sha256(pg_catalog.textsend(pg_catalog.encode(pg_catalog.sha256(k.outer_pad || pg_catalog.sha256(k.inner_pad || pg_catalog.convert_to(head || v, 'UTF8'))), 'hex')))
        IS DISTINCT FROM pg_catalog.sha256(pg_catalog.textsend(mac)) OR v = '' THEN
        RETURN NULL;
    END IF;
    -- The expiry was written by the signer (the MAC verified): digits.
    IF pg_catalog.split_part(head, ':', 3) <> '0' AND pg_catalog.split_part(head, ':', 3)::bigint <= pg_catalog.extract('epoch', pg_catalog.now()) THEN
        RETURN NULL;
    END IF;
    RETURN v;
END
$pgtenancy$;

COMMENT ON FUNCTION pgtenancy.tenant() IS 'pgtenancy: the tenant of {{.setting}} when its signature is valid, else NULL';

REVOKE ALL ON FUNCTION pgtenancy.tenant() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgtenancy.tenant() TO PUBLIC;

---- create above / drop below ----

DROP FUNCTION pgtenancy.tenant();
DROP TABLE pgtenancy.signing_keys;
DROP FUNCTION pgtenancy.hmac_pad(bytea, integer);
