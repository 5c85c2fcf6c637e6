-- pgrls library objects, step 1: the function that sets the tenant.
--
-- pgrls.set_tenant runs SET LOCAL through EXECUTE, so the tenant travels as a
-- bind parameter (prepared statements stay cached) and Citus propagates the
-- setting to the shards (with citus.propagate_set_commands = 'local').
CREATE FUNCTION pgrls.set_tenant(tenant text) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $pgrls$
BEGIN
    IF tenant IS NULL OR tenant = '' THEN
        RAISE EXCEPTION 'pgrls: tenant must not be null or empty' USING ERRCODE = '22023';
    END IF;
    EXECUTE pg_catalog.format('SET LOCAL {{.setting}} = %L', tenant);
END
$pgrls$;

COMMENT ON FUNCTION pgrls.set_tenant(text) IS 'pgrls: sets {{.setting}} for the current transaction';

GRANT USAGE ON SCHEMA pgrls TO PUBLIC;
GRANT EXECUTE ON FUNCTION pgrls.set_tenant(text) TO PUBLIC;

---- create above / drop below ----

DROP FUNCTION pgrls.set_tenant(text);
REVOKE USAGE ON SCHEMA pgrls FROM PUBLIC;
