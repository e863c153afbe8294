-- 72_fhir.sql: import of FHIR R4 data (Bundles and Bulk Data NDJSON) into the built-in tables.
--
-- Owns: outreach.import_fhir(path); the code-system catalogue outreach.code_system (short
-- names such as 'SNOMED' for the URIs FHIR writes); the provenance table outreach.fhir_source
-- (which resource produced which row, so a re-import updates instead of duplicating); every
-- coding of every imported CodeableConcept (outreach.fhir_coding); a patient's care team
-- (outreach.care_team_member); and the contact columns FHIR brings (language, race,
-- ethnicity, fhir_extension).
--
-- The import reads the files on the server (pg_read_file), parses them with jsonb and works
-- set-based on all resources at once: stage, check everything and name every bad input by
-- file, entry (or line) and a FHIRPath-like location, then load parents first.  One function
-- call is one transaction: an error leaves nothing half loaded.  What is not mapped (resource
-- types, elements, unresolved references) is counted in the result.  docs/fhir-import.md.

-- Contact columns FHIR brings (contact.language, the BCP-47 tag of Patient.communication,
-- is added by 55_content.sql, which uses it to pick template variants); race, ethnicity: the text of the US Core race / ethnicity
-- extensions; fhir_extension: the Patient's extensions as received (codings included).
ALTER TABLE outreach.contact
  ADD COLUMN race text,
  ADD COLUMN ethnicity text,
  ADD COLUMN fhir_extension jsonb;
COMMENT ON COLUMN outreach.contact.race IS 'Race as the US Core race extension''s text gives it (codes in fhir_extension)';
COMMENT ON COLUMN outreach.contact.ethnicity IS 'Ethnicity as the US Core ethnicity extension''s text gives it (codes in fhir_extension)';
COMMENT ON COLUMN outreach.contact.fhir_extension IS 'The FHIR Patient''s extension array as imported (race, ethnicity, birth sex, ...)';

-- Code systems: the short name the tables and value sets use, and the URI FHIR uses.
CREATE TABLE outreach.code_system (
  name  text PRIMARY KEY,
  uri   text NOT NULL UNIQUE,
  title text
);
COMMENT ON TABLE outreach.code_system IS
  'Code systems by short name (code_system columns, value sets) and FHIR URI; the FHIR import stores the short name when the URI is listed here, else the URI';
COMMENT ON COLUMN outreach.code_system.uri IS 'The system URI FHIR codings carry (Coding.system), e.g. http://snomed.info/sct; unique';
COMMENT ON COLUMN outreach.code_system.title IS 'Human-readable title of the code system, e.g. SNOMED CT (NULL: none given)';
INSERT INTO outreach.code_system (name, uri, title) VALUES
  ('SNOMED', 'http://snomed.info/sct', 'SNOMED CT'),
  ('LOINC', 'http://loinc.org', 'LOINC'),
  ('CVX', 'http://hl7.org/fhir/sid/cvx', 'CDC vaccine codes'),
  ('RxNorm', 'http://www.nlm.nih.gov/research/umls/rxnorm', 'RxNorm'),
  ('ICD-10-CM', 'http://hl7.org/fhir/sid/icd-10-cm', 'ICD-10-CM'),
  ('ICD-10', 'http://hl7.org/fhir/sid/icd-10', 'ICD-10'),
  ('NDC', 'http://hl7.org/fhir/sid/ndc', 'National Drug Codes'),
  ('CPT', 'http://www.ama-assn.org/go/cpt', 'CPT'),
  ('UCUM', 'http://unitsofmeasure.org', 'UCUM units'),
  ('Synthea', 'http://synthetichealth.github.io/synthea', 'Synthea''s own codes (QALY, DALY, QOLS)'),
  ('ActCode', 'http://terminology.hl7.org/CodeSystem/v3-ActCode', 'HL7 v3 ActCode (encounter classes)');
SELECT outreach._dump('outreach.code_system',
  $f$WHERE name NOT IN ('SNOMED','LOINC','CVX','RxNorm','ICD-10-CM','ICD-10','NDC','CPT','UCUM','Synthea','ActCode')$f$);

