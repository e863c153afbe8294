-- 0.2.0 -> 0.3.0, fhir: Synthea import changes (70_synthea.sql).
-- A plain date (Synthea 2.x) is a calendar date in the patient's time zone, stored as
-- midnight there (was: midnight UTC); QALY, DALY and QOLS are Synthea's own codes, not LOINC;
-- error messages name the column as the file's header spells it and the line the bad row
-- starts on.  Re-running import_synthea on an export imported by 0.2.0 updates the affected
-- rows in place (the provenance key holds the text of the date, not its conversion).
CREATE OR REPLACE FUNCTION outreach._synthea_ts(v text, tz text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN v IS NULL OR v = '' THEN NULL
    WHEN v ~ '[T ]\d\d:\d\d.*(Z|[+-]\d\d(:?\d\d)?)$' THEN v::timestamptz
    ELSE v::timestamp AT TIME ZONE coalesce(tz, 'UTC')
  END
$$;

CREATE OR REPLACE FUNCTION outreach._synthea_column(file text, col text) RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n text;
BEGIN
  IF to_regclass('pg_temp.synthea_columns') IS NOT NULL THEN
    EXECUTE 'SELECT header_name FROM pg_temp.synthea_columns WHERE file = $1 AND col = $2' INTO n USING file, col;
  END IF;
  RETURN coalesce(n, upper(col));
END $$;

CREATE OR REPLACE FUNCTION outreach._synthea_physical_line(file text, rec bigint) RETURNS bigint
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  path text;
  doc  text;
  n    bigint;
BEGIN
  IF to_regclass('pg_temp.synthea_columns') IS NULL THEN
    RETURN rec;
  END IF;
  EXECUTE 'SELECT path FROM pg_temp.synthea_columns WHERE file = $1 LIMIT 1' INTO path USING file;
  IF path IS NULL THEN
    RETURN rec;
  END IF;
  doc := pg_read_file(path);
  IF strpos(doc, '"') = 0 THEN
    RETURN rec;
  END IF;
  SELECT 1 + coalesce(sum(length(x.m[1]) - length(replace(x.m[1], E'\n', '')) + 1), 0) INTO n
  FROM regexp_matches(doc, E'((?:"[^"]*"|[^"\n])*)\n', 'g') WITH ORDINALITY x(m, k)
  WHERE x.k < rec;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION outreach._synthea_stage(folder text, file text, required boolean) RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  path     text := folder || '/' || file || '.csv';
  stg      text := 'synthea_' || file;
  st       record;
  head     text;
  found    text;
  matched  text;
  expected text;
  cols     text[];
  msg      text;
  detail   text;
  ctx      text;
  code     text;
BEGIN
  PERFORM outreach._synthea_drop(stg);
  st := pg_stat_file(path, true);
  IF st IS NULL THEN
    IF required THEN
      RAISE EXCEPTION 'file "%.csv" is missing from the Synthea folder "%"', file, folder
        USING ERRCODE = 'undefined_file',
        DETAIL = format('A Synthea CSV export always has %s.csv; the other files are optional.', file),
        HINT = 'Point to the csv folder of the export (Synthea writes it to output/csv).';
    END IF;
    RETURN NULL;
  END IF;
  IF st.isdir THEN
    RAISE EXCEPTION '"%" is a folder, not a CSV file', path USING ERRCODE = 'wrong_object_type';
  END IF;

  BEGIN
    head := pg_read_file(path, 0, 16384);
  EXCEPTION WHEN insufficient_privilege OR undefined_file OR io_error THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    RAISE EXCEPTION 'the database server cannot read "%"', path USING ERRCODE = 'insufficient_privilege',
      DETAIL = msg || '.',
      HINT = 'The server reads the files itself, as the operating system user it runs as (usually postgres): make the folder and its files readable by that user, e.g. chmod -R a+rX on the folder.';
  END;
  head := split_part(head, E'\n', 1);
  head := regexp_replace(head, E'^\uFEFF', '');
  head := rtrim(head, E'\r');

  SELECT l.layout INTO matched FROM outreach._synthea_layouts() l WHERE l.file = _synthea_stage.file AND l.header = head;
  IF matched IS NULL THEN
    SELECT string_agg(format('%s (%s)', l.header, l.layout), '; ') INTO expected
    FROM outreach._synthea_layouts() l WHERE l.file = _synthea_stage.file;
    found := CASE WHEN head = '' THEN 'an empty first line' ELSE head END;
    RAISE EXCEPTION 'file "%.csv" has an unexpected header', file USING ERRCODE = 'bad_copy_file_format',
      DETAIL = format('Found: %s. Expected one of: %s.', found, expected),
      HINT = 'The importer reads Synthea 2.x and 3.x CSV exports; check that this is an unmodified Synthea file.';
  END IF;

  cols := string_to_array(lower(head), ',');
  IF to_regclass('pg_temp.synthea_columns') IS NULL THEN
    CREATE TEMP TABLE synthea_columns (file text, col text, header_name text, path text);
  END IF;
  DELETE FROM pg_temp.synthea_columns c WHERE c.file = _synthea_stage.file;
  INSERT INTO pg_temp.synthea_columns
  SELECT _synthea_stage.file, lower(h.name), h.name, path FROM unnest(string_to_array(head, ',')) h(name)
  UNION ALL
  SELECT _synthea_stage.file, 'start', 'DATE', path WHERE _synthea_stage.file = 'procedures' AND matched = '2.x';
  EXECUTE format('CREATE TEMP TABLE %I (_line bigint GENERATED ALWAYS AS IDENTITY (START 2) PRIMARY KEY, %s)',
                 stg, (SELECT string_agg(format('%I text', c), ', ') FROM unnest(cols) c));
  BEGIN
    EXECUTE format('COPY pg_temp.%I (%s) FROM %L WITH (FORMAT csv, HEADER true, ENCODING ''UTF8'')',
                   stg, (SELECT string_agg(format('%I', c), ', ') FROM unnest(cols) c), path);
  EXCEPTION WHEN data_exception OR insufficient_privilege OR undefined_file OR io_error THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, ctx = PG_EXCEPTION_CONTEXT, code = RETURNED_SQLSTATE;
    -- COPY's context reads "COPY synthea_x, line N[, column c]: ..."; keep the line and column.
    detail := substring(ctx FROM 'line \d+');
    IF ctx ~ 'line \d+, column \w+' THEN
      detail := detail || ' column ' || outreach._synthea_column(file, substring(ctx FROM 'line \d+, column (\w+)'));
    END IF;
    -- name the column as the header spells it
    msg := regexp_replace(msg, 'column "(\w+)"', 'column ' || outreach._synthea_column(file, substring(msg FROM 'column "(\w+)"')));
    RAISE EXCEPTION 'bad row in "%.csv"%: %', file, coalesce(' at ' || detail, ''), msg USING ERRCODE = code,
      HINT = 'Every row of a Synthea CSV file has as many fields as its header; the file may be truncated or edited.';
  END;

  -- Columns only one layout has, so the load reads both layouts alike.
  IF file = 'procedures' AND matched = '2.x' THEN
    EXECUTE 'ALTER TABLE pg_temp.synthea_procedures RENAME COLUMN date TO start';
    EXECUTE 'ALTER TABLE pg_temp.synthea_procedures ADD COLUMN stop text';
  ELSIF file = 'observations' AND matched = '2.x' THEN
    EXECUTE 'ALTER TABLE pg_temp.synthea_observations ADD COLUMN category text';
  ELSIF file = 'encounters' AND matched = '2.x' THEN
    EXECUTE 'ALTER TABLE pg_temp.synthea_encounters ADD COLUMN organization text';
  ELSIF file = 'allergies' AND matched = '2.x' THEN
    EXECUTE 'ALTER TABLE pg_temp.synthea_allergies ADD COLUMN system text';
  END IF;
  -- Other files' rows are checked against patients and encounters by Id: index them.
  IF file IN ('patients', 'encounters') THEN
    EXECUTE format('CREATE INDEX ON pg_temp.%I (id)', stg);
  END IF;
  EXECUTE format('ANALYZE pg_temp.%I', stg);
  RETURN matched;
END $$;

CREATE OR REPLACE FUNCTION outreach._synthea_check(file text, col text, rule text, rule_text text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  stg  text := format('pg_temp.%I', 'synthea_' || file);
  c    text := format('s.%I', col);
  cond text;
  what text;
  bad  record;
BEGIN
  CASE rule
    WHEN 'required' THEN cond := format('coalesce(%s, '''') <> ''''', c); what := 'a value (it must not be empty)';
    WHEN 'date' THEN cond := format('coalesce(%1$s, '''') = '''' OR outreach._synthea_valid(''date'', %1$s)', c);
      what := 'a date written YYYY-MM-DD';
    WHEN 'timestamp' THEN
      -- Fast path for Synthea's own format with a day that exists in every month; the
      -- function (field ranges, month lengths) only sees the rest.
      cond := format('coalesce(%1$s, '''') = ''''
                      OR %1$s ~ ''^(?!0000)\d{4}-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])(T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ)?$''
                      OR outreach._synthea_valid(''timestamp'', %1$s)', c);
      what := 'a timestamp written YYYY-MM-DDThh:mm:ssZ (or a date YYYY-MM-DD)';
    WHEN 'number' THEN cond := format('coalesce(%1$s, '''') = '''' OR outreach._synthea_valid(''number'', %1$s)', c);
      what := 'a number';
    WHEN 'patient' THEN
      cond := format('EXISTS (SELECT 1 FROM pg_temp.synthea_patients p WHERE p.id = %1$s)
                      OR EXISTS (SELECT 1 FROM outreach.contact k WHERE k.external_id = %1$s)', c);
      what := 'the Id of a patient in patients.csv';
    WHEN 'encounter' THEN
      IF to_regclass('pg_temp.synthea_encounters') IS NOT NULL THEN
        cond := format('coalesce(%1$s, '''') = ''''
                        OR EXISTS (SELECT 1 FROM pg_temp.synthea_encounters e WHERE e.id = %1$s)
                        OR EXISTS (SELECT 1 FROM outreach.encounter k WHERE k.external_id = %1$s)', c);
        what := 'the Id of an encounter in encounters.csv';
      ELSE
        RETURN;  -- without encounters.csv, rows link to already imported encounters or to none
      END IF;
    WHEN 'unique' THEN
      EXECUTE format('SELECT _line, v FROM (SELECT s._line, %1$s AS v, row_number() OVER (PARTITION BY %1$s ORDER BY s._line) AS n
                      FROM %2$s s) d WHERE n > 1 ORDER BY _line LIMIT 1', c, stg) INTO bad;
      IF bad._line IS NOT NULL THEN
        RAISE EXCEPTION 'bad value in "%.csv" line % column %: "%" appears twice', file,
          outreach._synthea_physical_line(file, bad._line), outreach._synthea_column(file, col), bad.v
          USING ERRCODE = 'unique_violation',
          DETAIL = format('Each %s has its own Id in column %s.', rtrim(file, 's'), outreach._synthea_column(file, col));
      END IF;
      RETURN;
    ELSE
      cond := rule; what := rule_text;
  END CASE;
  EXECUTE format('SELECT s._line, %s::text AS v FROM %s s WHERE NOT coalesce(%s, false) ORDER BY s._line LIMIT 1', c, stg, cond)
    INTO bad;
  IF bad._line IS NOT NULL THEN
    RAISE EXCEPTION 'bad value in "%.csv" line % column %: %', file, outreach._synthea_physical_line(file, bad._line),
      outreach._synthea_column(file, col),
      CASE WHEN bad.v IS NULL OR bad.v = '' THEN 'empty' ELSE format('"%s"', bad.v) END
      USING ERRCODE = CASE WHEN rule IN ('patient', 'encounter') THEN 'foreign_key_violation' ELSE 'invalid_text_representation' END,
      DETAIL = format('Column %s must hold %s.', outreach._synthea_column(file, col), what),
      HINT = 'Nothing was imported; fix the file (or re-export it) and run the import again.';
  END IF;
END $$;

CREATE OR REPLACE FUNCTION outreach.import_synthea(folder text, synthesize_channels boolean DEFAULT false)
RETURNS TABLE (entity text, rows_in_csv bigint, inserted bigint, updated bigint)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  files   text[] := ARRAY['organizations','payers','patients','encounters','conditions','observations',
                          'procedures','immunizations','medications','allergies'];
  f       text;
  dir     text;
  st      record;
  present text[] := '{}';
  n       bigint;
  ins     bigint;
  upd     bigint;
  r       record;
  -- Progress: steps of 2 * files + 2 (stage each file, check, load each file, clean up).
  steps   constant bigint := 2 * 10 + 2;
  -- The natural key of a clinical row: patient, encounter, code, time and the ordinal among equal keys.
  key_of  constant text := $k$md5(concat_ws('|', s.patient, s.encounter, s.code, %1$s,
                              row_number() OVER (PARTITION BY s.patient, s.encounter, s.code, %1$s ORDER BY s._line)))$k$;
BEGIN
  IF folder IS NULL OR btrim(folder) = '' THEN
    RAISE EXCEPTION 'a folder is required' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Pass the absolute path, on the database server, of the csv folder of a Synthea export.';
  END IF;
  dir := rtrim(folder, '/');
  IF left(folder, 1) <> '/' THEN
    RAISE EXCEPTION 'folder "%" is not an absolute path', folder USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'The database server reads the files itself, so a relative path would be read from its data directory.',
      HINT = 'Pass the absolute path of the folder on the database server, e.g. ''/data/synthea/output/csv''.';
  END IF;
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
     AND NOT pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') THEN
    RAISE EXCEPTION 'permission denied to import Synthea files' USING ERRCODE = 'insufficient_privilege',
      DETAIL = 'The import reads files on the database server with COPY.',
      HINT = 'Run it as a superuser or as a member of pg_read_server_files.';
  END IF;
  st := pg_stat_file(dir, true);
  IF st IS NULL THEN
    RAISE EXCEPTION 'folder "%" does not exist on the database server', folder USING ERRCODE = 'undefined_file',
      HINT = 'The path is read by the server, not the client; give the path as the server sees it.';
  ELSIF NOT st.isdir THEN
    RAISE EXCEPTION '"%" is not a folder', folder USING ERRCODE = 'wrong_object_type',
      HINT = 'Pass the csv folder of a Synthea export, not one of its files.';
  END IF;

  -- One import at a time: two concurrent imports of the same export would both see its
  -- clinical rows as new.  The second waits, then finds them imported.
  PERFORM pg_advisory_xact_lock(hashtext('outreach.import_synthea'));

  -- 1. Stage every file (headers and field counts checked).
  FOREACH f IN ARRAY files LOOP
    PERFORM outreach._progress('import_synthea', array_position(files, f) - 1, steps);
    IF outreach._synthea_stage(dir, f, f = 'patients') IS NOT NULL THEN
      present := present || f;
    ELSE
      PERFORM outreach._synthea_drop('synthea_' || f);
    END IF;
  END LOOP;

  PERFORM outreach._progress('import_synthea', cardinality(files), steps);
  -- 2. Check every value the load converts or resolves.
  PERFORM outreach._synthea_check('patients', 'id', 'required');
  PERFORM outreach._synthea_check('patients', 'id', 'unique');
  PERFORM outreach._synthea_check('patients', 'birthdate', 'required');
  PERFORM outreach._synthea_check('patients', 'birthdate', 'date');
  PERFORM outreach._synthea_check('patients', 'deathdate', 'date');
  PERFORM outreach._synthea_check('patients', 'gender', $c$coalesce(s.gender, '') IN ('M', 'F', '')$c$, 'M, F or nothing');
  IF 'organizations' = ANY (present) THEN
    PERFORM outreach._synthea_check('organizations', 'id', 'required');
    PERFORM outreach._synthea_check('organizations', 'id', 'unique');
    PERFORM outreach._synthea_check('organizations', 'name', 'required');
  END IF;
  IF 'payers' = ANY (present) THEN
    PERFORM outreach._synthea_check('payers', 'id', 'required');
    PERFORM outreach._synthea_check('payers', 'id', 'unique');
    PERFORM outreach._synthea_check('payers', 'name', 'required');
  END IF;
  IF 'encounters' = ANY (present) THEN
    PERFORM outreach._synthea_check('encounters', 'id', 'required');
    PERFORM outreach._synthea_check('encounters', 'id', 'unique');
    PERFORM outreach._synthea_check('encounters', 'patient', 'patient');
    PERFORM outreach._synthea_check('encounters', 'start', 'required');
    PERFORM outreach._synthea_check('encounters', 'start', 'timestamp');
    PERFORM outreach._synthea_check('encounters', 'stop', 'timestamp');
    PERFORM outreach._synthea_check('encounters', 'stop',
      $c$coalesce(s.stop, '') = '' OR outreach._synthea_ts(s.stop) >= outreach._synthea_ts(s.start)$c$,
      'a time not before START');
  END IF;
  FOREACH f IN ARRAY ARRAY['conditions','observations','procedures','immunizations','medications','allergies'] LOOP
    CONTINUE WHEN NOT f = ANY (present);
    PERFORM outreach._synthea_check(f, 'patient', 'patient');
    PERFORM outreach._synthea_check(f, 'encounter', 'encounter');
    PERFORM outreach._synthea_check(f, 'code', 'required');
  END LOOP;
  IF 'conditions' = ANY (present) THEN
    PERFORM outreach._synthea_check('conditions', 'start', 'required');
    PERFORM outreach._synthea_check('conditions', 'start', 'date');
    PERFORM outreach._synthea_check('conditions', 'stop', 'date');
  END IF;
  IF 'observations' = ANY (present) THEN
    PERFORM outreach._synthea_check('observations', 'date', 'required');
    PERFORM outreach._synthea_check('observations', 'date', 'timestamp');
    PERFORM outreach._synthea_check('observations', 'value',
      $c$s.type IS DISTINCT FROM 'numeric' OR coalesce(s.value, '') = '' OR outreach._synthea_valid('number', s.value)$c$,
      'a number when TYPE is numeric');
  END IF;
  IF 'procedures' = ANY (present) THEN
    PERFORM outreach._synthea_check('procedures', 'start', 'required');
    PERFORM outreach._synthea_check('procedures', 'start', 'timestamp');
    PERFORM outreach._synthea_check('procedures', 'stop', 'timestamp');
  END IF;
  IF 'immunizations' = ANY (present) THEN
    PERFORM outreach._synthea_check('immunizations', 'date', 'required');
    PERFORM outreach._synthea_check('immunizations', 'date', 'timestamp');
  END IF;
  IF 'medications' = ANY (present) THEN
    PERFORM outreach._synthea_check('medications', 'start', 'required');
    PERFORM outreach._synthea_check('medications', 'start', 'timestamp');
    PERFORM outreach._synthea_check('medications', 'stop', 'timestamp');
  END IF;
  IF 'allergies' = ANY (present) THEN
    PERFORM outreach._synthea_check('allergies', 'start', 'required');
    PERFORM outreach._synthea_check('allergies', 'start', 'timestamp');
    PERFORM outreach._synthea_check('allergies', 'stop', 'timestamp');
  END IF;

  -- 3. Load, parents first.
  IF 'organizations' = ANY (present) OR 'payers' = ANY (present) THEN
    FOREACH f IN ARRAY ARRAY['organizations', 'payers'] LOOP
      CONTINUE WHEN NOT f = ANY (present);
      EXECUTE format($q$
        WITH up AS (
          INSERT INTO outreach.account AS a (external_id, name, kind)
          SELECT s.id, s.name, %L FROM pg_temp.%I s ORDER BY s._line
          ON CONFLICT (external_id) DO UPDATE SET name = excluded.name, kind = excluded.kind
          WHERE (a.name, a.kind) IS DISTINCT FROM (excluded.name, excluded.kind)
          RETURNING (xmax = 0) AS is_new)
        SELECT (SELECT count(*) FROM pg_temp.%I), count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new) FROM up$q$,
        CASE f WHEN 'organizations' THEN 'medical_center' ELSE 'insurer' END, 'synthea_' || f, 'synthea_' || f)
      INTO n, ins, upd;
      entity := f; rows_in_csv := n; inserted := ins; updated := upd;
      PERFORM outreach._progress('import_synthea', cardinality(files) + 1 + array_position(files, entity), steps);
      RETURN NEXT;
    END LOOP;
  END IF;

  WITH src AS (
    SELECT s._line, s.id AS external_id, nullif(s.first, '') AS first_name, nullif(s.last, '') AS last_name,
           s.birthdate::date AS birthdate,
           CASE s.gender WHEN 'M' THEN 'male' WHEN 'F' THEN 'female' ELSE 'unknown' END AS gender,
           nullif(s.address, '') AS address_line, nullif(s.city, '') AS city, nullif(s.state, '') AS state,
           nullif(s.zip, '') AS postal_code, 'US' AS country,
           outreach._synthea_state_time_zone(s.state) AS time_zone,
           outreach._synthea_ts(nullif(s.deathdate, ''), coalesce(ex.time_zone, outreach._synthea_state_time_zone(s.state))) AS deceased_at,
           -- Synthesised channels (demos only): reserved example.org mailboxes and fictional
           -- 555-01xx numbers, derived from the Synthea id so re-runs give the same values.
           CASE WHEN synthesize_channels THEN
             lower(regexp_replace(coalesce(s.first, '') || '.' || coalesce(s.last, ''), '[^A-Za-z.]', '', 'g'))
             || '.' || left(s.id, 8) || '@example.org' END AS email,
           CASE WHEN synthesize_channels THEN
             format('+1%s55501%s', 201 + abs(hashtext(s.id)) % 780, lpad((abs(hashtext(s.id || '#')) % 100)::text, 2, '0')) END AS phone,
           CASE WHEN synthesize_channels THEN 'email'
                WHEN coalesce(s.address, '') <> '' THEN 'letter' END AS preferred_channel
    FROM pg_temp.synthea_patients s LEFT JOIN outreach.contact ex ON ex.external_id = s.id
  ), up AS (
    INSERT INTO outreach.contact AS c (external_id, first_name, last_name, birthdate, gender, address_line, city, state,
                                       postal_code, country, time_zone, deceased_at, email, phone, preferred_channel, contact_type)
    SELECT external_id, first_name, last_name, birthdate, gender, address_line, city, state,
           postal_code, country, time_zone, deceased_at, email, phone, preferred_channel, 'patient'
    FROM src ORDER BY _line
    ON CONFLICT (external_id) DO UPDATE SET
      first_name = excluded.first_name, last_name = excluded.last_name, birthdate = excluded.birthdate,
      gender = excluded.gender, address_line = excluded.address_line, city = excluded.city, state = excluded.state,
      postal_code = excluded.postal_code, country = excluded.country,
      time_zone = coalesce(c.time_zone, excluded.time_zone), deceased_at = excluded.deceased_at,
      email = coalesce(c.email, excluded.email), phone = coalesce(c.phone, excluded.phone),
      preferred_channel = coalesce(c.preferred_channel, excluded.preferred_channel)
    WHERE (c.first_name, c.last_name, c.birthdate, c.gender, c.address_line, c.city, c.state, c.postal_code, c.country,
           c.deceased_at) IS DISTINCT FROM
          (excluded.first_name, excluded.last_name, excluded.birthdate, excluded.gender, excluded.address_line,
           excluded.city, excluded.state, excluded.postal_code, excluded.country, excluded.deceased_at)
       OR (c.time_zone IS NULL AND excluded.time_zone IS NOT NULL)
       OR (c.email IS NULL AND excluded.email IS NOT NULL)
       OR (c.phone IS NULL AND excluded.phone IS NOT NULL)
       OR (c.preferred_channel IS NULL AND excluded.preferred_channel IS NOT NULL)
    RETURNING (xmax = 0) AS is_new
  )
  SELECT (SELECT count(*) FROM pg_temp.synthea_patients), count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new)
  FROM up INTO n, ins, upd;
  entity := 'patients'; rows_in_csv := n; inserted := ins; updated := upd;
  PERFORM outreach._progress('import_synthea', cardinality(files) + 1 + array_position(files, entity), steps);
  RETURN NEXT;

  IF 'encounters' = ANY (present) THEN
    WITH up AS (
      INSERT INTO outreach.encounter AS e (external_id, patient_id, class, code, code_system, description, start_at, end_at)
      SELECT s.id, c.id,
             CASE WHEN s.encounterclass IN ('ambulatory','wellness','outpatient','inpatient','emergency','urgentcare',
                                            'virtual','home','snf','hospice') THEN s.encounterclass ELSE 'other' END,
             nullif(s.code, ''), 'SNOMED', nullif(s.description, ''),
             outreach._synthea_ts(s.start, c.time_zone), outreach._synthea_ts(s.stop, c.time_zone)
      FROM pg_temp.synthea_encounters s JOIN outreach.contact c ON c.external_id = s.patient
      ORDER BY s._line
      ON CONFLICT (external_id) WHERE external_id IS NOT NULL DO UPDATE SET
        patient_id = excluded.patient_id, class = excluded.class, code = excluded.code, code_system = excluded.code_system,
        description = excluded.description, start_at = excluded.start_at, end_at = excluded.end_at
      WHERE (e.patient_id, e.class, e.code, e.code_system, e.description, e.start_at, e.end_at) IS DISTINCT FROM
            (excluded.patient_id, excluded.class, excluded.code, excluded.code_system, excluded.description,
             excluded.start_at, excluded.end_at)
      RETURNING (xmax = 0) AS is_new
    )
    SELECT (SELECT count(*) FROM pg_temp.synthea_encounters), count(*) FILTER (WHERE is_new), count(*) FILTER (WHERE NOT is_new)
    FROM up INTO n, ins, upd;
    entity := 'encounters'; rows_in_csv := n; inserted := ins; updated := upd;
    PERFORM outreach._progress('import_synthea', cardinality(files) + 1 + array_position(files, entity), steps);
    RETURN NEXT;
  END IF;

  FOR r IN
    SELECT * FROM (VALUES
      ('conditions', 'condition', 's.start',
       $s$nullif(s.code, '') AS code, 'SNOMED' AS code_system, nullif(s.description, '') AS description,
          CASE WHEN coalesce(s.stop, '') = '' THEN 'active' ELSE 'resolved' END AS clinical_status,
          s.start::date AS onset_date, nullif(s.stop, '')::date AS abatement_date$s$,
       ARRAY['code','code_system','description','clinical_status','onset_date','abatement_date']),
      ('observations', 'observation', 's.date',
       $s$nullif(s.code, '') AS code,
          -- QALY, DALY and QOLS are Synthea's own summary codes, not LOINC
          CASE WHEN s.code IN ('QALY', 'DALY', 'QOLS', 'QOL') THEN 'Synthea' ELSE 'LOINC' END AS code_system,
          nullif(s.description, '') AS description,
          CASE WHEN s.type = 'numeric' THEN nullif(s.value, '')::numeric END AS value_numeric,
          CASE WHEN s.type IS DISTINCT FROM 'numeric' THEN nullif(s.value, '') END AS value_text,
          nullif(s.units, '') AS unit, outreach._synthea_ts(s.date, c.time_zone) AS effective_at$s$,
       ARRAY['code','code_system','description','value_numeric','value_text','unit','effective_at']),
      ('procedures', 'procedure', 's.start',
       $s$nullif(s.code, '') AS code, 'SNOMED' AS code_system, nullif(s.description, '') AS description,
          outreach._synthea_ts(s.start, c.time_zone) AS performed_at$s$,
       ARRAY['code','code_system','description','performed_at']),
      ('immunizations', 'immunization', 's.date',
       $s$nullif(s.code, '') AS code, 'CVX' AS code_system, nullif(s.description, '') AS description,
          outreach._synthea_ts(s.date, c.time_zone) AS administered_at$s$,
       ARRAY['code','code_system','description','administered_at']),
      ('medications', 'medication', 's.start',
       $s$nullif(s.code, '') AS code, 'RxNorm' AS code_system, nullif(s.description, '') AS description,
          outreach._synthea_ts(s.start, c.time_zone) AS start_at, outreach._synthea_ts(s.stop, c.time_zone) AS stop_at$s$,
       ARRAY['code','code_system','description','start_at','stop_at']),
      ('allergies', 'allergy', 's.start',
       $s$nullif(s.code, '') AS code,
          CASE WHEN coalesce(s.system, '') IN ('', 'SNOMED-CT', 'SNOMED CT', 'SNOMED') THEN 'SNOMED'
               WHEN lower(s.system) = 'rxnorm' THEN 'RxNorm' ELSE s.system END AS code_system,
          nullif(s.description, '') AS description,
          outreach._synthea_ts(s.start, c.time_zone) AS start_at, outreach._synthea_ts(s.stop, c.time_zone) AS stop_at$s$,
       ARRAY['code','code_system','description','start_at','stop_at'])
    ) v(file, tbl, time_col, cols_sql, cols)
  LOOP
    CONTINUE WHEN NOT r.file = ANY (present);
    SELECT u.inserted, u.updated INTO ins, upd
    FROM outreach._synthea_upsert(r.tbl, format(
      'SELECT s._line, %s AS source_key, c.id AS patient_id, e.id AS encounter_id, %s
       FROM pg_temp.%I s JOIN outreach.contact c ON c.external_id = s.patient
       LEFT JOIN outreach.encounter e ON e.external_id = nullif(s.encounter, '''')',
      format(key_of, r.time_col), r.cols_sql, 'synthea_' || r.file),
      ARRAY['patient_id', 'encounter_id'] || r.cols) u;
    EXECUTE format('SELECT count(*) FROM pg_temp.%I', 'synthea_' || r.file) INTO n;
    entity := r.file; rows_in_csv := n; inserted := ins; updated := upd;
    PERFORM outreach._progress('import_synthea', cardinality(files) + 1 + array_position(files, entity), steps);
    RETURN NEXT;
  END LOOP;

  FOREACH f IN ARRAY files LOOP
    PERFORM outreach._synthea_drop('synthea_' || f);
  END LOOP;
  PERFORM outreach._progress_done();
END $$;

-- Rows 0.2.0 imported with the wrong code system.
UPDATE outreach.observation SET code_system = 'Synthea'
WHERE code IN ('QALY', 'DALY', 'QOLS', 'QOL') AND code_system = 'LOINC';

-- 0.3: import functions are for admins only.  import_synthea (and import_fhir, which shares
-- some helpers) run as their caller, so admins may call the helpers too; nobody else.
DO $$
DECLARE fn text;
BEGIN
  FOREACH fn IN ARRAY ARRAY['outreach.import_synthea(text, boolean)', 'outreach._synthea_layouts()',
                            'outreach._synthea_state_time_zone(text)', 'outreach._synthea_ts(text)', 'outreach._synthea_ts(text, text)',
                            'outreach._synthea_valid(text, text)', 'outreach._synthea_drop(text)', 'outreach._synthea_column(text, text)',
                            'outreach._synthea_physical_line(text, bigint)', 'outreach._synthea_stage(text, text, boolean)',
                            'outreach._synthea_check(text, text, text, text)', 'outreach._synthea_upsert(text, text, text[])'] LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO outreach_admin', fn);
  END LOOP;
END $$;
GRANT SELECT, INSERT, UPDATE, DELETE ON outreach.synthea_source_row TO outreach_admin;
