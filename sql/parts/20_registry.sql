-- 20_registry.sql: dataset configuration, the registry of entities segments may use.
--
-- An entity is a table plus how its rows lead to a contact.  Links are foreign-key edges
-- between registered entities (entity.link_column -> target entity's key).  The entity's
-- *primary* link is the one registration names: it leads to contact directly (condition ->
-- contact) or through another registered entity (a user's lab_result -> encounter -> contact).
-- account has no column leading to contact; its contacts are found through the reverse edge
-- contact.account_id -> account.  Further edges (condition.encounter_id -> encounter) are
-- recorded too, so segments can nest relations (`has encounter where has condition ...`).

CREATE TABLE outreach.entity (
  name          text PRIMARY KEY
                CONSTRAINT entity_name_format CHECK (name ~ '^[a-z_][a-z0-9_]*$'),
  relation      regclass NOT NULL UNIQUE,
  display_name  text NOT NULL,
  key_column    name,
  link_column   name,
  link_entity   text REFERENCES outreach.entity (name),
  time_column   name,
  builtin       boolean NOT NULL DEFAULT false,
  registered_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT entity_link_complete CHECK ((link_column IS NULL) = (link_entity IS NULL))
);
COMMENT ON TABLE outreach.entity IS
  'Registered entities (dataset configuration): the tables segments may use, their link to contact, time column and display name';
COMMENT ON COLUMN outreach.entity.key_column IS 'Single-column primary key, the target of links from other entities (NULL: none)';
COMMENT ON COLUMN outreach.entity.link_column IS 'Primary link: the column leading to contact, directly or through link_entity';
COMMENT ON COLUMN outreach.entity.time_column IS 'The column `latest(...)` orders by';

CREATE TABLE outreach.entity_link (
  entity        text NOT NULL REFERENCES outreach.entity (name) ON DELETE CASCADE,
  link_column   name NOT NULL,
  target_entity text NOT NULL REFERENCES outreach.entity (name) ON DELETE CASCADE,
  is_primary    boolean NOT NULL DEFAULT false,
  PRIMARY KEY (entity, link_column)
);
COMMENT ON TABLE outreach.entity_link IS
  'Every link between registered entities: entity.link_column references target_entity''s key';

-- Resolve a table name to a registrable relation, with the errors a user needs.
CREATE FUNCTION outreach._resolve_table(tbl text) RETURNS regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rel regclass;
  kind "char";
BEGIN
  IF tbl IS NULL OR btrim(tbl) = '' THEN
    RAISE EXCEPTION 'a table name is required' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  BEGIN
    rel := to_regclass(tbl);
  EXCEPTION WHEN others THEN
    RAISE EXCEPTION 'invalid table name "%"', tbl USING ERRCODE = 'invalid_name',
      HINT = 'Write the name as in SQL, schema-qualified if needed, e.g. ''ehr.diagnosis''.';
  END;
  IF rel IS NULL THEN
    RAISE EXCEPTION 'table "%" does not exist', tbl USING ERRCODE = 'undefined_table',
      HINT = 'Create the table first, or qualify its name with its schema.';
  END IF;
  SELECT c.relkind INTO kind FROM pg_class c WHERE c.oid = rel;
  IF kind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = 'wrong_object_type',
      DETAIL = 'Only ordinary and partitioned tables can be registered, because membership is kept by triggers on them.';
  END IF;
  RETURN rel;
END $$;

CREATE FUNCTION outreach._column_type(rel regclass, col name) RETURNS regtype
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT a.atttypid::regtype FROM pg_attribute a
  WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped
$$;

CREATE FUNCTION outreach._single_key(rel regclass) RETURNS name
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
  WHERE i.indrelid = rel AND i.indisprimary AND i.indnkeyatts = 1
$$;

-- The registered entity whose table a column references through a foreign key, if any.
CREATE FUNCTION outreach._fk_target(rel regclass, col name) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT e.name
  FROM pg_constraint k
  JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
  JOIN outreach.entity e ON e.relation = k.confrelid
  WHERE k.conrelid = rel AND k.contype = 'f' AND cardinality(k.conkey) = 1 AND a.attname = col
  LIMIT 1
$$;

CREATE FUNCTION outreach.register_entity(
  entity_table text,
  link_column  name DEFAULT NULL,
  time_column  name DEFAULT NULL,
  display_name text DEFAULT NULL,
  name         text DEFAULT NULL,
  link_entity  text DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  rel        regclass := outreach._resolve_table(entity_table);
  ent_name   text := coalesce(name, (SELECT c.relname::text FROM pg_class c WHERE c.oid = rel));
  existing   text;
  target     outreach.entity;
  link_type  regtype;
  key_type   regtype;
  time_type  regtype;
  fk_target  text;
  r          record;
BEGIN
  -- Registrations are rare: serialise them so concurrent ones see each other and fail cleanly.
  LOCK TABLE outreach.entity IN SHARE ROW EXCLUSIVE MODE;
  IF ent_name !~ '^[a-z_][a-z0-9_]*$' THEN
    RAISE EXCEPTION 'invalid entity name "%"', ent_name USING ERRCODE = 'invalid_name',
      DETAIL = 'Entity names are what segments are written with: lower case letters, digits and underscores, not starting with a digit.',
      HINT = 'Pass name => ''...'' to register the table under another name.';
  END IF;
  SELECT e.name INTO existing FROM outreach.entity e WHERE e.name = ent_name;
  IF FOUND THEN
    RAISE EXCEPTION 'an entity named "%" is already registered', ent_name USING ERRCODE = 'duplicate_object',
      HINT = 'Pass name => ''...'' to register this table under another name, or unregister the other one first.';
  END IF;
  SELECT e.name INTO existing FROM outreach.entity e WHERE e.relation = rel;
  IF FOUND THEN
    RAISE EXCEPTION 'table % is already registered as entity "%"', rel, existing USING ERRCODE = 'duplicate_object';
  END IF;

  IF link_column IS NULL THEN
    RAISE EXCEPTION 'entity "%" needs a link to contact', ent_name USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Segments find the patient of each row through a column that references contact, or another registered entity.',
      HINT = 'Pass link_column => ''patient_id'' (the column holding the contact id).';
  END IF;
  link_type := outreach._column_type(rel, link_column);
  IF link_type IS NULL THEN
    RAISE EXCEPTION 'column "%" does not exist in table %', link_column, rel USING ERRCODE = 'undefined_column',
      HINT = 'link_column names the column of this table that holds the contact id (or the id of another registered entity).';
  END IF;
  fk_target := outreach._fk_target(rel, link_column);
  IF link_entity IS NOT NULL AND fk_target IS NOT NULL AND fk_target <> link_entity THEN
    RAISE EXCEPTION 'column "%" of table % references entity "%", not "%"', link_column, rel, fk_target, link_entity
      USING ERRCODE = 'invalid_foreign_key';
  END IF;
  SELECT * INTO target FROM outreach.entity e WHERE e.name = coalesce(link_entity, fk_target, 'contact');
  IF NOT FOUND THEN
    RAISE EXCEPTION 'link target entity "%" is not registered', coalesce(link_entity, fk_target, 'contact')
      USING ERRCODE = 'undefined_object', HINT = 'Register the entity the link column points to first.';
  END IF;
  IF target.key_column IS NULL THEN
    RAISE EXCEPTION 'entity "%" has no single-column primary key for "%" to reference', target.name, link_column
      USING ERRCODE = 'invalid_foreign_key';
  END IF;
  key_type := outreach._column_type(target.relation, target.key_column);
  IF link_type <> key_type THEN
    RAISE EXCEPTION 'column "%" of table % is of type %, but it links to %.% of type %',
      link_column, rel, link_type, target.name, target.key_column, key_type
      USING ERRCODE = 'datatype_mismatch', HINT = format('Change the column to %s, or link through another column.', key_type);
  END IF;

  IF time_column IS NOT NULL THEN
    time_type := outreach._column_type(rel, time_column);
    IF time_type IS NULL THEN
      RAISE EXCEPTION 'column "%" does not exist in table %', time_column, rel USING ERRCODE = 'undefined_column',
        HINT = 'time_column names the date or timestamp column that orders this entity''s rows (used by latest(...)).';
    END IF;
    IF time_type NOT IN ('date'::regtype, 'timestamp without time zone'::regtype, 'timestamp with time zone'::regtype) THEN
      RAISE EXCEPTION 'time column "%" of table % is of type %', time_column, rel, time_type
        USING ERRCODE = 'datatype_mismatch', DETAIL = 'A time column must be date, timestamp or timestamptz.';
    END IF;
  END IF;

  INSERT INTO outreach.entity (name, relation, display_name, key_column, link_column, link_entity, time_column)
  VALUES (ent_name, rel, coalesce(display_name, initcap(replace(ent_name, '_', ' '))),
          outreach._single_key(rel), link_column, target.name, time_column);
  INSERT INTO outreach.entity_link (entity, link_column, target_entity, is_primary)
  VALUES (ent_name, link_column, target.name, true);

  -- Other foreign keys of this table to registered entities, and of registered tables to this one.
  FOR r IN
    SELECT a.attname AS col, e.name AS tgt FROM pg_constraint k
    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
    JOIN outreach.entity e ON e.relation = k.confrelid
    WHERE k.conrelid = rel AND k.contype = 'f' AND cardinality(k.conkey) = 1 AND a.attname <> register_entity.link_column
  LOOP
    INSERT INTO outreach.entity_link (entity, link_column, target_entity) VALUES (ent_name, r.col, r.tgt)
    ON CONFLICT DO NOTHING;
  END LOOP;
  FOR r IN
    SELECT e.name AS src, a.attname AS col FROM pg_constraint k
    JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
    JOIN outreach.entity e ON e.relation = k.conrelid
    WHERE k.confrelid = rel AND k.contype = 'f' AND cardinality(k.conkey) = 1 AND e.name <> ent_name
  LOOP
    INSERT INTO outreach.entity_link (entity, link_column, target_entity) VALUES (r.src, r.col, ent_name)
    ON CONFLICT DO NOTHING;
  END LOOP;

  PERFORM outreach._entity_registered(ent_name);
  RETURN ent_name;
END $$;
COMMENT ON FUNCTION outreach.register_entity(text, name, name, text, text, text) IS
  'Registers a table for segmentation: its link to contact (a column referencing contact or another registered entity), time column and display name';

-- Extension point: later modules replace this to act on a new registration (attach
-- the membership triggers).  It is part of the install script, not a placeholder for users.
CREATE FUNCTION outreach._entity_registered(entity text) RETURNS void
LANGUAGE sql AS $$ SELECT $$;

CREATE FUNCTION outreach.add_entity_link(entity text, link_column name, target_entity text) RETURNS void
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

CREATE FUNCTION outreach.unregister_entity(entity text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  e outreach.entity;
  users text;
BEGIN
  SELECT * INTO e FROM outreach.entity x WHERE x.name = unregister_entity.entity;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'entity "%" is not registered', unregister_entity.entity USING ERRCODE = 'undefined_object';
  END IF;
  IF e.builtin THEN
    RAISE EXCEPTION 'entity "%" is built in and cannot be unregistered', e.name USING ERRCODE = 'object_in_use';
  END IF;
  SELECT string_agg(x.name, ', ' ORDER BY x.name) INTO users FROM outreach.entity x WHERE x.link_entity = e.name AND x.name <> e.name;
  IF users IS NOT NULL THEN
    RAISE EXCEPTION 'entity "%" is the link to contact of other entities', e.name USING ERRCODE = 'dependent_objects_still_exist',
      DETAIL = format('Entities linked through it: %s.', users), HINT = 'Unregister those entities first.';
  END IF;
  users := outreach._entity_users(e.name);
  IF users IS NOT NULL THEN
    RAISE EXCEPTION 'entity "%" is used by segments', e.name USING ERRCODE = 'dependent_objects_still_exist',
      DETAIL = format('Segments using it: %s.', users), HINT = 'Drop those segments or change their definitions first.';
  END IF;
  PERFORM outreach._entity_unregistering(e.name);
  DELETE FROM outreach.entity x WHERE x.name = e.name;
END $$;

-- Extension points for later modules: who uses an entity (segments), and detaching triggers.
CREATE FUNCTION outreach._entity_users(entity text) RETURNS text LANGUAGE sql AS $$ SELECT NULL::text $$;
CREATE FUNCTION outreach._entity_unregistering(entity text) RETURNS void LANGUAGE sql AS $$ SELECT $$;

-- What can be segmented: every registered entity with its fields and types.
CREATE VIEW outreach.entity_field AS
SELECT e.name AS entity,
       e.display_name,
       a.attname::text AS field,
       format_type(a.atttypid, a.atttypmod) AS data_type,
       a.attname = e.key_column AS is_key,
       l.target_entity AS links_to,
       a.attname = e.time_column AS is_time_column,
       outreach.field_allowed_values(e.relation, a.attname) AS allowed_values,
       a.attnum AS position
FROM outreach.entity e
JOIN pg_attribute a ON a.attrelid = e.relation AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN outreach.entity_link l ON l.entity = e.name AND l.link_column = a.attname
UNION ALL
SELECT 'contact', e.display_name, 'age', 'integer', false, NULL, false, NULL, 10000
FROM outreach.entity e WHERE e.name = 'contact';
COMMENT ON VIEW outreach.entity_field IS
  'Every field of every registered entity with its type, links and allowed values: what segments can use (age is computed from contact.birthdate)';

CREATE VIEW outreach.entity_overview AS
SELECT e.name AS entity, e.display_name, e.relation::text AS table_name, e.key_column, e.link_column,
       e.link_entity, e.time_column, e.builtin,
       (SELECT string_agg(format('%s -> %s', l.link_column, l.target_entity), ', ' ORDER BY l.link_column)
          FROM outreach.entity_link l WHERE l.entity = e.name) AS links,
       e.registered_at
FROM outreach.entity e;

-- Built-in entities.
INSERT INTO outreach.entity (name, relation, display_name, key_column, builtin) VALUES
  ('contact', 'outreach.contact', 'Contact (Patient)', 'id', true),
  ('account', 'outreach.account', 'Account', 'id', true);
INSERT INTO outreach.entity (name, relation, display_name, key_column, link_column, link_entity, time_column, builtin) VALUES
  ('encounter',    'outreach.encounter',    'Encounter',    'id', 'patient_id', 'contact', 'start_at',        true),
  ('condition',    'outreach.condition',    'Condition',    'id', 'patient_id', 'contact', 'onset_date',      true),
  ('observation',  'outreach.observation',  'Observation',  'id', 'patient_id', 'contact', 'effective_at',    true),
  ('procedure',    'outreach.procedure',    'Procedure',    'id', 'patient_id', 'contact', 'performed_at',    true),
  ('immunization', 'outreach.immunization', 'Immunization', 'id', 'patient_id', 'contact', 'administered_at', true),
  ('medication',   'outreach.medication',   'Medication',   'id', 'patient_id', 'contact', 'start_at',        true),
  ('allergy',      'outreach.allergy',      'Allergy',      'id', 'patient_id', 'contact', 'start_at',        true);
INSERT INTO outreach.entity_link (entity, link_column, target_entity, is_primary) VALUES
  ('contact', 'account_id', 'account', false),
  ('account', 'parent_id', 'account', false),
  ('encounter', 'patient_id', 'contact', true),
  ('condition', 'patient_id', 'contact', true),
  ('condition', 'encounter_id', 'encounter', false),
  ('observation', 'patient_id', 'contact', true),
  ('observation', 'encounter_id', 'encounter', false),
  ('procedure', 'patient_id', 'contact', true),
  ('procedure', 'encounter_id', 'encounter', false),
  ('immunization', 'patient_id', 'contact', true),
  ('immunization', 'encounter_id', 'encounter', false),
  ('medication', 'patient_id', 'contact', true),
  ('medication', 'encounter_id', 'encounter', false),
  ('allergy', 'patient_id', 'contact', true),
  ('allergy', 'encounter_id', 'encounter', false);

-- A registered table cannot be dropped while registered (issue 19, defect 3): the registry
-- holds its OID, so a drop would leave segments, links and the maintenance triggers of
-- other tables pointing at nothing.  An event trigger refuses the drop (DROP TABLE, DROP
-- SCHEMA ... CASCADE, DROP OWNED) with a hint; unregister_entity() first.  A rename or a
-- move to another schema keeps the OID, and what runs is compiled from the registry each
-- time, so live segments follow the table, never a new table created under the old name.
CREATE FUNCTION outreach._entity_table_dropped() RETURNS event_trigger
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