-- Which resource produced which row.  source_key is Type/id, or Type/id#component[i] for a
-- row made from a part of a resource (the readings of a blood-pressure panel).
CREATE TABLE outreach.fhir_source (
  source_key  text PRIMARY KEY,
  entity      text NOT NULL,
  row_id      bigint NOT NULL,
  contact_id  bigint REFERENCES outreach.contact ON DELETE CASCADE,
  source_file text,
  imported_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON outreach.fhir_source (entity, row_id);
CREATE INDEX ON outreach.fhir_source (contact_id);
COMMENT ON TABLE outreach.fhir_source IS
  'Provenance of rows imported from FHIR: resource (Type/id[#component[i]]), the row it produced, its patient and file';
COMMENT ON COLUMN outreach.fhir_source.source_key IS
  'The FHIR resource as Type/id (e.g. Condition/123), or Type/id#component[i] for a row made from the i-th component of a resource';
COMMENT ON COLUMN outreach.fhir_source.entity IS 'Registered entity (outreach.entity.name) whose table holds the row, e.g. contact, encounter, condition, observation';
COMMENT ON COLUMN outreach.fhir_source.row_id IS 'Id of the row the resource produced in the entity''s table; a re-import updates that row';
COMMENT ON COLUMN outreach.fhir_source.source_file IS 'Server path of the Bundle or NDJSON file the resource was last imported from';
COMMENT ON COLUMN outreach.fhir_source.imported_at IS 'When the resource was first imported, or last imported with a change to its row, file or patient';
SELECT outreach._dump('outreach.fhir_source');

-- Every coding of every imported CodeableConcept; the row's own code/code_system hold the
-- primary one (is_primary).  element: code, valueCodeableConcept, type, class, reasonCode.
CREATE TABLE outreach.fhir_coding (
  entity      text NOT NULL,
  row_id      bigint NOT NULL,
  contact_id  bigint REFERENCES outreach.contact ON DELETE CASCADE,
  element     text NOT NULL,
  ordinal     integer NOT NULL,
  code_system text,
  code        text,
  display     text,
  is_primary  boolean NOT NULL DEFAULT false,
  PRIMARY KEY (entity, row_id, element, ordinal)
);
CREATE INDEX ON outreach.fhir_coding (code_system, code);
CREATE INDEX ON outreach.fhir_coding (contact_id);
COMMENT ON TABLE outreach.fhir_coding IS
  'All codings of the CodeableConcepts of imported FHIR resources (the row''s code column holds the primary one)';
COMMENT ON COLUMN outreach.fhir_coding.entity IS 'Registered entity (outreach.entity.name) whose row the concept belongs to, e.g. condition, observation, encounter';
COMMENT ON COLUMN outreach.fhir_coding.row_id IS 'Id of that row in the entity''s table (as in fhir_source.row_id)';
COMMENT ON COLUMN outreach.fhir_coding.element IS 'The resource element holding the CodeableConcept: code, vaccineCode, medicationCodeableConcept, valueCodeableConcept (observations), or type, class, reasonCode (encounters)';
COMMENT ON COLUMN outreach.fhir_coding.ordinal IS 'Position of the coding in the element''s coding array, from 0';
COMMENT ON COLUMN outreach.fhir_coding.display IS 'The coding''s display text as received (Coding.display; NULL when absent)';
COMMENT ON COLUMN outreach.fhir_coding.is_primary IS 'True for the coding copied into the row''s own code and code_system columns (the preferred system''s, else one marked userSelected, else the first)';
SELECT outreach._dump('outreach.fhir_coding');

-- A patient's care team: the general practitioner (Patient.generalPractitioner) and the
-- practitioners who took part in their encounters, with the first and last time seen.
CREATE TABLE outreach.care_team_member (
  id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  contact_id      bigint NOT NULL REFERENCES outreach.contact ON DELETE CASCADE,
  practitioner_id bigint REFERENCES outreach.contact ON DELETE CASCADE,
  organization_id bigint REFERENCES outreach.account ON DELETE CASCADE,
  role            text NOT NULL
                  CONSTRAINT care_team_member_role_allowed CHECK (outreach.allowed_value(role, 'care_team_member.role',
                    '{general_practitioner,encounter_participant}')),
  first_seen_at   timestamptz,
  last_seen_at    timestamptz,
  encounters      integer,
  CONSTRAINT care_team_member_who CHECK (practitioner_id IS NOT NULL OR organization_id IS NOT NULL),
  CONSTRAINT care_team_member_unique UNIQUE NULLS NOT DISTINCT (contact_id, role, practitioner_id, organization_id)
);
CREATE INDEX ON outreach.care_team_member (practitioner_id);
COMMENT ON TABLE outreach.care_team_member IS
  'Care team of a patient: general practitioner (person or organization) and the practitioners of their encounters';
COMMENT ON COLUMN outreach.care_team_member.practitioner_id IS 'The practitioner, imported as a contact (outreach.contact.id); NULL when the member is an organization';
COMMENT ON COLUMN outreach.care_team_member.organization_id IS 'The organization (outreach.account.id) named as general practitioner; NULL when the member is a person';
COMMENT ON COLUMN outreach.care_team_member.role IS
  'general_practitioner (Patient.generalPractitioner) or encounter_participant (a participant of one of the patient''s encounters)';
COMMENT ON COLUMN outreach.care_team_member.first_seen_at IS 'Start of the earliest encounter the practitioner took part in (NULL for general_practitioner)';
COMMENT ON COLUMN outreach.care_team_member.last_seen_at IS 'Start of the latest encounter the practitioner took part in (NULL for general_practitioner)';
COMMENT ON COLUMN outreach.care_team_member.encounters IS 'Number of the patient''s encounters the practitioner took part in (NULL for general_practitioner)';
SELECT outreach._dump('outreach.care_team_member');

-- ---------------------------------------------------------------------------------------
-- Value helpers
-- ---------------------------------------------------------------------------------------

-- The short name of a code system URI (outreach.code_system), the URI itself when unlisted.
CREATE FUNCTION outreach._fhir_system(uri text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT coalesce((SELECT cs.name FROM outreach.code_system cs WHERE cs.uri = $1), $1)
$$;

-- Is v a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or with a time and an offset)?
CREATE FUNCTION outreach._fhir_valid_datetime(v text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN v IS NULL THEN true
    -- fast path: a day that exists in every month, a valid time and offset
    WHEN v ~ '^(?!0000)\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])(T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-](0\d|1[0-4]):[0-5]\d))?$' THEN true
    WHEN v ~ '^\d{4}$' THEN v::int >= 1
    WHEN v ~ '^\d{4}-\d\d$' THEN split_part(v, '-', 1)::int >= 1 AND split_part(v, '-', 2)::int BETWEEN 1 AND 12
    ELSE v ~ '^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)?)?$'
         AND outreach._synthea_valid('timestamp', regexp_replace(v, '(\.\d{1,6})\d*', '\1'))
  END
$$;

-- A FHIR date or dateTime as an instant.  A dateTime with an offset (or Z) is that instant.
-- A date-only value (or a partial date, taken as its first day) is a calendar date in the
-- patient's time zone: its start, midnight there (UTC when the zone is unknown); so is a
-- time without an offset.  docs/fhir-import.md, "Dates".
CREATE FUNCTION outreach._fhir_ts(v text, tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN v IS NULL OR v = '' THEN NULL
    WHEN v ~ 'T.*(Z|[+-]\d\d:\d\d)$' THEN v::timestamptz
    WHEN v ~ '^\d{4}$' THEN make_date(v::int, 1, 1)::timestamp AT TIME ZONE coalesce(tz, 'UTC')
    WHEN v ~ '^\d{4}-\d\d$' THEN make_date(split_part(v, '-', 1)::int, split_part(v, '-', 2)::int, 1)::timestamp
                                 AT TIME ZONE coalesce(tz, 'UTC')
    ELSE v::timestamp AT TIME ZONE coalesce(tz, 'UTC')
  END
$$;

-- A FHIR date or dateTime as a calendar date: the date as written (for a dateTime, the
-- date in its own offset, i.e. the patient's local date); a partial date is its first day.
CREATE FUNCTION outreach._fhir_date(v text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN v IS NULL OR v = '' THEN NULL
    WHEN v ~ '^\d{4}$' THEN make_date(v::int, 1, 1)
    WHEN v ~ '^\d{4}-\d\d$' THEN make_date(split_part(v, '-', 1)::int, split_part(v, '-', 2)::int, 1)
    ELSE left(v, 10)::date
  END
$$;

-- A phone number in E.164, or NULL when it cannot be one.  '+' numbers keep their digits;
-- a 10-digit number (or 11 starting with 1) of a North American address gets +1.  North
-- American numbers must have a real area code and exchange ([2-9]xx, not N11, not 555):
-- Synthea's 555-xxx-xxxx placeholders are not dialable and are not stored.
CREATE FUNCTION outreach._fhir_e164(v text, country text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN e ~ '^\+1' AND e !~ '^\+1[2-9]\d\d[2-9]\d{6}$' THEN NULL
    WHEN e ~ '^\+1' AND (substr(e, 3, 3) = '555' OR substr(e, 4, 2) = '11' OR substr(e, 7, 2) = '11') THEN NULL
    WHEN e ~ '^\+[1-9]\d{6,14}$' THEN e
  END
  FROM (SELECT CASE
          WHEN v IS NULL THEN NULL
          WHEN btrim(v) ~ '^\+' THEN '+' || d
          WHEN coalesce(upper(country), 'US') IN ('US', 'USA', 'CA', 'CAN') AND length(d) = 10 THEN '+1' || d
          WHEN coalesce(upper(country), 'US') IN ('US', 'USA', 'CA', 'CAN') AND length(d) = 11 AND d ~ '^1' THEN '+' || d
        END AS e
        FROM (SELECT regexp_replace(coalesce(v, ''), '[^0-9]', '', 'g') AS d) x) y
$$;

-- The IANA zone of a US state written as a name or a two-letter code.
CREATE FUNCTION outreach._fhir_state_time_zone(state text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(outreach._synthea_state_time_zone(state), outreach._synthea_state_time_zone(
    CASE upper(state)
      WHEN 'AL' THEN 'Alabama' WHEN 'AK' THEN 'Alaska' WHEN 'AZ' THEN 'Arizona' WHEN 'AR' THEN 'Arkansas'
      WHEN 'CA' THEN 'California' WHEN 'CO' THEN 'Colorado' WHEN 'CT' THEN 'Connecticut' WHEN 'DE' THEN 'Delaware'
      WHEN 'DC' THEN 'District of Columbia' WHEN 'FL' THEN 'Florida' WHEN 'GA' THEN 'Georgia' WHEN 'HI' THEN 'Hawaii'
      WHEN 'ID' THEN 'Idaho' WHEN 'IL' THEN 'Illinois' WHEN 'IN' THEN 'Indiana' WHEN 'IA' THEN 'Iowa'
      WHEN 'KS' THEN 'Kansas' WHEN 'KY' THEN 'Kentucky' WHEN 'LA' THEN 'Louisiana' WHEN 'ME' THEN 'Maine'
      WHEN 'MD' THEN 'Maryland' WHEN 'MA' THEN 'Massachusetts' WHEN 'MI' THEN 'Michigan' WHEN 'MN' THEN 'Minnesota'
      WHEN 'MS' THEN 'Mississippi' WHEN 'MO' THEN 'Missouri' WHEN 'MT' THEN 'Montana' WHEN 'NE' THEN 'Nebraska'
      WHEN 'NV' THEN 'Nevada' WHEN 'NH' THEN 'New Hampshire' WHEN 'NJ' THEN 'New Jersey' WHEN 'NM' THEN 'New Mexico'
      WHEN 'NY' THEN 'New York' WHEN 'NC' THEN 'North Carolina' WHEN 'ND' THEN 'North Dakota' WHEN 'OH' THEN 'Ohio'
      WHEN 'OK' THEN 'Oklahoma' WHEN 'OR' THEN 'Oregon' WHEN 'PA' THEN 'Pennsylvania' WHEN 'RI' THEN 'Rhode Island'
      WHEN 'SC' THEN 'South Carolina' WHEN 'SD' THEN 'South Dakota' WHEN 'TN' THEN 'Tennessee' WHEN 'TX' THEN 'Texas'
      WHEN 'UT' THEN 'Utah' WHEN 'VT' THEN 'Vermont' WHEN 'VA' THEN 'Virginia' WHEN 'WA' THEN 'Washington'
      WHEN 'WV' THEN 'West Virginia' WHEN 'WI' THEN 'Wisconsin' WHEN 'WY' THEN 'Wyoming' WHEN 'PR' THEN 'Puerto Rico'
    END))
$$;

-- The primary coding of a CodeableConcept: the first coding of the preferred system (the
-- entity's usual one: SNOMED for conditions, LOINC for observations, ...), else the first one
-- the user selected, else the first one.  docs/fhir-import.md, "Codes".
CREATE FUNCTION outreach._fhir_primary_coding(cc jsonb, preferred text) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT x.c FROM jsonb_array_elements(CASE WHEN jsonb_typeof(cc -> 'coding') = 'array' THEN cc -> 'coding' ELSE '[]' END)
                  WITH ORDINALITY x(c, n)
  ORDER BY (x.c ->> 'system' = preferred) DESC NULLS LAST, (x.c -> 'userSelected' = 'true') DESC NULLS LAST, x.n
  LIMIT 1
$$;

-- Drop a staging table of this session if it exists (quietly).
CREATE FUNCTION outreach._fhir_drop(VARIADIC names text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE n text;
BEGIN
  FOREACH n IN ARRAY names LOOP
    IF to_regclass(format('pg_temp.%I', n)) IS NOT NULL THEN
      EXECUTE format('DROP TABLE pg_temp.%I', n);
    END IF;
  END LOOP;
END $$;

-- Load one entity: select_sql yields source_key, contact_id, source_file, ord and the target
-- columns cols (external_id among them matches rows imported another way, e.g. from CSV).
-- Changed rows are updated, new ones inserted with ids in input order, unchanged ones are
-- not touched; the provenance of each is recorded in outreach.fhir_source.
CREATE FUNCTION outreach._fhir_upsert(entity text, select_sql text, cols text[],
                                      OUT inserted bigint, OUT updated bigint, OUT total bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  target text := format('outreach.%I', entity);
  seq    text := pg_get_serial_sequence(format('outreach.%I', entity), 'id');
  clist  text := (SELECT string_agg(format('%I', c), ', ') FROM unnest(cols) c);
  rlist  text := (SELECT string_agg(format('r.%I', c), ', ') FROM unnest(cols) c);
  tlist  text := (SELECT string_agg(format('t.%I', c), ', ') FROM unnest(cols) c);
BEGIN
  PERFORM outreach._fhir_drop('fhir_rows');
  EXECUTE format('CREATE TEMP TABLE fhir_rows AS
                  SELECT q.*, coalesce(t.id, %s) AS existing_id, NULL::bigint AS new_id
                  FROM (%s) q
                  LEFT JOIN outreach.fhir_source m ON m.source_key = q.source_key AND m.entity = %L
                  LEFT JOIN %s t ON t.id = m.row_id',
                 CASE WHEN 'external_id' = ANY (cols)
                      THEN format('(SELECT x.id FROM %s x WHERE x.external_id = q.external_id)', target)
                      ELSE 'NULL::bigint' END,
                 select_sql, entity, target);
  EXECUTE format('UPDATE %s t SET (%s) = ROW(%s) FROM pg_temp.fhir_rows r
                  WHERE t.id = r.existing_id AND ROW(%s) IS DISTINCT FROM ROW(%s)',
                 target, clist, rlist, tlist, rlist);
  GET DIAGNOSTICS updated = ROW_COUNT;
  EXECUTE format('UPDATE pg_temp.fhir_rows r SET new_id = n.id
                  FROM (SELECT o.source_key, nextval(%L) AS id
                        FROM (SELECT source_key FROM pg_temp.fhir_rows WHERE existing_id IS NULL ORDER BY ord) o) n
                  WHERE r.source_key = n.source_key', seq);
  EXECUTE format('INSERT INTO %s (id, %s) SELECT r.new_id, %s FROM pg_temp.fhir_rows r
                  WHERE r.new_id IS NOT NULL ORDER BY r.ord', target, clist, rlist);
  GET DIAGNOSTICS inserted = ROW_COUNT;
  EXECUTE format($q$
    INSERT INTO outreach.fhir_source AS m (source_key, entity, row_id, contact_id, source_file)
    SELECT r.source_key, %1$L, coalesce(r.existing_id, r.new_id),
           CASE WHEN %1$L = 'contact' THEN coalesce(r.existing_id, r.new_id) ELSE r.contact_id END, r.source_file
    FROM pg_temp.fhir_rows r
    ON CONFLICT (source_key) DO UPDATE SET entity = excluded.entity, row_id = excluded.row_id,
      contact_id = excluded.contact_id, source_file = excluded.source_file, imported_at = excluded.imported_at
    WHERE (m.entity, m.row_id, m.contact_id, m.source_file) IS DISTINCT FROM
          (excluded.entity, excluded.row_id, excluded.contact_id, excluded.source_file)$q$, entity);
  SELECT count(*) INTO total FROM pg_temp.fhir_rows;
END $$;

-- ---------------------------------------------------------------------------------------
-- The import
-- ---------------------------------------------------------------------------------------

CREATE FUNCTION outreach.import_fhir(path text)
RETURNS TABLE (resource_type text, resources bigint, rows_inserted bigint, rows_updated bigint,
               not_mapped bigint, detail text)
-- jit off: JIT compilation of these one-off statements costs more than it saves; work_mem:
-- the staged resources are sorted and hashed whole (tens of MB for a large export).
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off SET work_mem = '64MB' AS $$
DECLARE
  p        text;
  st       record;
  f        record;
  bad      record;
  nbad     bigint;
  msg      text;
  det      text;
  ctx      text;
  listing  text;
  n        bigint;
  ins      bigint;
  upd      bigint;
  tot      bigint;
  mapped   constant text[] := ARRAY['Patient','Practitioner','Organization','Encounter','Condition','Observation',
                                    'Procedure','Immunization','MedicationRequest','MedicationStatement','AllergyIntolerance'];
  -- Elements each mapped type uses; the others are counted as not mapped.
  used     constant jsonb := '{
    "*": ["resourceType","id","meta","text"],
    "Patient": ["name","telecom","gender","birthDate","deceasedDateTime","deceasedBoolean","address","communication",
                "extension","active","generalPractitioner","managingOrganization"],
    "Practitioner": ["name","telecom","gender","address","active"],
    "Organization": ["name","type","active"],
    "Encounter": ["status","class","type","subject","period","participant","serviceProvider","reasonCode"],
    "Condition": ["clinicalStatus","verificationStatus","code","subject","encounter","onsetDateTime","onsetPeriod",
                  "abatementDateTime","abatementPeriod","recordedDate"],
    "Observation": ["status","code","subject","encounter","effectiveDateTime","effectivePeriod","effectiveInstant",
                    "valueQuantity","valueCodeableConcept","valueString","valueBoolean","valueInteger","valueDateTime",
                    "component"],
    "Procedure": ["status","code","subject","encounter","performedDateTime","performedPeriod"],
    "Immunization": ["status","vaccineCode","patient","encounter","occurrenceDateTime"],
    "MedicationRequest": ["status","medicationCodeableConcept","subject","encounter","authoredOn"],
    "MedicationStatement": ["status","medicationCodeableConcept","subject","context","effectiveDateTime","effectivePeriod"],
    "AllergyIntolerance": ["code","patient","encounter","onsetDateTime","onsetPeriod","recordedDate","lastOccurrence",
                           "verificationStatus"]
  }';
BEGIN
  IF path IS NULL OR btrim(path) = '' THEN
    RAISE EXCEPTION 'a path is required' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Pass the absolute path, on the database server, of a folder of FHIR Bundles or Bulk Data NDJSON files, or of one file.';
  END IF;
  IF left(path, 1) <> '/' THEN
    RAISE EXCEPTION 'path "%" is not an absolute path', path USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'The database server reads the files itself, so a relative path would be read from its data directory.',
      HINT = 'Pass the absolute path on the database server, e.g. ''/data/fhir/bundles''.';
  END IF;
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
     AND NOT pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') THEN
    RAISE EXCEPTION 'permission denied to import FHIR files' USING ERRCODE = 'insufficient_privilege',
      DETAIL = 'The import reads files on the database server.',
      HINT = 'Run it as a superuser or as a member of pg_read_server_files.';
  END IF;
  p := CASE WHEN path = '/' THEN path ELSE rtrim(path, '/') END;
  st := pg_stat_file(p, true);
  IF st IS NULL THEN
    RAISE EXCEPTION 'path "%" does not exist on the database server', path USING ERRCODE = 'undefined_file',
      HINT = 'The path is read by the server, not the client; give the path as the server sees it.';
  END IF;

  -- One import at a time, FHIR or Synthea CSV (the same lock as import_synthea): both write
  -- contacts and encounters by external id, so two at once could both find a patient new.
  PERFORM pg_advisory_xact_lock(hashtext('outreach.import_synthea'));
  PERFORM outreach._fhir_drop('fhir_file', 'fhir_in', 'fhir_res', 'fhir_problem', 'fhir_ref', 'fhir_url',
                              'fhir_ident', 'fhir_tz', 'fhir_skip', 'fhir_dup', 'fhir_person', 'fhir_clin', 'fhir_rows');

  -- Progress: the phases done of 7 (files, parse, check, references, load, unmapped, clean up).
  PERFORM outreach._progress('import_fhir', 0, 7);
  -- 1. The files: *.json (a Bundle or one resource) and *.ndjson (one resource a line).  An
  --    NDJSON file whose name does not start with a resource type (the Bulk Data log.ndjson)
  --    is not resource data: it is skipped and reported.
  CREATE TEMP TABLE fhir_file (name text PRIMARY KEY, full_path text NOT NULL, kind text NOT NULL);
  IF st.isdir THEN
    INSERT INTO fhir_file
    SELECT d.name, p || '/' || d.name, CASE WHEN d.name ~* '\.ndjson$' THEN 'ndjson' ELSE 'json' END
    FROM pg_ls_dir(p) AS d(name)
    WHERE d.name ~* '\.(nd)?json$' AND NOT (pg_stat_file(p || '/' || d.name, true)).isdir;
  ELSE
    INSERT INTO fhir_file VALUES (regexp_replace(p, '^.*/', ''), p, CASE WHEN p ~* '\.ndjson$' THEN 'ndjson' ELSE 'json' END);
  END IF;
  CREATE TEMP TABLE fhir_skip AS
    SELECT name FROM fhir_file WHERE kind = 'ndjson' AND name !~ '^[A-Z][A-Za-z]+[._]';
  DELETE FROM fhir_file WHERE name IN (SELECT name FROM fhir_skip);
  IF NOT EXISTS (SELECT 1 FROM fhir_file) THEN
    RAISE EXCEPTION 'no FHIR files in "%"', path USING ERRCODE = 'undefined_file',
      DETAIL = 'The import reads files named *.json (Bundles) and <ResourceType>*.ndjson (Bulk Data export).',
      HINT = 'Point to the folder Synthea writes its FHIR output to (output/fhir) or to a Bulk Data export.';
  END IF;

  PERFORM outreach._progress('import_fhir', 1, 7);
  -- 2. Parse.  One statement for all files; when a file is not JSON, find which one (and for
  --    NDJSON which line) and say so.
  CREATE TEMP TABLE fhir_in (file text NOT NULL, pos bigint, is_line boolean NOT NULL, full_url text,
                             res jsonb, doc_type text, bundle_type text);
  BEGIN
    -- .json: one row for the document itself (pos NULL; res = the document when it is a single
    -- resource), one per Bundle entry (pos = its index).  .ndjson: one per line (pos = line).
    INSERT INTO fhir_in
    -- (resources of types that are not mapped keep only their type, id and identifiers)
    SELECT ff.name, x.pos, false, x.full_url, CASE WHEN x.res IS NULL OR jsonb_typeof(x.res) <> 'object' OR NOT x.res ? 'resourceType' OR x.res ->> 'resourceType' = ANY (mapped) THEN x.res
                ELSE jsonb_build_object('resourceType', x.res -> 'resourceType', 'id', x.res -> 'id', 'identifier',
                                        CASE WHEN x.res ->> 'resourceType' IN ('Location', 'PractitionerRole') THEN x.res -> 'identifier' END) END,
           coalesce(d.doc ->> 'resourceType', '(none)'), d.doc ->> 'type'
    FROM fhir_file ff
    CROSS JOIN LATERAL (SELECT pg_read_file(ff.full_path)::jsonb AS doc) d
    CROSS JOIN LATERAL (SELECT e.ord - 1 AS pos, e.v ->> 'fullUrl' AS full_url, e.v -> 'resource' AS res
                        FROM jsonb_array_elements(CASE WHEN d.doc ->> 'resourceType' = 'Bundle' AND jsonb_typeof(d.doc -> 'entry') = 'array'
                                                       THEN d.doc -> 'entry' END) WITH ORDINALITY e(v, ord)
                        UNION ALL
                        SELECT NULL, NULL, CASE WHEN d.doc ->> 'resourceType' IS DISTINCT FROM 'Bundle' THEN d.doc END) x
    WHERE ff.kind = 'json'
    UNION ALL
    SELECT ff.name, l.n, true, NULL, CASE WHEN l.res IS NULL OR jsonb_typeof(l.res) <> 'object' OR NOT l.res ? 'resourceType' OR l.res ->> 'resourceType' = ANY (mapped) THEN l.res
                ELSE jsonb_build_object('resourceType', l.res -> 'resourceType', 'id', l.res -> 'id', 'identifier',
                                        CASE WHEN l.res ->> 'resourceType' IN ('Location', 'PractitionerRole') THEN l.res -> 'identifier' END) END, NULL, NULL
    FROM fhir_file ff
    CROSS JOIN LATERAL (SELECT t.n, t.line::jsonb AS res
                        FROM regexp_split_to_table(pg_read_file(ff.full_path), E'\r?\n') WITH ORDINALITY t(line, n)
                        WHERE btrim(t.line) <> '') l
    WHERE ff.kind = 'ndjson';
  EXCEPTION WHEN invalid_text_representation OR insufficient_privilege OR undefined_file OR io_error
                 OR character_not_in_repertoire OR untranslatable_character THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, ctx = PG_EXCEPTION_CONTEXT;
    PERFORM outreach._fhir_parse_error(msg, det, ctx);
  END;

  -- The resources.  In a Bundle the same resource can come twice (and Organizations and
  -- Practitioners come in every patient's Bundle): the last one read wins.
  CREATE TEMP TABLE fhir_res AS
    SELECT i.file, i.pos, i.is_line, i.full_url, i.res,
           i.res ->> 'resourceType' AS rtype,
           coalesce(i.res ->> 'id', substring(i.full_url FROM '^urn:uuid:(.+)$')) AS rid,
           CASE WHEN i.doc_type = 'Bundle' THEN format('Bundle.entry[%s].resource', i.pos)
                ELSE coalesce(i.res ->> 'resourceType', 'Resource') END AS loc,
           row_number() OVER (ORDER BY i.file, i.pos) AS ord
    FROM fhir_in i WHERE i.res IS NOT NULL;
  CREATE INDEX ON fhir_res (rtype, rid);
  ANALYZE fhir_res;

  PERFORM outreach._progress('import_fhir', 2, 7);
  -- 3. Check everything; collect every problem.
  CREATE TEMP TABLE fhir_problem (file text, pos bigint, is_line boolean, loc text, problem text, code text);
  INSERT INTO fhir_problem
  SELECT i.file, NULL, false, CASE WHEN i.doc_type = 'Bundle' THEN 'Bundle.type' ELSE 'resourceType' END,
         CASE WHEN i.doc_type = 'Bundle' AND i.bundle_type IS NULL THEN 'the Bundle has no type'
              WHEN i.doc_type = 'Bundle' THEN format('Bundle type "%s" is not read (transaction, collection, batch or searchset)', i.bundle_type)
              ELSE 'the file holds neither a Bundle nor a resource (no resourceType)' END,
         '22P02'
  FROM fhir_in i
  WHERE NOT i.is_line AND i.pos IS NULL
    AND (i.doc_type = '(none)'
         OR i.doc_type = 'Bundle' AND coalesce(i.bundle_type, '') NOT IN ('transaction', 'collection', 'batch', 'searchset'))
  UNION ALL
  SELECT i.file, i.pos, i.is_line, CASE WHEN i.is_line THEN 'Resource' ELSE format('Bundle.entry[%s].resource', i.pos) END,
         CASE WHEN i.is_line THEN 'the line does not hold a JSON object (one resource)' ELSE 'the entry has no resource' END, '22P02'
  FROM fhir_in i WHERE i.pos IS NOT NULL AND (i.res IS NULL OR jsonb_typeof(i.res) <> 'object')
  UNION ALL
  SELECT r.file, r.pos, r.is_line, r.loc || '.resourceType', 'resource has no resourceType', '22P02'
  FROM fhir_res r WHERE jsonb_typeof(r.res) = 'object' AND r.rtype IS NULL
  UNION ALL
  SELECT r.file, r.pos, r.is_line, r.loc || '.id',
         CASE WHEN r.rid IS NULL THEN 'resource has no id (and no urn:uuid fullUrl)' ELSE format('"%s" is not a FHIR id', r.rid) END, '22P02'
  FROM fhir_res r WHERE r.rtype = ANY (mapped) AND (r.rid IS NULL OR r.rid !~ '^[A-Za-z0-9\-.]{1,64}$')
  UNION ALL
  -- dates and dateTimes the load converts
  SELECT r.file, r.pos, r.is_line, r.loc || '.' || d.path, format('"%s" is not a FHIR date or dateTime', d.v), '22007'
  FROM fhir_res r
  JOIN (VALUES ('Patient', 'birthDate'), ('Patient', 'deceasedDateTime'),
               ('Encounter', 'period.start'), ('Encounter', 'period.end'),
               ('Condition', 'onsetDateTime'), ('Condition', 'onsetPeriod.start'), ('Condition', 'abatementDateTime'),
               ('Condition', 'abatementPeriod.start'), ('Condition', 'recordedDate'),
               ('Observation', 'effectiveDateTime'), ('Observation', 'effectiveInstant'),
               ('Observation', 'effectivePeriod.start'),
               ('Procedure', 'performedDateTime'), ('Procedure', 'performedPeriod.start'),
               ('Immunization', 'occurrenceDateTime'), ('MedicationRequest', 'authoredOn'),
               ('MedicationStatement', 'effectiveDateTime'), ('MedicationStatement', 'effectivePeriod.start'),
               ('MedicationStatement', 'effectivePeriod.end'),
               ('AllergyIntolerance', 'onsetDateTime'), ('AllergyIntolerance', 'onsetPeriod.start'),
               ('AllergyIntolerance', 'recordedDate'), ('AllergyIntolerance', 'lastOccurrence')) dp(rtype, path)
    ON dp.rtype = r.rtype
  CROSS JOIN LATERAL (SELECT dp.path, r.res #>> string_to_array(dp.path, '.') AS v) d
  WHERE d.v IS NOT NULL AND NOT outreach._fhir_valid_datetime(d.v)
  UNION ALL
  SELECT r.file, r.pos, r.is_line, r.loc || '.gender', format('"%s" is not a FHIR gender (male, female, other, unknown)', r.res ->> 'gender'), '22P02'
  FROM fhir_res r WHERE r.rtype IN ('Patient', 'Practitioner') AND r.res ? 'gender'
    AND (r.res ->> 'gender') NOT IN ('male', 'female', 'other', 'unknown')
  UNION ALL
  SELECT r.file, r.pos, r.is_line, r.loc || '.period.end', 'the encounter ends before it starts', '23514'
  FROM fhir_res r WHERE r.rtype = 'Encounter'
    AND outreach._fhir_valid_datetime(r.res #>> '{period,start}') AND outreach._fhir_valid_datetime(r.res #>> '{period,end}')
    AND outreach._fhir_ts(r.res #>> '{period,end}', 'UTC') < outreach._fhir_ts(r.res #>> '{period,start}', 'UTC')
  UNION ALL
  SELECT r.file, r.pos, r.is_line, r.loc || v.path || '.value', format('%s is not a number', v.val), '22P02'
  FROM fhir_res r
  CROSS JOIN LATERAL (SELECT '.valueQuantity' AS path, r.res #> '{valueQuantity,value}' AS val
                      UNION ALL
                      SELECT format('.component[%s].valueQuantity', c.n - 1), c.c #> '{valueQuantity,value}'
                      FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'component') = 'array' THEN r.res -> 'component' ELSE '[]' END)
                           WITH ORDINALITY c(c, n)) v
  WHERE r.rtype = 'Observation' AND v.val IS NOT NULL AND jsonb_typeof(v.val) <> 'number'
  UNION ALL
  SELECT r.file, r.pos, r.is_line, r.loc || '.clinicalStatus',
         format('"%s" is not a condition clinical status (active, recurrence, relapse, inactive, remission, resolved)', s.v), '22P02'
  FROM fhir_res r
  CROSS JOIN LATERAL (SELECT coalesce(r.res #>> '{clinicalStatus,coding,0,code}',
                                      CASE WHEN jsonb_typeof(r.res -> 'clinicalStatus') = 'string' THEN r.res ->> 'clinicalStatus' END) AS v) s
  WHERE r.rtype = 'Condition' AND s.v NOT IN ('active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved');

  PERFORM outreach._progress('import_fhir', 3, 7);
  -- 4. References.  urn:uuid: (and urn:oid:) resolve through the fullUrls of the same Bundle;
  --    Type/id (relative or absolute URL) is taken as it is; Type?identifier=system|value
  --    through the identifiers of the resources of this import.
  CREATE TEMP TABLE fhir_url AS
    SELECT DISTINCT ON (file, full_url) file, full_url, rtype, rid FROM fhir_res
    WHERE full_url IS NOT NULL AND rtype IS NOT NULL ORDER BY file, full_url, ord DESC;
  CREATE INDEX ON fhir_url (file, full_url);
  ANALYZE fhir_url;
  CREATE TEMP TABLE fhir_ident AS
    SELECT DISTINCT ON (r.rtype, i.ident) r.rtype, i.ident, r.rid
    FROM fhir_res r
    CROSS JOIN LATERAL (SELECT concat(x.v ->> 'system', '|', x.v ->> 'value') AS ident
                        FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'identifier') = 'array' THEN r.res -> 'identifier' ELSE '[]' END) x(v)) i
    WHERE r.rtype IN ('Practitioner', 'Organization', 'Location', 'Patient', 'PractitionerRole')
    ORDER BY r.rtype, i.ident, r.ord DESC;
  CREATE INDEX ON fhir_ident (rtype, ident);
  ANALYZE fhir_ident;
  CREATE TEMP TABLE fhir_ref AS
    SELECT x.ord, x.path, x.ref,
           CASE WHEN x.ref ~ '^urn:(uuid|oid):' THEN u.rtype || '/' || u.rid
                WHEN x.ref ~ '^[A-Z][A-Za-z]+\?identifier=' THEN
                  (SELECT i.rtype || '/' || i.rid FROM fhir_ident i
                   WHERE i.rtype = split_part(x.ref, '?', 1) AND i.ident = replace(substr(x.ref, strpos(x.ref, '=') + 1), '%7C', '|'))
                WHEN x.ref ~ '^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$' THEN x.ref   -- the common case, without the slower search below
                ELSE substring(x.ref FROM '(?:^|/)([A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$') END AS target
    FROM (SELECT r.ord, r.file, v.path, r.res #>> (v.jpath || '{reference}'::text[]) AS ref
          FROM fhir_res r
          CROSS JOIN LATERAL (VALUES ('subject', '{subject}'::text[]), ('patient', '{patient}'), ('encounter', '{encounter}'),
                                     ('context', '{context}'), ('serviceProvider', '{serviceProvider}'),
                                     ('managingOrganization', '{managingOrganization}')) v(path, jpath)
          WHERE r.rtype = ANY (mapped) AND r.res #> v.jpath IS NOT NULL
          UNION ALL
          SELECT r.ord, r.file, format('%s[%s]%s', a.el, e.n - 1, a.sub), e.v #>> (a.subpath || '{reference}'::text[])
          FROM fhir_res r
          CROSS JOIN LATERAL (VALUES ('Patient', 'generalPractitioner', '', '{}'::text[]),
                                     ('Encounter', 'participant', '.individual', '{individual}')) a(rtype, el, sub, subpath)
          CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> a.el) = 'array' THEN r.res -> a.el ELSE '[]' END)
                             WITH ORDINALITY e(v, n)
          WHERE r.rtype = a.rtype) x
    LEFT JOIN fhir_url u ON u.file = x.file AND u.full_url = x.ref;
  CREATE INDEX ON fhir_ref (ord, path);

  -- The patient of each clinical resource must be a Patient of this import or one imported before.
  INSERT INTO fhir_problem
  SELECT r.file, r.pos, r.is_line, r.loc || '.' || sp.path,
         CASE WHEN x.ref IS NULL THEN format('%s has no %s (the patient it is about)', r.rtype, sp.path)
              WHEN x.target IS NULL THEN format('reference "%s" does not resolve', x.ref)
              WHEN x.target NOT LIKE 'Patient/%' THEN format('reference "%s" is to %s, not to a Patient', x.ref, split_part(x.target, '/', 1))
              ELSE format('Patient "%s" is neither in this import nor imported before', split_part(x.target, '/', 2)) END,
         '23503'
  FROM fhir_res r
  CROSS JOIN LATERAL (SELECT CASE WHEN r.rtype IN ('Immunization', 'AllergyIntolerance') THEN 'patient' ELSE 'subject' END AS path) sp
  LEFT JOIN fhir_ref x ON x.ord = r.ord AND x.path = sp.path
  WHERE r.rtype = ANY (mapped) AND r.rtype NOT IN ('Patient', 'Practitioner', 'Organization')
    AND (x.target IS NULL OR x.target NOT LIKE 'Patient/%'
         OR NOT (EXISTS (SELECT 1 FROM fhir_res pr WHERE pr.rtype = 'Patient' AND pr.rid = split_part(x.target, '/', 2))
                 OR EXISTS (SELECT 1 FROM outreach.contact c WHERE c.external_id = split_part(x.target, '/', 2))));

  SELECT count(*) INTO nbad FROM fhir_problem;
  IF nbad > 0 THEN
    SELECT string_agg(format('"%s"%s at %s: %s', b.file,
                             CASE WHEN b.pos IS NULL THEN '' WHEN b.is_line THEN ' line ' || b.pos ELSE ' entry ' || b.pos END,
                             b.loc, b.problem), E'\n' ORDER BY b.file, b.pos NULLS FIRST, b.loc)
      INTO listing
    FROM (SELECT * FROM fhir_problem ORDER BY file, pos NULLS FIRST, loc LIMIT 20) b;
    SELECT * INTO bad FROM fhir_problem ORDER BY file, pos NULLS FIRST, loc LIMIT 1;
    RAISE EXCEPTION 'bad FHIR input in "%"%: % at %', bad.file,
      CASE WHEN bad.pos IS NULL THEN '' WHEN bad.is_line THEN ' line ' || bad.pos ELSE ' entry ' || bad.pos END,
      bad.problem, bad.loc
      USING ERRCODE = bad.code,
      DETAIL = format('%s problem%s in all%s:%s%s', nbad, CASE WHEN nbad > 1 THEN 's' ELSE '' END,
                      CASE WHEN nbad > 20 THEN ', the first 20' ELSE '' END, E'\n', listing),
      HINT = 'Nothing was imported; fix or remove these resources and run the import again.';
  END IF;

  -- Keep the last copy of each resource; drop the copies (counted as duplicates below).
  CREATE TEMP TABLE fhir_dup AS
    SELECT r.rtype, count(*) - count(DISTINCT r.rid) AS dups FROM fhir_res r GROUP BY r.rtype;
  DELETE FROM fhir_res r USING fhir_res r2
  WHERE r2.rtype = r.rtype AND r2.rid = r.rid AND r2.ord > r.ord;
  CREATE UNIQUE INDEX ON fhir_res (ord);
  ANALYZE fhir_res;
  ANALYZE fhir_ref;

  PERFORM outreach._progress('import_fhir', 4, 7);
  -- 5. Load, parents first.
  -- Organizations -> accounts (external_id = the resource id, as the Synthea CSV has it).
  SELECT u.inserted, u.updated, u.total INTO ins, upd, tot FROM outreach._fhir_upsert('account', $s$
    SELECT 'Organization/' || r.rid AS source_key, NULL::bigint AS contact_id, r.file AS source_file, r.ord,
           r.rid AS external_id, coalesce(r.res ->> 'name', 'Organization ' || r.rid) AS name,
           CASE WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'type') = 'array' THEN r.res -> 'type' ELSE '[]' END) t,
                                           jsonb_array_elements(CASE WHEN jsonb_typeof(t -> 'coding') = 'array' THEN t -> 'coding' ELSE '[]' END) c
                             WHERE c ->> 'code' IN ('ins', 'pay')) THEN 'insurer'
                ELSE 'medical_center' END AS kind
    FROM pg_temp.fhir_res r WHERE r.rtype = 'Organization'$s$, ARRAY['external_id', 'name', 'kind']) u;
  resource_type := 'Organization'; resources := tot; rows_inserted := ins; rows_updated := upd; not_mapped := 0; detail := NULL;
  RETURN NEXT;

  -- Time zones of the patients, for date-only values: the state of their (home) address.
  CREATE TEMP TABLE fhir_tz AS
    SELECT r.rid, coalesce(c.time_zone, outreach._fhir_state_time_zone(a.v ->> 'state')) AS tz
    FROM fhir_res r
    LEFT JOIN outreach.contact c ON c.external_id = r.rid
    LEFT JOIN LATERAL (SELECT x.v FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'address') = 'array' THEN r.res -> 'address' ELSE '[]' END)
                                    WITH ORDINALITY x(v, n)
                       ORDER BY (x.v ->> 'use' = 'home') DESC NULLS LAST, x.n LIMIT 1) a ON true
    WHERE r.rtype = 'Patient';
  CREATE INDEX ON fhir_tz (rid);

  -- Practitioners and patients -> contacts.
  PERFORM outreach._fhir_drop('fhir_person');
  CREATE TEMP TABLE fhir_person AS
    SELECT r.ord, r.file, r.rid, r.rtype, r.res,
           CASE r.rtype WHEN 'Patient' THEN r.rid ELSE r.rtype || '/' || r.rid END AS external_id,
           nm.v AS name, ad.v AS address,
           (SELECT t ->> 'value' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'telecom') = 'array' THEN r.res -> 'telecom' ELSE '[]' END)
                                      WITH ORDINALITY x(t, n)
            WHERE t ->> 'system' = 'email' AND t ->> 'value' ~ '^[^@\s]+@[^@\s]+$' AND coalesce(t ->> 'use', '') <> 'old'
            ORDER BY (t ->> 'rank')::int NULLS LAST, x.n LIMIT 1) AS email,
           (SELECT outreach._fhir_e164(t ->> 'value', ad.v ->> 'country')
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'telecom') = 'array' THEN r.res -> 'telecom' ELSE '[]' END)
                 WITH ORDINALITY x(t, n)
            WHERE t ->> 'system' IN ('phone', 'sms') AND coalesce(t ->> 'use', '') <> 'old'
              AND outreach._fhir_e164(t ->> 'value', ad.v ->> 'country') IS NOT NULL
            ORDER BY (t ->> 'use' = 'mobile' OR t ->> 'system' = 'sms') DESC NULLS LAST, (t ->> 'rank')::int NULLS LAST, x.n LIMIT 1) AS phone,
           (SELECT count(*) FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'telecom') = 'array' THEN r.res -> 'telecom' ELSE '[]' END) t
            WHERE t ->> 'system' IN ('phone', 'sms') AND outreach._fhir_e164(t ->> 'value', ad.v ->> 'country') IS NULL) AS bad_phones,
           z.tz
    FROM fhir_res r
    LEFT JOIN fhir_tz z ON r.rtype = 'Patient' AND z.rid = r.rid
    LEFT JOIN LATERAL (SELECT x.v FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'name') = 'array' THEN r.res -> 'name' ELSE '[]' END)
                                    WITH ORDINALITY x(v, n)
                       WHERE coalesce(x.v ->> 'use', '') NOT IN ('old', 'maiden')
                       ORDER BY (x.v ->> 'use' = 'official') DESC NULLS LAST, x.n LIMIT 1) nm ON true
    LEFT JOIN LATERAL (SELECT x.v FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.res -> 'address') = 'array' THEN r.res -> 'address' ELSE '[]' END)
                                    WITH ORDINALITY x(v, n)
                       ORDER BY (x.v ->> 'use' = 'home') DESC NULLS LAST, x.n LIMIT 1) ad ON true
    WHERE r.rtype IN ('Patient', 'Practitioner');

  FOR f IN SELECT t.rtype, sum(t.bad_phones) AS bad FROM fhir_person t GROUP BY t.rtype ORDER BY t.rtype DESC LOOP
  SELECT u.inserted, u.updated, u.total INTO ins, upd, tot FROM outreach._fhir_upsert('contact', format($s$
    SELECT p.rtype || '/' || p.rid AS source_key, NULL::bigint AS contact_id, p.file AS source_file, p.ord,
           p.external_id,
           CASE WHEN jsonb_typeof(p.name -> 'given') = 'array'
                THEN nullif(array_to_string(ARRAY(SELECT jsonb_array_elements_text(p.name -> 'given')), ' '), '') END AS first_name,
           coalesce(p.name ->> 'family', CASE WHEN p.name ? 'text' AND NOT p.name ? 'given' THEN p.name ->> 'text' END) AS last_name,
           outreach._fhir_date(p.res ->> 'birthDate') AS birthdate,
           coalesce(p.res ->> 'gender', 'unknown') AS gender,
           coalesce(p.email, c.email) AS email,
           coalesce(p.phone, c.phone) AS phone,
           CASE WHEN jsonb_typeof(p.address -> 'line') = 'array'
                THEN nullif(array_to_string(ARRAY(SELECT jsonb_array_elements_text(p.address -> 'line')), ', '), '') END AS address_line,
           p.address ->> 'city' AS city, p.address ->> 'state' AS state, p.address ->> 'postalCode' AS postal_code,
           p.address ->> 'country' AS country,
           coalesce(c.time_zone, p.tz) AS time_zone,
           CASE WHEN p.res -> 'active' = 'false' THEN 'inactive' ELSE 'active' END AS status,
           lower(p.rtype) AS contact_type,
           coalesce(c.preferred_channel, CASE WHEN p.email IS NOT NULL THEN 'email' WHEN p.address IS NOT NULL THEN 'letter' END)
             AS preferred_channel,
           CASE WHEN p.res ? 'deceasedDateTime' THEN outreach._fhir_ts(p.res ->> 'deceasedDateTime', coalesce(c.time_zone, p.tz))
                WHEN p.res -> 'deceasedBoolean' = 'true' THEN coalesce(c.deceased_at, '-infinity'::timestamptz) END AS deceased_at,
           coalesce((SELECT coalesce(l.v #>> '{language,coding,0,code}', l.v #>> '{language,text}')
                     FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p.res -> 'communication') = 'array' THEN p.res -> 'communication' ELSE '[]' END)
                          WITH ORDINALITY l(v, n)
                     ORDER BY (l.v -> 'preferred' = 'true') DESC NULLS LAST, l.n LIMIT 1), c.language) AS language,
           (SELECT s ->> 'valueString' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p.res -> 'extension') = 'array' THEN p.res -> 'extension' ELSE '[]' END) e,
                   jsonb_array_elements(CASE WHEN jsonb_typeof(e -> 'extension') = 'array' THEN e -> 'extension' ELSE '[]' END) s
            WHERE e ->> 'url' = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race' AND s ->> 'url' = 'text' LIMIT 1) AS race,
           (SELECT s ->> 'valueString' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p.res -> 'extension') = 'array' THEN p.res -> 'extension' ELSE '[]' END) e,
                   jsonb_array_elements(CASE WHEN jsonb_typeof(e -> 'extension') = 'array' THEN e -> 'extension' ELSE '[]' END) s
            WHERE e ->> 'url' = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity' AND s ->> 'url' = 'text' LIMIT 1) AS ethnicity,
           p.res -> 'extension' AS fhir_extension
    FROM pg_temp.fhir_person p LEFT JOIN outreach.contact c ON c.external_id = p.external_id
    WHERE p.rtype = %L$s$, f.rtype),
    ARRAY['external_id', 'first_name', 'last_name', 'birthdate', 'gender', 'email', 'phone', 'address_line', 'city', 'state',
          'postal_code', 'country', 'time_zone', 'status', 'contact_type', 'preferred_channel', 'deceased_at', 'language',
          'race', 'ethnicity', 'fhir_extension']) u;
    resource_type := f.rtype; resources := tot; rows_inserted := ins; rows_updated := upd; not_mapped := 0;
    detail := CASE WHEN f.bad > 0 THEN format('%s phone numbers not stored (not dialable, e.g. 555 placeholders)', f.bad) END;
    RETURN NEXT;
  END LOOP;
  -- Patient.managingOrganization: the account the patient belongs to.
  UPDATE outreach.contact c SET account_id = a.id
  FROM fhir_res r JOIN fhir_ref x ON x.ord = r.ord AND x.path = 'managingOrganization'
  JOIN outreach.account a ON x.target LIKE 'Organization/%' AND a.external_id = split_part(x.target, '/', 2)
  WHERE r.rtype = 'Patient' AND c.external_id = r.rid AND c.account_id IS DISTINCT FROM a.id;

  -- Encounters (external_id = the resource id).
  SELECT u.inserted, u.updated, u.total INTO ins, upd, tot FROM outreach._fhir_upsert('encounter', $s$
    SELECT 'Encounter/' || r.rid AS source_key, k.id AS contact_id, r.file AS source_file, r.ord,
           r.rid AS external_id, k.id AS patient_id,
           CASE r.res #>> '{class,code}'
             WHEN 'AMB' THEN CASE WHEN pc.c ->> 'code' IN ('185349003', '410620009', '162673000', '410621008', '185346005', '698314001')
                                  THEN 'wellness' ELSE 'ambulatory' END
             WHEN 'EMER' THEN 'emergency' WHEN 'IMP' THEN 'inpatient' WHEN 'ACUTE' THEN 'inpatient' WHEN 'NONAC' THEN 'inpatient'
             WHEN 'SS' THEN 'outpatient' WHEN 'OBSENC' THEN 'outpatient' WHEN 'PRENC' THEN 'outpatient'
             WHEN 'HH' THEN 'home' WHEN 'VR' THEN 'virtual' ELSE 'other' END AS class,
           pc.c ->> 'code' AS code, coalesce(outreach._fhir_system(pc.c ->> 'system'), 'SNOMED') AS code_system,
           coalesce(r.res #>> '{type,0,text}', pc.c ->> 'display') AS description,
           outreach._fhir_ts(r.res #>> '{period,start}', z.tz) AS start_at, outreach._fhir_ts(r.res #>> '{period,end}', z.tz) AS end_at
    FROM pg_temp.fhir_res r
    JOIN pg_temp.fhir_ref x ON x.ord = r.ord AND x.path = 'subject'
    JOIN outreach.contact k ON k.external_id = split_part(x.target, '/', 2)
    LEFT JOIN pg_temp.fhir_tz z ON z.rid = k.external_id
    CROSS JOIN LATERAL (SELECT outreach._fhir_primary_coding(r.res #> '{type,0}', 'http://snomed.info/sct') AS c) pc
    WHERE r.rtype = 'Encounter'$s$,
    ARRAY['external_id', 'patient_id', 'class', 'code', 'code_system', 'description', 'start_at', 'end_at']) u;
  resource_type := 'Encounter'; resources := tot; rows_inserted := ins; rows_updated := upd; not_mapped := 0; detail := NULL;
  RETURN NEXT;

  -- The clinical resources, one entity each.  Components of an Observation (the systolic and
  -- diastolic readings of a blood-pressure panel) become rows of their own, as in the CSV.
  PERFORM outreach._fhir_drop('fhir_clin');
  CREATE TEMP TABLE fhir_clin AS
    SELECT r.ord::numeric AS ord, r.file, r.rtype, r.rid, r.rtype || '/' || r.rid AS source_key, r.res, r.res AS part,
           '' AS part_path, k.id AS patient_id, z.tz, e.id AS encounter_id,
           (x2.ref IS NOT NULL AND e.id IS NULL) AS unresolved_encounter,
           CASE WHEN r.rtype IN ('Procedure', 'Immunization') AND r.res ->> 'status' = 'not-done' THEN 'not-done'
                WHEN r.res ->> 'status' = 'entered-in-error'
                  OR r.res #>> '{verificationStatus,coding,0,code}' = 'entered-in-error' THEN 'entered-in-error' END AS skip_reason
    FROM fhir_res r
    JOIN fhir_ref x ON x.ord = r.ord AND x.path = CASE WHEN r.rtype IN ('Immunization', 'AllergyIntolerance') THEN 'patient' ELSE 'subject' END
    JOIN outreach.contact k ON k.external_id = split_part(x.target, '/', 2)
    LEFT JOIN fhir_tz z ON z.rid = k.external_id
    LEFT JOIN fhir_ref x2 ON x2.ord = r.ord AND x2.path = CASE WHEN r.rtype = 'MedicationStatement' THEN 'context' ELSE 'encounter' END
    LEFT JOIN outreach.encounter e ON x2.target LIKE 'Encounter/%' AND e.external_id = split_part(x2.target, '/', 2)
    WHERE r.rtype IN ('Condition', 'Observation', 'Procedure', 'Immunization', 'MedicationRequest', 'MedicationStatement',
                      'AllergyIntolerance');
  INSERT INTO fhir_clin
    SELECT c.ord + cc.n / 1000.0, c.file, c.rtype, c.rid, c.source_key || format('#component[%s]', cc.n - 1), c.res, cc.v,
           format('.component[%s]', cc.n - 1), c.patient_id, c.tz, c.encounter_id, false, c.skip_reason
    FROM fhir_clin c
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(c.res -> 'component') = 'array' THEN c.res -> 'component' ELSE '[]' END)
                       WITH ORDINALITY cc(v, n)
    WHERE c.rtype = 'Observation';
  CREATE INDEX ON fhir_clin (rtype);
  ANALYZE fhir_clin;

  -- entity, resource types, preferred code system, the CodeableConcept element, and the columns.
  FOR f IN
    SELECT * FROM (VALUES
      ('condition', ARRAY['Condition'], 'http://snomed.info/sct', 'code',
       $c$CASE WHEN c.res ? 'clinicalStatus' THEN coalesce(c.res #>> '{clinicalStatus,coding,0,code}', c.res ->> 'clinicalStatus')
               WHEN c.res ? 'abatementDateTime' OR c.res ? 'abatementPeriod' THEN 'resolved' ELSE 'active' END AS clinical_status,
          outreach._fhir_date(coalesce(c.res ->> 'onsetDateTime', c.res #>> '{onsetPeriod,start}')) AS onset_date,
          outreach._fhir_date(coalesce(c.res ->> 'abatementDateTime', c.res #>> '{abatementPeriod,start}')) AS abatement_date$c$,
       ARRAY['clinical_status', 'onset_date', 'abatement_date']),
      ('observation', ARRAY['Observation'], 'http://loinc.org', 'code',
       $c$CASE jsonb_typeof(c.part #> '{valueQuantity,value}') WHEN 'number' THEN (c.part #>> '{valueQuantity,value}')::numeric
               ELSE CASE WHEN jsonb_typeof(c.part -> 'valueInteger') = 'number' THEN (c.part ->> 'valueInteger')::numeric END END AS value_numeric,
          CASE WHEN c.part ? 'valueCodeableConcept'
                 THEN coalesce(c.part #>> '{valueCodeableConcept,text}',
                               outreach._fhir_primary_coding(c.part -> 'valueCodeableConcept', 'http://snomed.info/sct') ->> 'display',
                               outreach._fhir_primary_coding(c.part -> 'valueCodeableConcept', 'http://snomed.info/sct') ->> 'code')
               WHEN c.part ? 'valueString' THEN c.part ->> 'valueString'
               WHEN c.part ? 'valueBoolean' THEN c.part ->> 'valueBoolean'
               WHEN c.part ? 'valueDateTime' THEN c.part ->> 'valueDateTime' END AS value_text,
          coalesce(c.part #>> '{valueQuantity,unit}', c.part #>> '{valueQuantity,code}') AS unit,
          outreach._fhir_ts(coalesce(c.res ->> 'effectiveDateTime', c.res ->> 'effectiveInstant', c.res #>> '{effectivePeriod,start}'), c.tz)
            AS effective_at$c$,
       ARRAY['value_numeric', 'value_text', 'unit', 'effective_at']),
      ('procedure', ARRAY['Procedure'], 'http://snomed.info/sct', 'code',
       $c$outreach._fhir_ts(coalesce(c.res ->> 'performedDateTime', c.res #>> '{performedPeriod,start}'), c.tz) AS performed_at$c$,
       ARRAY['performed_at']),
      ('immunization', ARRAY['Immunization'], 'http://hl7.org/fhir/sid/cvx', 'vaccineCode',
       $c$outreach._fhir_ts(c.res ->> 'occurrenceDateTime', c.tz) AS administered_at$c$, ARRAY['administered_at']),
      ('medication', ARRAY['MedicationRequest', 'MedicationStatement'], 'http://www.nlm.nih.gov/research/umls/rxnorm', 'medicationCodeableConcept',
       $c$outreach._fhir_ts(coalesce(c.res ->> 'authoredOn', c.res ->> 'effectiveDateTime', c.res #>> '{effectivePeriod,start}'), c.tz) AS start_at,
          outreach._fhir_ts(c.res #>> '{effectivePeriod,end}', c.tz) AS stop_at$c$, ARRAY['start_at', 'stop_at']),
      ('allergy', ARRAY['AllergyIntolerance'], 'http://snomed.info/sct', 'code',
       $c$outreach._fhir_ts(coalesce(c.res ->> 'onsetDateTime', c.res #>> '{onsetPeriod,start}', c.res ->> 'recordedDate'), c.tz) AS start_at,
          outreach._fhir_ts(c.res ->> 'lastOccurrence', c.tz) AS stop_at$c$, ARRAY['start_at', 'stop_at'])
    ) v(entity, rtypes, preferred, element, cols_sql, cols)
  LOOP
    SELECT u.inserted, u.updated, u.total INTO ins, upd, tot FROM outreach._fhir_upsert(f.entity, format($s$
      SELECT c.source_key, c.patient_id AS contact_id, c.file AS source_file, c.ord, c.patient_id, c.encounter_id,
             pc.c ->> 'code' AS code,
             coalesce(outreach._fhir_system(pc.c ->> 'system'), outreach._fhir_system(%2$L)) AS code_system,
             coalesce(c.part #>> '{%3$s,text}', pc.c ->> 'display') AS description, %1$s
      FROM pg_temp.fhir_clin c
      CROSS JOIN LATERAL (SELECT outreach._fhir_primary_coding(c.part -> %3$L, %2$L) AS c) pc
      WHERE c.rtype = ANY (%4$L) AND c.skip_reason IS NULL$s$, f.cols_sql, f.preferred, f.element, f.rtypes),
      ARRAY['patient_id', 'encounter_id', 'code', 'code_system', 'description'] || f.cols) u;

    -- Every coding of the CodeableConcepts of these rows (the value's too, for observations).
    INSERT INTO outreach.fhir_coding AS t (entity, row_id, contact_id, element, ordinal, code_system, code, display, is_primary)
    SELECT f.entity, m.row_id, c.patient_id, el.name, cd.n - 1, outreach._fhir_system(cd.v ->> 'system'), cd.v ->> 'code',
           cd.v ->> 'display', cd.v = el.prim
    FROM fhir_clin c
    JOIN outreach.fhir_source m ON m.source_key = c.source_key
    CROSS JOIN LATERAL (SELECT e.name, outreach._fhir_primary_coding(c.part -> e.name, e.pref) AS prim
                        FROM (VALUES (f.element, f.preferred), ('valueCodeableConcept', 'http://snomed.info/sct')) e(name, pref)
                        WHERE c.part ? e.name) el
    CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(c.part #> ARRAY[el.name, 'coding']) = 'array'
                                                 THEN c.part #> ARRAY[el.name, 'coding'] ELSE '[]' END) WITH ORDINALITY cd(v, n)
    WHERE c.rtype = ANY (f.rtypes) AND c.skip_reason IS NULL
    ON CONFLICT (entity, row_id, element, ordinal) DO UPDATE SET
      contact_id = excluded.contact_id, code_system = excluded.code_system, code = excluded.code, display = excluded.display,
      is_primary = excluded.is_primary
    WHERE (t.contact_id, t.code_system, t.code, t.display, t.is_primary) IS DISTINCT FROM
          (excluded.contact_id, excluded.code_system, excluded.code, excluded.display, excluded.is_primary);

    FOR bad IN
      SELECT c.rtype, count(DISTINCT c.rid) AS n, count(DISTINCT c.rid) FILTER (WHERE c.skip_reason IS NOT NULL) AS skipped,
             string_agg(DISTINCT c.skip_reason, ', ') AS reasons,
             count(*) FILTER (WHERE c.unresolved_encounter) AS unresolved,
             count(*) FILTER (WHERE c.part_path <> '') AS components
      FROM fhir_clin c WHERE c.rtype = ANY (f.rtypes) GROUP BY c.rtype
    LOOP
      resource_type := bad.rtype; resources := bad.n; not_mapped := bad.skipped;
      rows_inserted := CASE WHEN cardinality(f.rtypes) = 1 THEN ins END;
      rows_updated := CASE WHEN cardinality(f.rtypes) = 1 THEN upd END;
      detail := nullif(concat_ws('; ',
                  CASE WHEN bad.components > 0 THEN format('%s components stored as rows of their own', bad.components) END,
                  CASE WHEN bad.skipped > 0 THEN format('%s not loaded (status %s)', bad.skipped, bad.reasons) END,
                  CASE WHEN bad.unresolved > 0 THEN format('%s encounter references not resolved (stored without encounter)', bad.unresolved) END,
                  CASE WHEN cardinality(f.rtypes) > 1 THEN format('%s rows inserted, %s updated in %s for %s', ins, upd, f.entity,
                                                                  array_to_string(f.rtypes, ' and ')) END), '');
      RETURN NEXT;
    END LOOP;
  END LOOP;

  -- Codings of encounter types and classes.
  INSERT INTO outreach.fhir_coding AS t (entity, row_id, contact_id, element, ordinal, code_system, code, display, is_primary)
  SELECT 'encounter', m.row_id, m.contact_id, el.name, cd.n - 1, outreach._fhir_system(cd.v ->> 'system'), cd.v ->> 'code',
         cd.v ->> 'display', el.name = 'type' AND cd.v = outreach._fhir_primary_coding(r.res #> '{type,0}', 'http://snomed.info/sct')
  FROM fhir_res r
  JOIN outreach.fhir_source m ON m.source_key = 'Encounter/' || r.rid
  CROSS JOIN LATERAL (VALUES ('type', CASE WHEN jsonb_typeof(r.res #> '{type,0,coding}') = 'array' THEN r.res #> '{type,0,coding}' END),
                             ('class', CASE WHEN jsonb_typeof(r.res -> 'class') = 'object' THEN jsonb_build_array(r.res -> 'class') END),
                             ('reasonCode', CASE WHEN jsonb_typeof(r.res #> '{reasonCode,0,coding}') = 'array' THEN r.res #> '{reasonCode,0,coding}' END)
                     ) el(name, arr)
  CROSS JOIN LATERAL jsonb_array_elements(coalesce(el.arr, '[]')) WITH ORDINALITY cd(v, n)
  WHERE r.rtype = 'Encounter'
  ON CONFLICT (entity, row_id, element, ordinal) DO UPDATE SET
    contact_id = excluded.contact_id, code_system = excluded.code_system, code = excluded.code, display = excluded.display,
    is_primary = excluded.is_primary
  WHERE (t.contact_id, t.code_system, t.code, t.display, t.is_primary) IS DISTINCT FROM
        (excluded.contact_id, excluded.code_system, excluded.code, excluded.display, excluded.is_primary);

  -- Care team: general practitioners, and the practitioners of each patient's encounters.
  INSERT INTO outreach.care_team_member AS t (contact_id, practitioner_id, organization_id, role, first_seen_at, last_seen_at, encounters)
  SELECT k.id, pr.id, org.id, 'general_practitioner', NULL, NULL, NULL
  FROM fhir_res r
  JOIN outreach.contact k ON k.external_id = r.rid
  JOIN fhir_ref x ON x.ord = r.ord AND x.path LIKE 'generalPractitioner[%'
  LEFT JOIN outreach.contact pr ON x.target LIKE 'Practitioner/%' AND pr.external_id = x.target
  LEFT JOIN outreach.account org ON x.target LIKE 'Organization/%' AND org.external_id = split_part(x.target, '/', 2)
  WHERE r.rtype = 'Patient' AND (pr.id IS NOT NULL OR org.id IS NOT NULL)
  ON CONFLICT ON CONSTRAINT care_team_member_unique DO NOTHING;
  INSERT INTO outreach.care_team_member AS t (contact_id, practitioner_id, role, first_seen_at, last_seen_at, encounters)
  SELECT e.patient_id, pr.id, 'encounter_participant', min(e.start_at), max(e.start_at), count(DISTINCT e.id)
  FROM fhir_res r
  JOIN fhir_ref x ON x.ord = r.ord AND x.path LIKE 'participant[%'
  JOIN outreach.contact pr ON pr.external_id = x.target
  JOIN outreach.encounter e ON e.external_id = r.rid
  WHERE r.rtype = 'Encounter'
  GROUP BY e.patient_id, pr.id
  ON CONFLICT ON CONSTRAINT care_team_member_unique DO UPDATE SET
    first_seen_at = least(t.first_seen_at, excluded.first_seen_at), last_seen_at = greatest(t.last_seen_at, excluded.last_seen_at),
    encounters = greatest(t.encounters, excluded.encounters)
  WHERE (t.first_seen_at, t.last_seen_at, t.encounters) IS DISTINCT FROM
        (least(t.first_seen_at, excluded.first_seen_at), greatest(t.last_seen_at, excluded.last_seen_at),
         greatest(t.encounters, excluded.encounters));

  PERFORM outreach._progress('import_fhir', 5, 7);
  -- 6. What was not mapped: resource types, elements of mapped types, references.
  RETURN QUERY
    SELECT r.rtype, count(*), 0::bigint, 0::bigint, count(*), 'resource type not mapped'::text
    FROM fhir_res r WHERE NOT r.rtype = ANY (mapped) GROUP BY r.rtype ORDER BY r.rtype;
  RETURN QUERY
    SELECT '(elements)'::text, NULL::bigint, NULL::bigint, NULL::bigint, sum(k.n)::bigint,
           string_agg(format('%s.%s: %s', k.rtype, k.key, k.n), ', ' ORDER BY k.rtype, k.key)
    FROM (SELECT r.rtype, j.key, count(*) AS n
          FROM fhir_res r CROSS JOIN LATERAL jsonb_object_keys(r.res) j(key)
          WHERE r.rtype = ANY (mapped)
            AND NOT (used -> '*') ? j.key AND NOT coalesce(used -> r.rtype, '[]') ? j.key
          GROUP BY r.rtype, j.key) k
    HAVING count(*) > 0;
  RETURN QUERY
    SELECT '(references)'::text, NULL::bigint, NULL::bigint, NULL::bigint, count(*),
           string_agg(DISTINCT split_part(x.path, '[', 1), ', ') || ': references not resolved'
    FROM fhir_ref x
    LEFT JOIN outreach.encounter e ON x.target LIKE 'Encounter/%' AND e.external_id = split_part(x.target, '/', 2)
    LEFT JOIN outreach.contact c ON x.target LIKE 'Practitioner/%' AND c.external_id = x.target
    LEFT JOIN outreach.account a ON x.target LIKE 'Organization/%' AND a.external_id = split_part(x.target, '/', 2)
    WHERE x.path NOT IN ('subject', 'patient') AND e.id IS NULL AND c.id IS NULL AND a.id IS NULL
    HAVING count(*) > 0;
  RETURN QUERY
    SELECT '(duplicates)'::text, NULL::bigint, NULL::bigint, NULL::bigint, 0::bigint,
           string_agg(format('%s: %s', d.rtype, d.dups), ', ' ORDER BY d.rtype) || ' repeated resources (the last copy was loaded)'
    FROM fhir_dup d WHERE d.dups > 0 HAVING count(*) > 0;
  RETURN QUERY
    SELECT '(files)'::text, count(*), NULL::bigint, NULL::bigint, count(*),
           'skipped, not resource data: ' || string_agg(s.name, ', ' ORDER BY s.name)
    FROM fhir_skip s HAVING count(*) > 0;

  PERFORM outreach._fhir_drop('fhir_file', 'fhir_in', 'fhir_res', 'fhir_problem', 'fhir_ref', 'fhir_url', 'fhir_ident',
                              'fhir_tz', 'fhir_skip', 'fhir_dup', 'fhir_person', 'fhir_clin', 'fhir_rows');
  PERFORM outreach._progress_done();
END $$;
COMMENT ON FUNCTION outreach.import_fhir(text) IS
  'Imports FHIR R4 data (a folder of Bundles, a Bulk Data NDJSON folder, or one file) into the built-in tables, atomically and re-runnably; see docs/fhir-import.md';

-- A file that is not JSON: find which one (and for NDJSON the line) and raise naming it.
-- Only called on the error path, so its per-file, per-line subtransactions cost nothing
-- on a good import.
CREATE FUNCTION outreach._fhir_parse_error(msg text, det text, ctx text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  f    record;
  l    record;
  doc  text;
  j    jsonb;
  m    text;
  d    text;
  code text;
BEGIN
  FOR f IN SELECT * FROM pg_temp.fhir_file ORDER BY name LOOP
    BEGIN
      doc := pg_read_file(f.full_path);
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, code = RETURNED_SQLSTATE;
      RAISE EXCEPTION 'the database server cannot read "%"', f.name USING ERRCODE = code,
        DETAIL = m || '.',
        HINT = 'The server reads the files itself, as the operating system user it runs as (usually postgres): make the folder and its files readable by that user, and store them as UTF-8.';
    END;
    IF f.kind = 'json' THEN
      BEGIN
        j := doc::jsonb;
      EXCEPTION WHEN invalid_text_representation THEN
        GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
        RAISE EXCEPTION 'bad FHIR input in "%": the file is not JSON', f.name USING ERRCODE = 'invalid_text_representation',
          DETAIL = concat_ws(' ', m || '.', d),
          HINT = 'Nothing was imported; fix or remove the file and run the import again.';
      END;
    ELSE
      FOR l IN SELECT x.line, x.n FROM regexp_split_to_table(doc, E'\r?\n') WITH ORDINALITY x(line, n) WHERE btrim(x.line) <> '' LOOP
        BEGIN
          j := l.line::jsonb;
        EXCEPTION WHEN invalid_text_representation THEN
          GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL;
          RAISE EXCEPTION 'bad FHIR input in "%" line %: the line is not JSON', f.name, l.n USING ERRCODE = 'invalid_text_representation',
            DETAIL = concat_ws(' ', m || '.', d, 'Each line of an NDJSON file holds one complete JSON resource.'),
            HINT = 'Nothing was imported; fix or remove the line and run the import again.';
        END;
      END LOOP;
    END IF;
  END LOOP;
  RAISE EXCEPTION 'cannot read the FHIR files: %', msg USING ERRCODE = 'data_exception', DETAIL = concat_ws(' ', det, ctx);
END $$;

DO $$
DECLARE fn text;
BEGIN
  FOREACH fn IN ARRAY ARRAY['outreach._fhir_system(text)', 'outreach._fhir_valid_datetime(text)', 'outreach._fhir_ts(text, text)',
                            'outreach._fhir_date(text)', 'outreach._fhir_e164(text, text)', 'outreach._fhir_state_time_zone(text)',
                            'outreach._fhir_primary_coding(jsonb, text)', 'outreach._fhir_drop(text[])',
                            'outreach._fhir_upsert(text, text, text[])', 'outreach.import_fhir(text)',
                            'outreach._fhir_parse_error(text, text, text)'] LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
  END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION outreach.import_fhir(text) TO outreach_admin;
-- import_fhir runs as its caller, so the helpers it calls must be callable by admins too.
DO $$
DECLARE fn text;
BEGIN
  FOREACH fn IN ARRAY ARRAY['outreach._fhir_system(text)', 'outreach._fhir_valid_datetime(text)', 'outreach._fhir_ts(text, text)',
                            'outreach._fhir_date(text)', 'outreach._fhir_e164(text, text)', 'outreach._fhir_state_time_zone(text)',
                            'outreach._fhir_primary_coding(jsonb, text)', 'outreach._fhir_drop(text[])',
                            'outreach._fhir_upsert(text, text, text[])', 'outreach._fhir_parse_error(text, text, text)'] LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO outreach_admin', fn);
  END LOOP;
END $$;
GRANT SELECT ON outreach.code_system TO outreach_admin, outreach_marketer, outreach_analyst;
GRANT INSERT, UPDATE, DELETE ON outreach.code_system TO outreach_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON outreach.fhir_source, outreach.fhir_coding, outreach.care_team_member TO outreach_admin;
GRANT SELECT ON outreach.care_team_member TO outreach_marketer;
