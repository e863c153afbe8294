-- 66_leads.sql: lead management and social activities (DESIGN §7, issue 14).
--
-- Owns: outreach.lead and its history (lead_activity, lead_status_change,
-- lead_score_change, lead_conversion), lead scoring (lead_score_rule, lead_score_hit,
-- lead_settings), capture (form, event registration, CSV import), convert_lead, and the
-- social tables (social_post, social_engagement, social_overview) with the C sentiment
-- scorer of src/sentiment.c.  Design and its reasons: docs/leads.md, docs/social.md.
--
-- A lead IS a contact (contact_type 'lead') plus one outreach.lead row holding what only a
-- lead has (source, status lifecycle, score, conversion).  So consent checks, segments,
-- journeys and event registrations work on leads unchanged: a lead who never agreed to
-- marketing has do_not_email/do_not_sms/do_not_mail set, and enqueue_message suppresses
-- marketing to them with reason 'opted_out'.
--
-- Scoring: each rule is a live dynamic segment "lead score: <rule>" whose query is
-- `contact where has lead where status in ('new', 'working', 'qualified') and (<condition>)`;
-- its membership is kept at commit by the segment triggers, and a statement trigger on
-- segment_change turns joins and leaves into rule hits and recomputes the affected leads'
-- scores in the same transaction.  Decay (points halve every half_life since the rule
-- started to hold) is applied by the tick: a trigger on outreach.tick_run rescores leads
-- with decaying rules (no edit to the tick itself).
--
-- Objects of other parts this part changes or hooks (no edit to their files):
--   outreach.contact: contact_type allows 'lead'; indexes contact_email_normalized, contact_phone
--   outreach.segment_change: trigger lead_score (AFTER INSERT, statement)
--   outreach.tick_run: trigger lead_decay (AFTER INSERT, row)
--   outreach.segment: trigger lead_rule_segment_guard (BEFORE UPDATE, row)
--   registry: entities lead, lead_activity, and interaction (unless already registered)

-- Leads are contacts of type 'lead'.
ALTER TABLE outreach.contact DROP CONSTRAINT contact_contact_type_allowed;
ALTER TABLE outreach.contact ADD CONSTRAINT contact_contact_type_allowed
  CHECK (outreach.allowed_value(contact_type, 'contact.contact_type', '{patient,practitioner,lead,other}'));
-- Matching by normalised email and by phone (stored E.164) at capture and conversion.
CREATE INDEX contact_email_normalized ON outreach.contact (lower(btrim(email))) WHERE email IS NOT NULL;
CREATE INDEX contact_phone ON outreach.contact (phone) WHERE phone IS NOT NULL;

-- Normalisation ---------------------------------------------------------------------------

