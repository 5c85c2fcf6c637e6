-- pgtenancy library objects, step 1: the function that sets the tenant.
--
-- pgtenancy.set_tenant runs SET LOCAL through EXECUTE, so the tenant travels as a
-- bind parameter (prepared statements stay cached) and Citus propagates the
-- setting to the shards (with citus.propagate_set_commands = 'local'). It sets
-- the companion {{.xact}} to the transaction's stamp as well: the generated
-- policies admit the tenant only in the transaction that set it.
CREATE FUNCTION pgtenancy.set_tenant(tenant text) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $pgtenancy$
BEGIN
    IF tenant IS NULL OR tenant = '' THEN
        RAISE EXCEPTION 'pgtenancy: tenant must not be null or empty' USING ERRCODE = '22023';
    END IF;
    EXECUTE pg_catalog.format('SET LOCAL {{.setting}} = %L', tenant);
    EXECUTE pg_catalog.format('SET LOCAL {{.xact}} = %L', {{.stamp}});
END
$pgtenancy$;

COMMENT ON FUNCTION pgtenancy.set_tenant(text) IS 'pgtenancy: sets {{.setting}} for the current transaction';

GRANT USAGE ON SCHEMA pgtenancy TO PUBLIC;
GRANT EXECUTE ON FUNCTION pgtenancy.set_tenant(text) TO PUBLIC;

---- create above / drop below ----

DROP FUNCTION pgtenancy.set_tenant(text);
REVOKE USAGE ON SCHEMA pgtenancy FROM PUBLIC;
