-- 20_registry-hardening.sql (issue 19, defect 3): a registered table cannot be dropped while
-- registered (event trigger); a new link makes live segments recompile.
CREATE OR REPLACE FUNCTION outreach.add_entity_link(entity text, link_column name, target_entity text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  src outreach.entity;
  tgt outreach.entity;
  col_type regtype;
BEGIN
  SELECT * INTO src FROM outreach.entity e WHERE e.name = add_entity_link.entity;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'entity "%" is not registered', add_entity_link.entity USING ERRCODE = 'undefined_object';
  END IF;
  SELECT * INTO tgt FROM outreach.entity e WHERE e.name = target_entity;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'entity "%" is not registered', target_entity USING ERRCODE = 'undefined_object';
  END IF;
  col_type := outreach._column_type(src.relation, link_column);
  IF col_type IS NULL THEN
    RAISE EXCEPTION 'column "%" does not exist in table %', link_column, src.relation USING ERRCODE = 'undefined_column';
  END IF;
  IF tgt.key_column IS NULL OR col_type <> outreach._column_type(tgt.relation, tgt.key_column) THEN
    RAISE EXCEPTION 'column "%" of table % (type %) cannot reference entity "%"', link_column, src.relation, col_type, tgt.name
      USING ERRCODE = 'datatype_mismatch',
      DETAIL = 'The target needs a single-column primary key of the same type.';
  END IF;
  INSERT INTO outreach.entity_link (entity, link_column, target_entity) VALUES (src.name, link_column, tgt.name);
  -- a new link can change what definitions compile to: live segments recompile
  PERFORM outreach._membership_invalidate();
END $$;

CREATE OR REPLACE FUNCTION outreach._entity_table_dropped() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d record;
BEGIN
  -- the extension or its schema going away takes the registry with it
  IF pg_catalog.to_regclass('outreach.entity') IS NULL OR EXISTS (
       SELECT 1 FROM pg_catalog.pg_event_trigger_dropped_objects() x
       WHERE x.object_type = 'schema' AND x.object_name = 'outreach') THEN
    RETURN;
  END IF;
  SELECT e.name, x.object_identity INTO d
  FROM pg_catalog.pg_event_trigger_dropped_objects() x
  JOIN outreach.entity e ON e.relation::oid = x.objid
  WHERE x.classid = 'pg_catalog.pg_class'::regclass AND x.objsubid = 0
  ORDER BY e.name LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'table % is registered as entity "%"', d.object_identity, d.name
      USING ERRCODE = 'dependent_objects_still_exist',
            DETAIL = 'Segments and the links of other entities read it through the entity registry.',
            HINT = pg_catalog.format('Unregister it first with outreach.unregister_entity(%L), after dropping or changing the segments that use it.', d.name);
  END IF;
END $$;

REVOKE ALL ON FUNCTION outreach._entity_table_dropped() FROM PUBLIC;
CREATE EVENT TRIGGER outreach_entity_table_dropped ON sql_drop
  WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED', 'DROP FOREIGN TABLE', 'DROP VIEW', 'DROP MATERIALIZED VIEW')
  EXECUTE FUNCTION outreach._entity_table_dropped();