CREATE FUNCTION outreach.normalize_email(email text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT nullif(pg_catalog.lower(pg_catalog.btrim($1)), '')
$$;
COMMENT ON FUNCTION outreach.normalize_email(text) IS
  'An email address as leads are matched on it: trimmed, lower case; NULL when blank';

-- The E.164 form of a phone number, or NULL when it has none (never an error).
CREATE FUNCTION outreach._phone_e164(phone text, default_country_code text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  s text := pg_catalog.regexp_replace(coalesce($1, ''), '[[:space:]().\-/]', '', 'g');
  cc text := pg_catalog.regexp_replace(coalesce($2, ''), '[^0-9]', '', 'g');
BEGIN
  IF s = '' THEN RETURN NULL; END IF;
  IF s LIKE '00%' THEN
    s := '+' || substr(s, 3);
  ELSIF s NOT LIKE '+%' THEN
    IF cc = '' THEN RETURN NULL; END IF;
    s := '+' || cc || pg_catalog.ltrim(s, '0');       -- national trunk prefix 0 dropped
  END IF;
  IF s !~ '^\+[1-9][0-9]{6,14}$' THEN RETURN NULL; END IF;
  RETURN s;
END $$;

CREATE FUNCTION outreach.normalize_phone(phone text, default_country_code text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  r text;
BEGIN
  IF coalesce(pg_catalog.btrim($1), '') = '' THEN RETURN NULL; END IF;
  r := outreach._phone_e164($1, $2);
  IF r IS NULL THEN
    RAISE EXCEPTION 'invalid phone number "%"', $1 USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'A phone number must be in E.164 form (+ and 7 to 15 digits), or national with a default country code.',
      HINT = 'Write it as +14155550100, or set a country code for national numbers with outreach.set_default_country_code().';
  END IF;
  RETURN r;
END $$;
COMMENT ON FUNCTION outreach.normalize_phone(text, text) IS
  'A phone number in E.164 form: spaces, dashes, dots and parentheses removed, 00 read as +, a national number prefixed with default_country_code; an error when it cannot be one';

-- Settings ---------------------------------------------------------------------------------

CREATE TABLE outreach.lead_settings (
  id                      boolean PRIMARY KEY DEFAULT true CONSTRAINT lead_settings_one_row CHECK (id),
  qualification_threshold numeric NOT NULL DEFAULT 50,
  default_country_code    text CONSTRAINT lead_settings_country_code_digits CHECK (default_country_code ~ '^\+?[1-9][0-9]{0,3}$')
);
-- No row is shipped (so a dump restores the user's row without a clash): an absent row
-- means the defaults, and the setters below insert it.
SELECT outreach._dump('outreach.lead_settings');
COMMENT ON TABLE outreach.lead_settings IS
  'At most one row: the score at which an open lead becomes qualified (default 50), and the country code of national phone numbers';

CREATE FUNCTION outreach._lead_threshold() RETURNS numeric
LANGUAGE sql STABLE AS $$ SELECT coalesce((SELECT s.qualification_threshold FROM outreach.lead_settings s), 50) $$;
CREATE FUNCTION outreach._lead_country_code() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT s.default_country_code FROM outreach.lead_settings s $$;

CREATE FUNCTION outreach.set_default_country_code(country_code text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF $1 IS NOT NULL AND $1 !~ '^\+?[1-9][0-9]{0,3}$' THEN
    RAISE EXCEPTION 'invalid country code "%"', $1 USING ERRCODE = 'invalid_parameter_value',
      HINT = 'A country calling code is 1 to 4 digits, e.g. +1 or +44; NULL accepts only international numbers.';
  END IF;
  INSERT INTO outreach.lead_settings AS x (id, default_country_code) VALUES (true, $1)
  ON CONFLICT (id) DO UPDATE SET default_country_code = excluded.default_country_code;
END $$;
COMMENT ON FUNCTION outreach.set_default_country_code(text) IS
  'The country calling code national phone numbers of leads get (e.g. +1); NULL: only international numbers are accepted';

-- Leads ------------------------------------------------------------------------------------

CREATE TABLE outreach.lead (
  id                   bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  contact_id           bigint NOT NULL REFERENCES outreach.contact ON DELETE CASCADE,
  first_name           text,
  last_name            text,
  email                text,
  phone                text,
  source               text NOT NULL
                       CONSTRAINT lead_source_allowed CHECK (outreach.allowed_value(source, 'lead.source',
                         '{campaign,event,form,import}')),
  source_detail        text,
  status               text NOT NULL DEFAULT 'new'
                       CONSTRAINT lead_status_allowed CHECK (outreach.allowed_value(status, 'lead.status',
                         '{new,working,qualified,disqualified,converted}')),
  status_changed_at    timestamptz NOT NULL,
  status_changed_by    text NOT NULL,
  score                numeric(12,2) NOT NULL DEFAULT 0,
  score_updated_at     timestamptz,
  qualified_at         timestamptz,
  converted_contact_id bigint,            -- = contact_id once converted (no second link, so `has lead` is unambiguous)
  converted_at         timestamptz,
  converted_by         text,
  captured_at          timestamptz NOT NULL,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT lead_converted_complete CHECK ((status = 'converted') = (converted_contact_id IS NOT NULL OR converted_at IS NOT NULL))
);
-- The same person captured twice is one lead: one open (not converted) lead per contact.
CREATE UNIQUE INDEX lead_one_open_per_contact ON outreach.lead (contact_id) WHERE status <> 'converted';
CREATE INDEX ON outreach.lead (contact_id);
CREATE INDEX ON outreach.lead (status);
CREATE INDEX ON outreach.lead (converted_contact_id);
CREATE TRIGGER touch_updated_at BEFORE UPDATE ON outreach.lead
  FOR EACH ROW EXECUTE FUNCTION outreach.touch_updated_at();
SELECT outreach._dump('outreach.lead');
COMMENT ON TABLE outreach.lead IS
  'Prospects (DESIGN §7): the lead-only state of a contact of type lead: source, status lifecycle, score, conversion';

CREATE TABLE outreach.lead_activity (
  id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  lead_id     bigint NOT NULL REFERENCES outreach.lead ON DELETE CASCADE,
  contact_id  bigint NOT NULL REFERENCES outreach.contact ON DELETE CASCADE,
  kind        text NOT NULL
              CONSTRAINT lead_activity_kind_allowed CHECK (outreach.allowed_value(kind, 'lead_activity.kind',
                '{form_submitted,campaign_response,registered,attended,imported}')),
  detail      text,
  occurred_at timestamptz NOT NULL
);
CREATE INDEX ON outreach.lead_activity (contact_id, occurred_at);
CREATE INDEX ON outreach.lead_activity (lead_id);
SELECT outreach._dump('outreach.lead_activity');
COMMENT ON TABLE outreach.lead_activity IS
  'What a lead did outside messages: form submitted, campaign response, registered for or attended an event, imported';

CREATE TABLE outreach.lead_status_change (
  id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  lead_id     bigint NOT NULL REFERENCES outreach.lead ON DELETE CASCADE,
  contact_id  bigint NOT NULL REFERENCES outreach.contact ON DELETE CASCADE,
  from_status text,
  to_status   text NOT NULL,
  reason      text,
  changed_by  text NOT NULL,
  changed_at  timestamptz NOT NULL
);
CREATE INDEX ON outreach.lead_status_change (lead_id, id);
CREATE INDEX ON outreach.lead_status_change (contact_id);
SELECT outreach._dump('outreach.lead_status_change');
COMMENT ON TABLE outreach.lead_status_change IS 'Every status a lead went through, who set it (a role, or scoring) and when';

CREATE TABLE outreach.lead_score_change (
  id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  lead_id    bigint NOT NULL REFERENCES outreach.lead ON DELETE CASCADE,
  contact_id bigint NOT NULL REFERENCES outreach.contact ON DELETE CASCADE,
  old_score  numeric(12,2) NOT NULL,
  new_score  numeric(12,2) NOT NULL,
  reason     text NOT NULL,
  changed_at timestamptz NOT NULL
);
CREATE INDEX ON outreach.lead_score_change (lead_id, id);
CREATE INDEX ON outreach.lead_score_change (contact_id);
SELECT outreach._dump('outreach.lead_score_change');
COMMENT ON TABLE outreach.lead_score_change IS 'History of lead scores: old and new score, why (rules changed, decay, rescore) and when';

CREATE TABLE outreach.lead_conversion (
  id                  bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  lead_id             bigint NOT NULL UNIQUE REFERENCES outreach.lead ON DELETE CASCADE,
  contact_id          bigint NOT NULL REFERENCES outreach.contact ON DELETE CASCADE,
  lead_contact_id     bigint NOT NULL,   -- the lead's own contact row (merged away when matched)
  matched_on          text CONSTRAINT lead_conversion_matched_on_allowed CHECK (outreach.allowed_value(matched_on,
                        'lead_conversion.matched_on', '{email,phone}')),
  score_at_conversion numeric(12,2) NOT NULL,
  moved               jsonb NOT NULL DEFAULT '{}',
  converted_by        text NOT NULL,
  converted_at        timestamptz NOT NULL
);
CREATE INDEX ON outreach.lead_conversion (contact_id);
SELECT outreach._dump('outreach.lead_conversion');
COMMENT ON TABLE outreach.lead_conversion IS
  'Each conversion: the patient contact (created or matched on email/phone), the lead''s score then, and what was carried over';

-- Leads and their activities are registered entities, so segments and score rules can say
-- `has lead where source = 'event'` or `count(lead_activity where kind = 'form_submitted') >= 2`;
-- interactions (opened, clicked) likewise unless another part registered them already.
SELECT outreach.register_entity('outreach.lead', 'contact_id', 'captured_at', 'Lead', 'lead');
SELECT outreach.register_entity('outreach.lead_activity', 'contact_id', 'occurred_at', 'Lead activity', 'lead_activity');
DO $reg$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM outreach.entity e WHERE e.relation = 'outreach.interaction'::regclass) THEN
    PERFORM outreach.register_entity('outreach.interaction', 'contact_id', 'occurred_at', 'Interaction', 'interaction');
  END IF;
END
$reg$;
UPDATE outreach.entity SET builtin = true WHERE name IN ('lead', 'lead_activity', 'interaction');

-- Who did it: the session's role (a person), not the definer of a function.
CREATE FUNCTION outreach._actor() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT session_user::text $$;

CREATE FUNCTION outreach._lead(lead_id bigint, lock boolean DEFAULT true) RETURNS outreach.lead
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  l outreach.lead;
BEGIN
  IF lock THEN
    SELECT * INTO l FROM outreach.lead x WHERE x.id = $1 FOR UPDATE;
  ELSE
    SELECT * INTO l FROM outreach.lead x WHERE x.id = $1;
  END IF;
  IF l.id IS NULL THEN
    RAISE EXCEPTION 'lead % does not exist', coalesce($1::text, 'NULL') USING ERRCODE = 'no_data_found',
      HINT = 'outreach.lead lists the leads.';
  END IF;
  RETURN l;
END $$;

CREATE FUNCTION outreach._lead_status_log(l outreach.lead, to_status text, reason text, actor text, at timestamptz)
RETURNS void LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO outreach.lead_status_change (lead_id, contact_id, from_status, to_status, reason, changed_by, changed_at)
  VALUES (l.id, l.contact_id, CASE WHEN l.status = to_status THEN NULL ELSE l.status END, to_status, reason, actor, at)
$$;

-- Capture ----------------------------------------------------------------------------------

-- The one capture path (form, campaign, event, import): normalise, serialise on the
-- person's email and phone, match an existing contact, else create a lead contact; reuse the
-- contact's open lead, else create one; record the activity.
CREATE FUNCTION outreach._capture(email text, phone text, first_name text, last_name text, source text,
                                  source_detail text, consent_marketing boolean, activity text, activity_detail text,
                                  at timestamptz, OUT lead_id bigint, OUT created boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  em text := outreach.normalize_email(email);
  ph text := outreach.normalize_phone(phone, outreach._lead_country_code());
  c outreach.contact;
  l outreach.lead;
  k bigint;
  actor text := outreach._actor();
BEGIN
  IF source IS NULL OR source NOT IN ('campaign', 'event', 'form', 'import') THEN
    RAISE EXCEPTION 'invalid lead source "%"', coalesce(source, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: campaign, event, form, import.';
  END IF;
  IF em IS NULL AND ph IS NULL THEN
    RAISE EXCEPTION 'a lead needs an email address or a phone number' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Leads are matched and de-duplicated on email and phone, so one of them is required.';
  END IF;
  IF em IS NOT NULL AND em !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:].]+$' THEN
    RAISE EXCEPTION 'invalid email address "%"', email USING ERRCODE = 'invalid_parameter_value',
      HINT = 'An email address looks like name@example.org.';
  END IF;
  IF at IS NULL THEN at := outreach.now(); END IF;

  -- Two captures of one person at once: the second waits, then finds the first's contact.
  FOR k IN SELECT DISTINCT x FROM unnest(ARRAY[hashtextextended('outreach.lead.email:' || em, 0),
                                               hashtextextended('outreach.lead.phone:' || ph, 0)]) x
           WHERE x IS NOT NULL ORDER BY x LOOP
    PERFORM pg_advisory_xact_lock(k);
  END LOOP;

  IF em IS NOT NULL THEN
    SELECT * INTO c FROM outreach.contact x WHERE lower(btrim(x.email)) = em
     ORDER BY (x.contact_type = 'lead'), x.id LIMIT 1 FOR NO KEY UPDATE;
  END IF;
  IF c.id IS NULL AND ph IS NOT NULL THEN
    SELECT * INTO c FROM outreach.contact x WHERE x.phone = ph
     ORDER BY (x.contact_type = 'lead'), x.id LIMIT 1 FOR NO KEY UPDATE;
  END IF;

  IF c.id IS NULL THEN
    INSERT INTO outreach.contact (first_name, last_name, email, phone, contact_type, do_not_email, do_not_sms, do_not_mail)
    VALUES (nullif(btrim(first_name), ''), nullif(btrim(last_name), ''), em, ph, 'lead',
            NOT coalesce(consent_marketing, false), NOT coalesce(consent_marketing, false), NOT coalesce(consent_marketing, false))
    RETURNING * INTO c;
  ELSIF c.contact_type = 'lead' THEN
    -- A lead's own contact row: complete it, and a new "yes" to marketing opts it in.
    -- A "no" (or an unticked box) is not a withdrawal; withdrawals go through unsubscribe.
    UPDATE outreach.contact x
       SET first_name = coalesce(x.first_name, nullif(btrim(_capture.first_name), '')),
           last_name = coalesce(x.last_name, nullif(btrim(_capture.last_name), '')),
           email = coalesce(x.email, em),
           phone = coalesce(x.phone, CASE WHEN NOT EXISTS (SELECT 1 FROM outreach.contact y WHERE y.phone = ph) THEN ph END),
           do_not_email = x.do_not_email AND NOT coalesce(consent_marketing, false),
           do_not_sms = x.do_not_sms AND NOT coalesce(consent_marketing, false),
           do_not_mail = x.do_not_mail AND NOT coalesce(consent_marketing, false)
     WHERE x.id = c.id;
  END IF;
  -- An existing patient's row and consent are left as the patient's records say.

  SELECT * INTO l FROM outreach.lead x WHERE x.contact_id = c.id AND x.status <> 'converted' FOR UPDATE;
  created := l.id IS NULL;
  IF created THEN
    INSERT INTO outreach.lead AS x (contact_id, first_name, last_name, email, phone, source, source_detail,
                                    status, status_changed_at, status_changed_by, captured_at)
    VALUES (c.id, nullif(btrim(first_name), ''), nullif(btrim(last_name), ''), em, ph, source, source_detail,
            'new', at, actor, at)
    RETURNING * INTO l;
    PERFORM outreach._lead_status_log(l, 'new', 'captured from ' || source, actor, at);
  END IF;
  lead_id := l.id;
  INSERT INTO outreach.lead_activity (lead_id, contact_id, kind, detail, occurred_at)
  VALUES (l.id, c.id, activity, activity_detail, at);
END $$;

CREATE FUNCTION outreach.capture_lead(email text, phone text DEFAULT NULL, first_name text DEFAULT NULL,
                                      last_name text DEFAULT NULL, source text DEFAULT 'form',
                                      source_detail text DEFAULT NULL, consent_marketing boolean DEFAULT false,
                                      at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
BEGIN
  IF $5 = 'event' THEN
    RAISE EXCEPTION 'leads from events are captured with outreach.capture_lead_from_registration()'
      USING ERRCODE = 'invalid_parameter_value', HINT = 'It records the registration (and attendance) as the lead''s activity.';
  END IF;
  SELECT * INTO r FROM outreach._capture($1, $2, $3, $4, $5, $6, $7,
    CASE $5 WHEN 'form' THEN 'form_submitted' WHEN 'campaign' THEN 'campaign_response' ELSE 'imported' END, $6, $8);
  RETURN r.lead_id;
END $$;
COMMENT ON FUNCTION outreach.capture_lead(text, text, text, text, text, text, boolean, timestamptz) IS
  'Captures a lead from a form, campaign or import: matched on normalised email/phone (one lead per person), consent recorded as do_not_* flags; returns the lead id';

CREATE FUNCTION outreach.capture_lead_from_registration(event text, email text, phone text DEFAULT NULL,
                                                        first_name text DEFAULT NULL, last_name text DEFAULT NULL,
                                                        consent_marketing boolean DEFAULT false,
                                                        attended boolean DEFAULT false,
                                                        registration_code text DEFAULT NULL,
                                                        at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
  detail text;
BEGIN
  IF coalesce(btrim($1), '') = '' THEN
    RAISE EXCEPTION 'the event of a registration must be named' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  detail := $1 || coalesce(' (' || $8 || ')', '');
  SELECT * INTO r FROM outreach._capture($2, $3, $4, $5, 'event', $1, $6, 'registered', detail, $9);
  IF $7 THEN
    INSERT INTO outreach.lead_activity (lead_id, contact_id, kind, detail, occurred_at)
    SELECT l.id, l.contact_id, 'attended', detail, coalesce($9, outreach.now()) FROM outreach.lead l WHERE l.id = r.lead_id;
  END IF;
  RETURN r.lead_id;
END $$;
COMMENT ON FUNCTION outreach.capture_lead_from_registration(text, text, text, text, text, boolean, boolean, text, timestamptz) IS
  'Captures (or matches) the lead behind an event registration and records registered (and attended) as its activity; returns the lead id';

CREATE FUNCTION outreach.record_lead_activity(lead_id bigint, kind text, detail text DEFAULT NULL,
                                              at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  l outreach.lead := outreach._lead($1, false);
  new_id bigint;
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('form_submitted', 'campaign_response', 'registered', 'attended', 'imported') THEN
    RAISE EXCEPTION 'invalid lead activity "%"', coalesce($2, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: form_submitted, campaign_response, registered, attended, imported.';
  END IF;
  INSERT INTO outreach.lead_activity (lead_id, contact_id, kind, detail, occurred_at)
  VALUES (l.id, l.contact_id, $2, $3, coalesce($4, outreach.now()))
  RETURNING id INTO new_id;
  RETURN new_id;
END $$;
COMMENT ON FUNCTION outreach.record_lead_activity(bigint, text, text, timestamptz) IS
  'Records something a lead did (e.g. attended an event, submitted another form); score rules see it at commit';

-- For other parts (an event registration or check-in of a contact): records the activity on
-- the contact's open lead, if it has one; returns the lead id, or NULL for a contact that is no
-- open lead (a patient registering is no lead activity).
CREATE FUNCTION outreach.record_contact_lead_activity(contact_id bigint, kind text, detail text DEFAULT NULL,
                                                      at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  lid bigint;
BEGIN
  PERFORM outreach._require_contact($1);
  SELECT l.id INTO lid FROM outreach.lead l
   WHERE l.contact_id = $1 AND l.status IN ('new', 'working', 'qualified');
  IF lid IS NOT NULL THEN
    PERFORM outreach.record_lead_activity(lid, $2, $3, $4);
  END IF;
  RETURN lid;
END $$;
COMMENT ON FUNCTION outreach.record_contact_lead_activity(bigint, text, text, timestamptz) IS
  'Records an activity (e.g. registered, attended) on the contact''s open lead; NULL when the contact has none';

-- CSV import: the server reads the file (like import_synthea).  Every line is checked
-- before anything is written; any bad line fails the whole import with every bad line listed.
CREATE FUNCTION outreach.import_leads(path text, source_detail text DEFAULT NULL)
RETURNS TABLE (line bigint, lead_id bigint, created boolean)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  allowed text[] := ARRAY['email', 'phone', 'first_name', 'last_name', 'consent_marketing', 'source_detail'];
  head text;
  cols text[];
  c text;
  msg text;
  ctx text;
  errs text[];
  n_err bigint;
  r record;
  cap record;
  cc text := outreach._lead_country_code();
BEGIN
  IF path IS NULL OR left(path, 1) <> '/' THEN
    RAISE EXCEPTION 'path "%" is not an absolute path', coalesce(path, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'The database server reads the file itself, so a relative path would be read from its data directory.',
      HINT = 'Pass the absolute path of the file on the database server, e.g. ''/data/leads.csv''.';
  END IF;
  IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
     AND NOT pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') THEN
    RAISE EXCEPTION 'permission denied to import leads from a file' USING ERRCODE = 'insufficient_privilege',
      DETAIL = 'The import reads a file on the database server with COPY.',
      HINT = 'Run it as a superuser or as a member of pg_read_server_files, or call outreach.capture_lead() per row.';
  END IF;
  BEGIN
    head := pg_read_file(path, 0, 8192);
  EXCEPTION WHEN insufficient_privilege OR undefined_file OR io_error THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
    RAISE EXCEPTION 'the database server cannot read "%"', path USING ERRCODE = 'undefined_file',
      DETAIL = msg || '.', HINT = 'The server reads the file as the operating system user it runs as (usually postgres).';
  END;
  head := rtrim(regexp_replace(split_part(head, E'\n', 1), E'^\uFEFF', ''), E'\r');
  SELECT array_agg(lower(btrim(btrim(x), '"')) ORDER BY o) INTO cols
    FROM unnest(string_to_array(head, ',')) WITH ORDINALITY u(x, o);
  FOREACH c IN ARRAY coalesce(cols, '{}') LOOP
    IF NOT c = ANY (allowed) THEN
      RAISE EXCEPTION 'line 1: unknown column "%" in "%"', c, path USING ERRCODE = 'bad_copy_file_format',
        DETAIL = format('Allowed columns are: %s.', array_to_string(allowed, ', ')),
        HINT = 'The first line names the columns; email or phone is required.';
    END IF;
  END LOOP;
  IF NOT (cols && ARRAY['email', 'phone']) THEN
    RAISE EXCEPTION 'line 1: "%" has neither an email nor a phone column', path USING ERRCODE = 'bad_copy_file_format',
      HINT = 'Leads are matched on email and phone; name at least one of them in the first line.';
  END IF;

  IF to_regclass('pg_temp.lead_import') IS NOT NULL THEN DROP TABLE pg_temp.lead_import; END IF;
  CREATE TEMP TABLE lead_import (_line bigint GENERATED ALWAYS AS IDENTITY (START 2) PRIMARY KEY,
    email text, phone text, first_name text, last_name text, consent_marketing text, source_detail text) ON COMMIT DROP;
  BEGIN
    EXECUTE format('COPY pg_temp.lead_import (%s) FROM %L WITH (FORMAT csv, HEADER true, ENCODING ''UTF8'')',
                   (SELECT string_agg(format('%I', x), ', ' ORDER BY o) FROM unnest(cols) WITH ORDINALITY u(x, o)), path);
  EXCEPTION WHEN data_exception OR bad_copy_file_format THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, ctx = PG_EXCEPTION_CONTEXT;
    RAISE EXCEPTION 'lead import of "%" failed at %: %', path,
      coalesce(substring(ctx FROM 'line \d+(?:, column \w+)?'), 'an unknown line'), msg
      USING ERRCODE = 'bad_copy_file_format', DETAIL = 'Nothing was imported.',
            HINT = 'Every line has as many fields as the first line; quote fields that contain commas.';
  END;

  SELECT count(*), (array_agg(e ORDER BY x._line))[1:50] INTO n_err, errs FROM (
    SELECT i._line, format('line %s: %s', i._line, p.problem) AS e
      FROM pg_temp.lead_import i
      CROSS JOIN LATERAL (VALUES
        (CASE WHEN outreach.normalize_email(i.email) IS NULL AND coalesce(btrim(i.phone), '') = ''
              THEN 'neither email nor phone' END),
        (CASE WHEN outreach.normalize_email(i.email) !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:].]+$'
              THEN format('invalid email address "%s"', i.email) END),
        (CASE WHEN coalesce(btrim(i.phone), '') <> '' AND outreach._phone_e164(i.phone, cc) IS NULL
              THEN format('invalid phone number "%s"', i.phone) END),
        (CASE WHEN coalesce(lower(btrim(i.consent_marketing)), '') NOT IN
                   ('', 'true', 'false', 'yes', 'no', 'y', 'n', '1', '0', 't', 'f')
              THEN format('consent_marketing "%s" is not yes/no', i.consent_marketing) END)) p(problem)
     WHERE p.problem IS NOT NULL) x;
  IF n_err > 0 THEN
    RAISE EXCEPTION 'lead import of "%" failed: % bad line(s)', path, n_err USING ERRCODE = 'bad_copy_file_format',
      DETAIL = array_to_string(errs, E'\n') || CASE WHEN n_err > 50 THEN E'\n(first 50 shown)' ELSE '' END,
      HINT = 'Nothing was imported; correct the lines listed and import the file again.';
  END IF;

  FOR r IN SELECT * FROM pg_temp.lead_import i ORDER BY i._line LOOP
    SELECT * INTO cap FROM outreach._capture(r.email, r.phone, r.first_name, r.last_name, 'import',
      coalesce(nullif(btrim(r.source_detail), ''), import_leads.source_detail, path),
      lower(btrim(r.consent_marketing)) IN ('true', 'yes', 'y', '1', 't'), 'imported', path, NULL);
    line := r._line; lead_id := cap.lead_id; created := cap.created;
    RETURN NEXT;
  END LOOP;
  DROP TABLE pg_temp.lead_import;
END $$;
COMMENT ON FUNCTION outreach.import_leads(text, text) IS
  'Imports leads from a CSV file on the server (header: email, phone, first_name, last_name, consent_marketing, source_detail); all lines or none, bad lines reported by number';

-- Status lifecycle ---------------------------------------------------------------------------

CREATE FUNCTION outreach.set_lead_status(lead_id bigint, status text, reason text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  l outreach.lead;
  clock timestamptz := outreach.now();
  allowed text[];
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('new', 'working', 'qualified', 'disqualified', 'converted') THEN
    RAISE EXCEPTION 'invalid lead status "%"', coalesce($2, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: new, working, qualified, disqualified, converted.';
  END IF;
  IF $2 = 'converted' THEN
    RAISE EXCEPTION 'a lead is converted with outreach.convert_lead()' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'convert_lead creates or matches the patient contact and carries the history over.';
  END IF;
  l := outreach._lead($1);
  allowed := CASE l.status WHEN 'new' THEN '{working,qualified,disqualified}'
                           WHEN 'working' THEN '{qualified,disqualified}'
                           WHEN 'qualified' THEN '{working,disqualified}'
                           WHEN 'disqualified' THEN '{working}'
                           ELSE '{}' END;
  IF l.status = $2 THEN RETURN; END IF;
  IF NOT $2 = ANY (allowed) THEN
    RAISE EXCEPTION 'lead % cannot go from % to %', l.id, l.status, $2 USING ERRCODE = 'object_not_in_prerequisite_state',
      DETAIL = CASE WHEN cardinality(allowed) = 0 THEN format('A %s lead is final.', l.status)
                    ELSE format('From %s a lead can go to: %s.', l.status, array_to_string(allowed, ', ')) END;
  END IF;
  PERFORM outreach._lead_status_log(l, $2, $3, outreach._actor(), clock);
  UPDATE outreach.lead x SET status = $2, status_changed_at = clock, status_changed_by = outreach._actor(),
         qualified_at = CASE WHEN $2 = 'qualified' THEN clock ELSE x.qualified_at END
   WHERE x.id = l.id;
  IF $2 IN ('new', 'working', 'qualified') THEN           -- reopened: the score is current again
    PERFORM outreach._lead_rescore(ARRAY[l.contact_id], 'reopened');
  END IF;
END $$;
COMMENT ON FUNCTION outreach.set_lead_status(bigint, text, text) IS
  'Moves a lead along new -> working -> qualified | disqualified (disqualified can be reopened to working), recording who, when and why';

-- Scoring ------------------------------------------------------------------------------------

CREATE TABLE outreach.lead_score_rule (
  id         bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  name       text NOT NULL UNIQUE CONSTRAINT lead_score_rule_name_not_blank CHECK (btrim(name) <> ''),
  condition  text NOT NULL,
  points     numeric NOT NULL CONSTRAINT lead_score_rule_points_nonzero CHECK (points <> 0),
  half_life  interval CONSTRAINT lead_score_rule_half_life_positive CHECK (half_life > interval '0'),
  segment_id bigint NOT NULL UNIQUE REFERENCES outreach.segment,
  created_at timestamptz NOT NULL DEFAULT now()
);
SELECT outreach._dump('outreach.lead_score_rule');
COMMENT ON TABLE outreach.lead_score_rule IS
  'Score rules: points for the leads matching a condition of the segment language, optionally halving every half_life; each is a live segment';

CREATE TABLE outreach.lead_score_hit (
  rule_id    bigint NOT NULL REFERENCES outreach.lead_score_rule ON DELETE CASCADE,
  contact_id bigint NOT NULL REFERENCES outreach.contact ON DELETE CASCADE,
  since      timestamptz NOT NULL,
  PRIMARY KEY (rule_id, contact_id)
);
CREATE INDEX ON outreach.lead_score_hit (contact_id);
SELECT outreach._dump('outreach.lead_score_hit');
COMMENT ON TABLE outreach.lead_score_hit IS 'Which rules hold for which lead contact, and since when (the start of decay)';

-- The points of one hit at a time: points * 0.5 ^ (age / half_life).
CREATE FUNCTION outreach._decayed(points numeric, half_life interval, since timestamptz, at timestamptz)
RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN half_life IS NULL THEN points
              ELSE points * pg_catalog.power(0.5::numeric,
                     (GREATEST(pg_catalog.date_part('epoch', at - since), 0)
                      / pg_catalog.date_part('epoch', half_life))::numeric) END
$$;

-- Recomputes the scores of the open leads of these contacts, records changes, and
-- qualifies the new and working leads that reach the threshold.
CREATE FUNCTION outreach._lead_rescore(contact_ids bigint[], reason text) RETURNS integer
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  clock timestamptz := outreach.now();
  threshold numeric := outreach._lead_threshold();
  n integer;
  l outreach.lead;
BEGIN
  WITH s AS (
    SELECT x.id, x.score AS old_score,
           round(coalesce((SELECT sum(outreach._decayed(r.points, r.half_life, h.since, clock))
                             FROM outreach.lead_score_hit h JOIN outreach.lead_score_rule r ON r.id = h.rule_id
                            WHERE h.contact_id = x.contact_id), 0), 2) AS new_score
      FROM outreach.lead x
     WHERE x.contact_id = ANY (contact_ids) AND x.status IN ('new', 'working', 'qualified')
  ), u AS (
    UPDATE outreach.lead x SET score = s.new_score, score_updated_at = clock
      FROM s WHERE x.id = s.id AND x.contact_id = ANY (contact_ids) AND x.score <> s.new_score   -- (index, not a hash of all leads)
    RETURNING x.id, x.contact_id, s.old_score, s.new_score
  )
  INSERT INTO outreach.lead_score_change (lead_id, contact_id, old_score, new_score, reason, changed_at)
  SELECT u.id, u.contact_id, u.old_score, u.new_score, reason, clock FROM u;
  GET DIAGNOSTICS n = ROW_COUNT;

  FOR l IN SELECT * FROM outreach.lead x
            WHERE x.contact_id = ANY (contact_ids) AND x.status IN ('new', 'working') AND x.score >= threshold
            ORDER BY x.id FOR UPDATE LOOP
    PERFORM outreach._lead_status_log(l, 'qualified', format('score %s reached the threshold %s', l.score, threshold),
                                      'scoring', clock);
    UPDATE outreach.lead x SET status = 'qualified', status_changed_at = clock, status_changed_by = 'scoring',
           qualified_at = clock
     WHERE x.id = l.id;
  END LOOP;
  RETURN n;
END $$;

-- Rule segments' joins and leaves become hits; the affected leads are rescored (same transaction).
-- SECURITY DEFINER: derived data, kept whoever's write changed membership (a sender reporting
-- an open, an EHR feed, a marketer).
CREATE FUNCTION outreach._lead_score_segment_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  affected bigint[];
  clock timestamptz := outreach.now();
BEGIN
  IF NOT EXISTS (SELECT 1 FROM outreach.lead_score_rule r) THEN RETURN NULL; END IF;
  IF NOT EXISTS (SELECT 1 FROM new_changes n JOIN outreach.lead_score_rule r ON r.segment_id = n.segment_id) THEN
    RETURN NULL;
  END IF;
  WITH net AS (
    SELECT DISTINCT ON (n.segment_id, n.contact_id) r.id AS rule_id, n.contact_id, n.change
      FROM new_changes n JOIN outreach.lead_score_rule r ON r.segment_id = n.segment_id
     ORDER BY n.segment_id, n.contact_id, n.id DESC
  ), del AS (
    DELETE FROM outreach.lead_score_hit h USING net d
     WHERE d.change = 'removed' AND h.rule_id = d.rule_id AND h.contact_id = d.contact_id
  ), ins AS (
    INSERT INTO outreach.lead_score_hit (rule_id, contact_id, since)
    SELECT d.rule_id, d.contact_id, clock FROM net d
     WHERE d.change = 'added' AND EXISTS (SELECT 1 FROM outreach.contact c WHERE c.id = d.contact_id)
    ON CONFLICT (rule_id, contact_id) DO NOTHING
  )
  SELECT array_agg(DISTINCT d.contact_id) INTO affected FROM net d;
  PERFORM outreach._lead_rescore(affected, 'rules changed');
  RETURN NULL;
END $$;
CREATE TRIGGER lead_score AFTER INSERT ON outreach.segment_change
  REFERENCING NEW TABLE AS new_changes FOR EACH STATEMENT EXECUTE FUNCTION outreach._lead_score_segment_changed();

-- A rule's segment is managed through the rule: renaming it, changing its query or stopping it
-- directly is refused (stopping would race with the rescoring its leaving members cause).
CREATE FUNCTION outreach._lead_rule_segment_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rule text;
BEGIN
  SELECT r.name INTO rule FROM outreach.lead_score_rule r WHERE r.segment_id = OLD.id;
  IF rule IS NOT NULL THEN
    RAISE EXCEPTION 'segment "%" belongs to score rule "%"', OLD.name, rule USING ERRCODE = 'object_not_in_prerequisite_state',
      DETAIL = 'A score rule''s segment is renamed, changed and stopped only through the rule.',
      HINT = 'Drop the rule with outreach.drop_score_rule() and add it again with the new condition.';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER lead_rule_segment_guard BEFORE UPDATE ON outreach.segment FOR EACH ROW
  WHEN (OLD.name IS DISTINCT FROM NEW.name OR (OLD.status = 'live' AND NEW.status <> 'live')
        OR (OLD.definition IS NULL) <> (NEW.definition IS NULL)
        OR NOT (OLD.definition OPERATOR(outreach.=) NEW.definition))
  EXECUTE FUNCTION outreach._lead_rule_segment_guard();

CREATE FUNCTION outreach._score_rule_segment(name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'lead score: ' || $1 $$;

CREATE FUNCTION outreach.add_score_rule(name text, condition text, points numeric, half_life interval DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q outreach.segment_query;
  seg bigint;
  new_id bigint;
BEGIN
  IF coalesce(btrim($1), '') = '' THEN
    RAISE EXCEPTION 'a score rule needs a name' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF EXISTS (SELECT 1 FROM outreach.lead_score_rule r WHERE r.name = $1) THEN
    RAISE EXCEPTION 'score rule "%" already exists', $1 USING ERRCODE = 'duplicate_object',
      HINT = 'Drop it first with outreach.drop_score_rule(), or choose another name.';
  END IF;
  IF coalesce(btrim($2), '') = '' THEN
    RAISE EXCEPTION 'score rule "%" needs a condition', $1 USING ERRCODE = 'null_value_not_allowed',
      HINT = 'A condition is what follows "contact where" in the segment language, e.g. has interaction where kind = ''opened''.';
  END IF;
  IF $3 IS NULL OR $3 = 0 THEN
    RAISE EXCEPTION 'score rule "%" needs non-zero points', $1 USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF $4 IS NOT NULL AND $4 <= interval '0' THEN
    RAISE EXCEPTION 'the half-life of score rule "%" must be positive, not %', $1, $4 USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- A rule on the score itself would feed back into itself.
  IF regexp_replace($2, '''([^'']|'''')*''', '', 'g') ~* '\mscore\M' THEN
    RAISE EXCEPTION 'score rule "%" may not use the lead''s score', $1 USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'A score that depends on itself has no stable value.';
  END IF;
  q := format('contact where has lead where status in (''new'', ''working'', ''qualified'') and (%s)', $2)::outreach.segment_query;
  seg := outreach.create_segment(outreach._score_rule_segment($1), q);
  INSERT INTO outreach.lead_score_rule (name, condition, points, half_life, segment_id)
  VALUES ($1, btrim($2), $3, $4, seg) RETURNING id INTO new_id;
  PERFORM outreach.go_live(outreach._score_rule_segment($1));     -- its joins score the leads it holds for
  RETURN new_id;
END $$;
COMMENT ON FUNCTION outreach.add_score_rule(text, text, numeric, interval) IS
  'Adds a score rule: points for every open lead matching a condition (what follows "contact where"), halving every half_life; scores update at once';

CREATE FUNCTION outreach.drop_score_rule(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r outreach.lead_score_rule;
  affected bigint[];
BEGIN
  SELECT * INTO r FROM outreach.lead_score_rule x WHERE x.name = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'score rule "%" does not exist', coalesce($1, 'NULL') USING ERRCODE = 'undefined_object',
      HINT = 'outreach.lead_score_rule lists the rules.';
  END IF;
  SELECT array_agg(h.contact_id) INTO affected FROM outreach.lead_score_hit h WHERE h.rule_id = r.id;
  DELETE FROM outreach.lead_score_rule x WHERE x.id = r.id;
  PERFORM outreach.drop_segment(outreach._score_rule_segment(r.name));
  PERFORM outreach._lead_rescore(coalesce(affected, '{}'), format('rule "%s" dropped', r.name));
END $$;
COMMENT ON FUNCTION outreach.drop_score_rule(text) IS 'Drops a score rule and its segment; the leads it scored are rescored';

CREATE FUNCTION outreach.set_qualification_threshold(threshold numeric) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF $1 IS NULL OR $1 <= 0 THEN
    RAISE EXCEPTION 'the qualification threshold must be positive, not %', coalesce($1::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  INSERT INTO outreach.lead_settings AS x (id, qualification_threshold) VALUES (true, $1)
  ON CONFLICT (id) DO UPDATE SET qualification_threshold = excluded.qualification_threshold;
  -- leads already at or above it qualify now
  PERFORM outreach._lead_rescore(ARRAY(SELECT l.contact_id FROM outreach.lead l WHERE l.status IN ('new', 'working')),
                                 'threshold changed');
END $$;
COMMENT ON FUNCTION outreach.set_qualification_threshold(numeric) IS
  'Sets the score at which new and working leads become qualified (by scoring); leads already above it qualify at once';

CREATE FUNCTION outreach.rescore_leads() RETURNS integer
LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$
  SELECT outreach._lead_rescore(ARRAY(SELECT l.contact_id FROM outreach.lead l WHERE l.status IN ('new', 'working', 'qualified')),
                                'rescore')
$$;
COMMENT ON FUNCTION outreach.rescore_leads() IS 'Recomputes every open lead''s score now (decay included); returns how many changed';

CREATE FUNCTION outreach.lead_score_breakdown(lead_id bigint)
RETURNS TABLE (rule text, points numeric, half_life interval, since timestamptz, current_points numeric)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  l outreach.lead := outreach._lead($1, false);
BEGIN
  RETURN QUERY
  SELECT r.name, r.points, r.half_life, h.since, round(outreach._decayed(r.points, r.half_life, h.since, outreach.now()), 2)
    FROM outreach.lead_score_hit h JOIN outreach.lead_score_rule r ON r.id = h.rule_id
   WHERE h.contact_id = l.contact_id ORDER BY r.name;
END $$;
COMMENT ON FUNCTION outreach.lead_score_breakdown(bigint) IS 'Why a lead has its score: each rule that holds, since when, and its points now';

-- Decay: the tick inserts its tick_run row with outreach.now set to the tick's time; the
-- leads holding a decaying rule are rescored then.  A trigger, so the tick is not edited.
CREATE FUNCTION outreach._lead_tick() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM outreach._lead_rescore(ARRAY(
    SELECT DISTINCT h.contact_id FROM outreach.lead_score_hit h JOIN outreach.lead_score_rule r ON r.id = h.rule_id
     WHERE r.half_life IS NOT NULL), 'decay');
  RETURN NULL;
END $$;
CREATE TRIGGER lead_decay AFTER INSERT ON outreach.tick_run
  FOR EACH ROW EXECUTE FUNCTION outreach._lead_tick();

-- Conversion ---------------------------------------------------------------------------------

-- Makes the lead a patient.  Matches an existing non-lead contact on normalised email, then
-- phone; with a match the lead's own contact is merged into it (consent: an opt-out on
-- either side wins; subscriptions, messages, interactions, lead activities, journey
-- enrollments and event registrations move) and removed, so the person is one contact.
-- Without one, the lead's contact becomes the patient.  Converting again returns the contact.
CREATE FUNCTION outreach.convert_lead(lead_id bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_variable
DECLARE
  l outreach.lead := outreach._lead(lead_id);
  c outreach.contact;
  target outreach.contact;
  matched text;
  clock timestamptz := outreach.now();
  actor text := outreach._actor();
  moved jsonb := '{}';
  n bigint;
  fk record;
BEGIN
  IF l.status = 'converted' THEN
    RETURN l.converted_contact_id;
  END IF;
  IF l.status = 'disqualified' THEN
    RAISE EXCEPTION 'lead % is disqualified and cannot be converted', l.id USING ERRCODE = 'object_not_in_prerequisite_state',
      HINT = 'Reopen it first with outreach.set_lead_status(id, ''working'').';
  END IF;
  SELECT * INTO c FROM outreach.contact x WHERE x.id = l.contact_id FOR UPDATE;
  FOR n IN SELECT DISTINCT x FROM unnest(ARRAY[hashtextextended('outreach.lead.email:' || outreach.normalize_email(c.email), 0),
                                               hashtextextended('outreach.lead.phone:' || c.phone, 0)]) x
           WHERE x IS NOT NULL ORDER BY x LOOP
    PERFORM pg_advisory_xact_lock(n);
  END LOOP;

  -- Converted first: the moves below change rule hits, and a converted lead's score stays.
  UPDATE outreach.lead x SET status = 'converted', converted_at = clock, converted_by = actor,
         status_changed_at = clock, status_changed_by = actor
   WHERE x.id = l.id;

  IF c.contact_type <> 'lead' THEN
    target := c;                              -- captured from an existing patient's row
  ELSE
    IF outreach.normalize_email(c.email) IS NOT NULL THEN
      SELECT * INTO target FROM outreach.contact x
       WHERE lower(btrim(x.email)) = outreach.normalize_email(c.email) AND x.id <> c.id AND x.contact_type <> 'lead'
       ORDER BY x.id LIMIT 1 FOR UPDATE;
      IF target.id IS NOT NULL THEN matched := 'email'; END IF;
    END IF;
    IF target.id IS NULL AND c.phone IS NOT NULL THEN
      SELECT * INTO target FROM outreach.contact x
       WHERE x.phone = c.phone AND x.id <> c.id AND x.contact_type <> 'lead'
       ORDER BY x.id LIMIT 1 FOR UPDATE;
      IF target.id IS NOT NULL THEN matched := 'phone'; END IF;
    END IF;
  END IF;

  IF target.id IS NULL THEN
    UPDATE outreach.contact x SET contact_type = 'patient' WHERE x.id = c.id RETURNING * INTO target;
  ELSIF target.id <> c.id THEN
    -- Consent: an opt-out on either side wins; missing identity is completed from the lead.
    UPDATE outreach.contact x
       SET do_not_email = x.do_not_email OR c.do_not_email, do_not_sms = x.do_not_sms OR c.do_not_sms,
           do_not_mail = x.do_not_mail OR c.do_not_mail,
           first_name = coalesce(x.first_name, c.first_name), last_name = coalesce(x.last_name, c.last_name),
           email = coalesce(x.email, c.email),
           phone = coalesce(x.phone, CASE WHEN matched = 'email' AND NOT EXISTS
                                              (SELECT 1 FROM outreach.contact y WHERE y.phone = c.phone AND y.id NOT IN (c.id, x.id))
                                          THEN c.phone END)
     WHERE x.id = target.id;
    -- Subscriptions: the lead's where the patient has none; an unsubscribe on the lead's side wins.
    UPDATE outreach.subscription s
       SET status = 'unsubscribed', unsubscribed_at = o.unsubscribed_at,
           unsubscribe_source = coalesce(o.unsubscribe_source, 'lead ' || l.id), confirmation_token = NULL, token_expires_at = NULL
      FROM outreach.subscription o
     WHERE o.contact_id = c.id AND o.status = 'unsubscribed' AND s.contact_id = target.id AND s.list_id = o.list_id
       AND s.status <> 'unsubscribed';
    UPDATE outreach.subscription s SET contact_id = target.id
     WHERE s.contact_id = c.id
       AND NOT EXISTS (SELECT 1 FROM outreach.subscription t WHERE t.contact_id = target.id AND t.list_id = s.list_id);
    GET DIAGNOSTICS n = ROW_COUNT; moved := moved || jsonb_build_object('subscriptions', n);
    UPDATE outreach.message m SET contact_id = target.id WHERE m.contact_id = c.id;
    GET DIAGNOSTICS n = ROW_COUNT; moved := moved || jsonb_build_object('messages', n);
    UPDATE outreach.interaction i SET contact_id = target.id WHERE i.contact_id = c.id;
    GET DIAGNOSTICS n = ROW_COUNT; moved := moved || jsonb_build_object('interactions', n);
    UPDATE outreach.lead_activity a SET contact_id = target.id WHERE a.contact_id = c.id;
    GET DIAGNOSTICS n = ROW_COUNT; moved := moved || jsonb_build_object('lead_activities', n);
    UPDATE outreach.lead_status_change a SET contact_id = target.id WHERE a.contact_id = c.id;
    UPDATE outreach.lead_score_change a SET contact_id = target.id WHERE a.contact_id = c.id;
    UPDATE outreach.enrollment e SET contact_id = target.id
     WHERE e.contact_id = c.id
       AND NOT (e.status = 'active' AND EXISTS (SELECT 1 FROM outreach.enrollment t
                                                 WHERE t.contact_id = target.id AND t.journey_id = e.journey_id AND t.status = 'active'));
    GET DIAGNOSTICS n = ROW_COUNT; moved := moved || jsonb_build_object('enrollments', n);
    -- Event registrations (the events part): one per event and contact, so the patient's own wins.
    IF to_regclass('outreach.event_registration') IS NOT NULL
       AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass('outreach.event_registration')
                     AND a.attname = 'event_id' AND NOT a.attisdropped) THEN
      EXECUTE 'UPDATE outreach.event_registration r SET contact_id = $1 WHERE r.contact_id = $2
                 AND NOT EXISTS (SELECT 1 FROM outreach.event_registration t WHERE t.contact_id = $1 AND t.event_id = r.event_id)'
        USING target.id, c.id;
      GET DIAGNOSTICS n = ROW_COUNT; moved := moved || jsonb_build_object('event_registrations', n);
    END IF;
    -- Any other table that references the contact (parts added later): moved where it can be.
    FOR fk IN SELECT k.conrelid::regclass AS rel, a.attname
                FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
               WHERE k.contype = 'f' AND k.confrelid = 'outreach.contact'::regclass AND cardinality(k.conkey) = 1
                 AND k.conrelid NOT IN ('outreach.lead'::regclass, 'outreach.subscription'::regclass, 'outreach.message'::regclass,
                                        'outreach.interaction'::regclass, 'outreach.lead_activity'::regclass,
                                        'outreach.lead_status_change'::regclass, 'outreach.lead_score_change'::regclass,
                                        'outreach.enrollment'::regclass, 'outreach.lead_score_hit'::regclass,
                                        'outreach.lead_conversion'::regclass, 'outreach.contact'::regclass)
                 AND k.conrelid <> coalesce(to_regclass('outreach.event_registration'), '-'::regclass)
               ORDER BY 1, 2 LOOP
      BEGIN
        EXECUTE format('UPDATE %s SET %I = $1 WHERE %I = $2', fk.rel, fk.attname, fk.attname) USING target.id, c.id;
      EXCEPTION WHEN unique_violation OR exclusion_violation OR check_violation THEN
        NULL;                                  -- left to the table's ON DELETE rule below
      END;
    END LOOP;
    UPDATE outreach.lead x SET contact_id = target.id, status = 'converted', converted_contact_id = target.id,
           converted_at = clock, converted_by = actor, status_changed_at = clock, status_changed_by = actor
     WHERE x.id = l.id;
    -- Other (already converted) leads of the lead contact follow it.
    UPDATE outreach.lead x SET contact_id = target.id WHERE x.contact_id = c.id;
    DELETE FROM outreach.contact x WHERE x.id = c.id;
  END IF;

  l.contact_id := target.id;
  PERFORM outreach._lead_status_log(l, 'converted',
    CASE WHEN matched IS NOT NULL THEN format('matched contact %s on %s', target.id, matched)
         WHEN target.id = c.id AND c.contact_type = 'lead' THEN 'new patient contact'
         ELSE 'already a patient' END, actor, clock);
  UPDATE outreach.lead x SET contact_id = target.id, status = 'converted', converted_contact_id = target.id,
         converted_at = clock, converted_by = actor, status_changed_at = clock, status_changed_by = actor
   WHERE x.id = l.id;
  UPDATE outreach.lead_status_change s SET contact_id = target.id WHERE s.lead_id = l.id;
  INSERT INTO outreach.lead_conversion (lead_id, contact_id, lead_contact_id, matched_on, score_at_conversion, moved,
                                        converted_by, converted_at)
  VALUES (l.id, target.id, c.id, matched, l.score, moved, actor, clock);
  RETURN target.id;
END $$;
COMMENT ON FUNCTION outreach.convert_lead(bigint) IS
  'Converts a lead: matches a patient contact on email/phone (merging the lead''s contact into it: consent, subscriptions, messages, interactions, enrollments, registrations) or makes its contact the patient; returns the contact id';

-- Reports ------------------------------------------------------------------------------------

CREATE VIEW outreach.lead_funnel AS
SELECT l.source, l.status, count(*) AS leads, round(avg(l.score), 2) AS avg_score,
       count(*) FILTER (WHERE l.qualified_at IS NOT NULL) AS ever_qualified,
       min(l.captured_at) AS first_captured, max(l.captured_at) AS last_captured
  FROM outreach.lead l GROUP BY l.source, l.status;
COMMENT ON VIEW outreach.lead_funnel IS 'Leads per source and status: counts, average score, how many qualified (no identifiers)';

CREATE VIEW outreach.lead_conversion_weekly AS
SELECT date_trunc('week', v.converted_at) AS week, count(*) AS conversions,
       count(*) FILTER (WHERE v.matched_on IS NOT NULL) AS matched_existing,
       round(avg(v.score_at_conversion), 2) AS avg_score_at_conversion,
       round(avg(extract(epoch FROM v.converted_at - l.captured_at) / 86400)::numeric, 1) AS avg_days_to_convert
  FROM outreach.lead_conversion v JOIN outreach.lead l ON l.id = v.lead_id
 GROUP BY 1;
COMMENT ON VIEW outreach.lead_conversion_weekly IS 'Conversions per week: how many, how many matched an existing patient, score and days to convert';

-- Social activities -------------------------------------------------------------------------
-- Public posts and public replies on social networks: not data about patients, so these
-- tables have no contact_id.

CREATE FUNCTION outreach.sentiment(body text) RETURNS double precision
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'outreach_sentiment';
COMMENT ON FUNCTION outreach.sentiment(text) IS
  'Sentiment of a text from -1 (negative) to 1 (positive): lexicon and rules (negation, intensifiers, but, emoticons); see docs/social.md';

CREATE TABLE outreach.social_post (
  id           bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  channel      text NOT NULL
               CONSTRAINT social_post_channel_allowed CHECK (outreach.allowed_value(channel, 'social_post.channel',
                 '{facebook,instagram,x,linkedin,youtube,tiktok,mastodon,other}')),
  account      text NOT NULL CONSTRAINT social_post_account_not_blank CHECK (btrim(account) <> ''),
  body         text NOT NULL,
  media_url    text,
  scheduled_at timestamptz,
  status       text NOT NULL DEFAULT 'draft'
               CONSTRAINT social_post_status_allowed CHECK (outreach.allowed_value(status, 'social_post.status',
                 '{draft,scheduled,published,failed}')),
  published_at timestamptz,
  external_id  text,
  detail       text,
  sentiment    double precision GENERATED ALWAYS AS (outreach.sentiment(body)) STORED,
  created_by   text NOT NULL DEFAULT session_user,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT social_post_scheduled_has_time CHECK (status <> 'scheduled' OR scheduled_at IS NOT NULL),
  CONSTRAINT social_post_published_complete CHECK (status <> 'published' OR published_at IS NOT NULL)
);
CREATE UNIQUE INDEX social_post_external ON outreach.social_post (channel, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX social_post_due ON outreach.social_post (scheduled_at) WHERE status = 'scheduled';
CREATE TRIGGER touch_updated_at BEFORE UPDATE ON outreach.social_post
  FOR EACH ROW EXECUTE FUNCTION outreach.touch_updated_at();
SELECT outreach._dump('outreach.social_post');
COMMENT ON TABLE outreach.social_post IS
  'Social posts per channel and account: draft -> scheduled -> published | failed, with the network''s id and the post''s sentiment';

CREATE TABLE outreach.social_engagement (
  id          bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  post_id     bigint NOT NULL REFERENCES outreach.social_post ON DELETE CASCADE,
  kind        text NOT NULL
              CONSTRAINT social_engagement_kind_allowed CHECK (outreach.allowed_value(kind, 'social_engagement.kind',
                '{like,share,comment,reply}')),
  quantity    integer NOT NULL DEFAULT 1 CONSTRAINT social_engagement_quantity_positive CHECK (quantity > 0),
  body        text,
  author      text,
  external_id text,
  sentiment   double precision GENERATED ALWAYS AS (CASE WHEN body IS NULL THEN NULL ELSE outreach.sentiment(body) END) STORED,
  occurred_at timestamptz NOT NULL,
  CONSTRAINT social_engagement_text_has_body CHECK (kind NOT IN ('comment', 'reply') OR body IS NOT NULL),
  CONSTRAINT social_engagement_text_is_one CHECK (kind NOT IN ('comment', 'reply') OR quantity = 1)
);
CREATE UNIQUE INDEX social_engagement_external ON outreach.social_engagement (post_id, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX ON outreach.social_engagement (post_id, kind);
SELECT outreach._dump('outreach.social_engagement');
COMMENT ON TABLE outreach.social_engagement IS
  'Engagement with posts as a connector reports it: likes and shares (counts), comments and replies (text, author, sentiment)';

CREATE FUNCTION outreach._social_post(post_id bigint) RETURNS outreach.social_post
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p outreach.social_post;
BEGIN
  SELECT * INTO p FROM outreach.social_post x WHERE x.id = $1 FOR UPDATE;
  IF p.id IS NULL THEN
    RAISE EXCEPTION 'social post % does not exist', coalesce($1::text, 'NULL') USING ERRCODE = 'no_data_found';
  END IF;
  RETURN p;
END $$;

CREATE FUNCTION outreach.create_social_post(channel text, account text, body text, media_url text DEFAULT NULL,
                                            scheduled_at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  new_id bigint;
BEGIN
  IF coalesce(btrim($3), '') = '' AND $4 IS NULL THEN
    RAISE EXCEPTION 'a social post needs text or media' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  INSERT INTO outreach.social_post (channel, account, body, media_url, scheduled_at, status)
  VALUES ($1, $2, coalesce($3, ''), $4, $5, CASE WHEN $5 IS NULL THEN 'draft' ELSE 'scheduled' END)
  RETURNING id INTO new_id;
  RETURN new_id;
END $$;
COMMENT ON FUNCTION outreach.create_social_post(text, text, text, text, timestamptz) IS
  'Creates a social post: a draft, or scheduled when scheduled_at is given; returns its id';

CREATE FUNCTION outreach.schedule_social_post(post_id bigint, at timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p outreach.social_post := outreach._social_post($1);
BEGIN
  IF $2 IS NULL THEN
    RAISE EXCEPTION 'a scheduled post needs a time' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF p.status NOT IN ('draft', 'scheduled', 'failed') THEN
    RAISE EXCEPTION 'social post % is already published', p.id USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  UPDATE outreach.social_post x SET status = 'scheduled', scheduled_at = $2, detail = NULL WHERE x.id = p.id;
END $$;
COMMENT ON FUNCTION outreach.schedule_social_post(bigint, timestamptz) IS 'Schedules a draft (or failed) post for a time; the connector publishes it then';

CREATE FUNCTION outreach.social_posts_due(at timestamptz DEFAULT NULL)
RETURNS SETOF outreach.social_post LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM outreach.social_post p
   WHERE p.status = 'scheduled' AND p.scheduled_at <= coalesce($1, outreach.now())
   ORDER BY p.scheduled_at, p.id
$$;
COMMENT ON FUNCTION outreach.social_posts_due(timestamptz) IS 'For the connector: scheduled posts whose time has come, oldest first';

CREATE FUNCTION outreach.report_social_post(post_id bigint, status text, external_id text DEFAULT NULL,
                                            published_at timestamptz DEFAULT NULL, detail text DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p outreach.social_post := outreach._social_post($1);
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('published', 'failed') THEN
    RAISE EXCEPTION 'invalid social post result "%"', coalesce($2, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: published, failed.';
  END IF;
  IF p.status = 'published' THEN
    RAISE EXCEPTION 'social post % is already published', p.id USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  IF $2 = 'published' AND coalesce(btrim($3), '') = '' THEN
    RAISE EXCEPTION 'a published post needs the network''s id for it' USING ERRCODE = 'null_value_not_allowed',
      HINT = 'Engagement is matched to posts by that id.';
  END IF;
  UPDATE outreach.social_post x
     SET status = $2, external_id = coalesce($3, x.external_id), detail = $5,
         published_at = CASE WHEN $2 = 'published' THEN coalesce($4, outreach.now()) END
   WHERE x.id = p.id;
END $$;
COMMENT ON FUNCTION outreach.report_social_post(bigint, text, text, timestamptz, text) IS
  'For the connector: a post was published (with the network''s id and time) or failed (with detail)';

-- Engagement, by our post id or by (channel, the network's post id).  With an external id a
-- report is recorded once (a connector may repeat itself).
CREATE FUNCTION outreach.record_social_engagement(post_id bigint, kind text, quantity integer DEFAULT 1,
                                                  body text DEFAULT NULL, author text DEFAULT NULL,
                                                  external_id text DEFAULT NULL, at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  p outreach.social_post;
  new_id bigint;
BEGIN
  SELECT * INTO p FROM outreach.social_post x WHERE x.id = $1;
  IF p.id IS NULL THEN
    RAISE EXCEPTION 'social post % does not exist', coalesce($1::text, 'NULL') USING ERRCODE = 'no_data_found';
  END IF;
  IF p.status <> 'published' THEN
    RAISE EXCEPTION 'social post % is not published, so it has no engagement', p.id
      USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = format('The post is %s.', p.status);
  END IF;
  IF $2 IS NULL OR $2 NOT IN ('like', 'share', 'comment', 'reply') THEN
    RAISE EXCEPTION 'invalid engagement kind "%"', coalesce($2, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: like, share, comment, reply.';
  END IF;
  IF $2 IN ('comment', 'reply') AND coalesce(btrim($4), '') = '' THEN
    RAISE EXCEPTION 'a % needs its text', $2 USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF $3 IS NULL OR $3 < 1 OR ($2 IN ('comment', 'reply') AND $3 <> 1) THEN
    RAISE EXCEPTION 'invalid quantity % for a %', coalesce($3::text, 'NULL'), $2 USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Likes and shares may come as a count of one or more; each comment or reply is reported alone.';
  END IF;
  INSERT INTO outreach.social_engagement AS x (post_id, kind, quantity, body, author, external_id, occurred_at)
  VALUES (p.id, $2, $3, $4, $5, $6, coalesce($7, outreach.now()))
  ON CONFLICT (post_id, external_id) WHERE external_id IS NOT NULL DO NOTHING
  RETURNING id INTO new_id;
  IF new_id IS NULL THEN
    SELECT x.id INTO new_id FROM outreach.social_engagement x WHERE x.post_id = p.id AND x.external_id = $6;
  END IF;
  RETURN new_id;
END $$;

CREATE FUNCTION outreach.record_social_engagement(channel text, post_external_id text, kind text, quantity integer DEFAULT 1,
                                                  body text DEFAULT NULL, author text DEFAULT NULL,
                                                  external_id text DEFAULT NULL, at timestamptz DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  pid bigint;
BEGIN
  SELECT p.id INTO pid FROM outreach.social_post p WHERE p.channel = $1 AND p.external_id = $2;
  IF pid IS NULL THEN
    RAISE EXCEPTION 'no % post has the id "%"', coalesce($1, 'NULL'), coalesce($2, 'NULL') USING ERRCODE = 'no_data_found',
      HINT = 'A post is known by its network id once report_social_post() recorded it as published.';
  END IF;
  RETURN outreach.record_social_engagement(pid, $3, $4, $5, $6, $7, $8);
END $$;
COMMENT ON FUNCTION outreach.record_social_engagement(bigint, text, integer, text, text, text, timestamptz) IS
  'For the connector: likes/shares (a count) or a comment/reply (its text, scored for sentiment) on a published post; once per external id';
COMMENT ON FUNCTION outreach.record_social_engagement(text, text, text, integer, text, text, text, timestamptz) IS
  'The same, finding the post by channel and the network''s post id';

CREATE VIEW outreach.social_overview AS
WITH p AS (
  SELECT x.*, (date_trunc('week', x.published_at AT TIME ZONE 'UTC'))::date AS week
    FROM outreach.social_post x WHERE x.status = 'published'
), e AS (
  SELECT p.channel, p.week,
         coalesce(sum(g.quantity) FILTER (WHERE g.kind = 'like'), 0) AS likes,
         coalesce(sum(g.quantity) FILTER (WHERE g.kind = 'share'), 0) AS shares,
         count(*) FILTER (WHERE g.kind = 'comment') AS comments,
         count(*) FILTER (WHERE g.kind = 'reply') AS replies,
         avg(g.sentiment) FILTER (WHERE g.kind IN ('comment', 'reply')) AS reply_sentiment
    FROM p JOIN outreach.social_engagement g ON g.post_id = p.id
   GROUP BY p.channel, p.week
)
SELECT p.channel, p.week, count(*) AS posts,
       coalesce(max(e.likes), 0) AS likes, coalesce(max(e.shares), 0) AS shares,
       coalesce(max(e.comments), 0) AS comments, coalesce(max(e.replies), 0) AS replies,
       coalesce(max(e.likes) + max(e.shares) + max(e.comments) + max(e.replies), 0) AS engagement,
       round(avg(p.sentiment)::numeric, 3) AS avg_post_sentiment,
       round(max(e.reply_sentiment)::numeric, 3) AS avg_reply_sentiment,
       (SELECT array_agg(t.body ORDER BY t.sentiment, t.id) FROM (
          SELECT g.body, g.sentiment, g.id FROM outreach.social_engagement g JOIN p q ON q.id = g.post_id
           WHERE q.channel = p.channel AND q.week = p.week AND g.kind IN ('comment', 'reply') AND g.sentiment < 0
           ORDER BY g.sentiment, g.id LIMIT 3) t) AS most_negative_replies
  FROM p LEFT JOIN e ON e.channel = p.channel AND e.week = p.week
 GROUP BY p.channel, p.week;
COMMENT ON VIEW outreach.social_overview IS
  'Per channel and week (of publication, UTC): posts, likes, shares, comments, replies, average sentiment of posts and replies, the three most negative replies';

-- Privileges ---------------------------------------------------------------------------------

DO $grants$
DECLARE
  f text;
BEGIN
  -- API for marketers and admins
  FOREACH f IN ARRAY ARRAY[
    'outreach.normalize_email(text)', 'outreach.normalize_phone(text, text)',
    'outreach.capture_lead(text, text, text, text, text, text, boolean, timestamptz)',
    'outreach.capture_lead_from_registration(text, text, text, text, text, boolean, boolean, text, timestamptz)',
    'outreach.record_lead_activity(bigint, text, text, timestamptz)',
    'outreach.record_contact_lead_activity(bigint, text, text, timestamptz)',
    'outreach.import_leads(text, text)',
    'outreach.set_lead_status(bigint, text, text)', 'outreach.convert_lead(bigint)',
    'outreach.add_score_rule(text, text, numeric, interval)', 'outreach.drop_score_rule(text)',
    'outreach.set_qualification_threshold(numeric)', 'outreach.set_default_country_code(text)', 'outreach.rescore_leads()',
    'outreach.lead_score_breakdown(bigint)',
    'outreach.sentiment(text)',
    'outreach.create_social_post(text, text, text, text, timestamptz)',
    'outreach.schedule_social_post(bigint, timestamptz)', 'outreach.social_posts_due(timestamptz)',
    'outreach.report_social_post(bigint, text, text, timestamptz, text)',
    'outreach.record_social_engagement(bigint, text, integer, text, text, text, timestamptz)',
    'outreach.record_social_engagement(text, text, text, integer, text, text, text, timestamptz)'] LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO outreach_admin, outreach_marketer', f);
  END LOOP;
  -- Internal helpers: no PUBLIC.  The ones the API functions (SECURITY INVOKER) call are
  -- executable by the roles that call the API; the trigger functions need no grant.
  FOREACH f IN ARRAY ARRAY[
    'outreach._phone_e164(text, text)', 'outreach._actor()', 'outreach._lead_threshold()', 'outreach._lead_country_code()',
    'outreach._lead(bigint, boolean)',
    'outreach._lead_status_log(outreach.lead, text, text, text, timestamptz)',
    'outreach._capture(text, text, text, text, text, text, boolean, text, text, timestamptz)',
    'outreach._decayed(numeric, interval, timestamptz, timestamptz)', 'outreach._lead_rescore(bigint[], text)',
    'outreach._score_rule_segment(text)', 'outreach._social_post(bigint)'] LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO outreach_admin, outreach_marketer', f);
  END LOOP;
  FOREACH f IN ARRAY ARRAY['outreach._lead_score_segment_changed()', 'outreach._lead_tick()', 'outreach._lead_rule_segment_guard()'] LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
END
$grants$;

GRANT SELECT, INSERT, UPDATE, DELETE ON outreach.lead, outreach.lead_activity, outreach.social_post,
  outreach.social_engagement TO outreach_admin, outreach_marketer;
-- History is appended by the API functions (run as the caller), moved on conversion, never edited.
GRANT SELECT, INSERT ON outreach.lead_status_change, outreach.lead_score_change, outreach.lead_conversion
  TO outreach_admin, outreach_marketer;
GRANT UPDATE (contact_id) ON outreach.lead_status_change, outreach.lead_score_change TO outreach_admin, outreach_marketer;
GRANT SELECT, INSERT, UPDATE, DELETE ON outreach.lead_score_rule, outreach.lead_settings TO outreach_admin, outreach_marketer;
GRANT SELECT ON outreach.lead_score_hit TO outreach_admin, outreach_marketer;
GRANT SELECT ON outreach.lead_funnel, outreach.lead_conversion_weekly TO outreach_admin, outreach_marketer;
-- Analysts read leads through report_lead_funnel / report_lead_conversions (98_access.sql:
-- the reader's organizations, small counts suppressed); social posts are public data.
GRANT SELECT ON outreach.social_overview TO outreach_admin, outreach_marketer, outreach_analyst;
