-- access: what each role of DESIGN §8 (and a role with none) can and cannot do, on every
-- table, view and function of the schema; organization scoping through members, previews,
-- messages and reports; segmentation rights; the privilege-escalation and leak attempts of
-- issue 20; the audit trail; the test clock; template and render hardening.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(122);

-- ------------------------------------------------------------------ fixtures
CREATE ROLE t_admin;    GRANT outreach_admin TO t_admin;
CREATE ROLE t_mk_a;     GRANT outreach_marketer TO t_mk_a;
CREATE ROLE t_mk_b;     GRANT outreach_marketer TO t_mk_b;
CREATE ROLE t_analyst;  GRANT outreach_analyst TO t_analyst;
CREATE ROLE t_sender;   GRANT outreach_sender TO t_sender;
CREATE ROLE t_nobody;
CREATE ROLE t_owner;    -- owns a table registered for segmentation

INSERT INTO outreach.account (name) VALUES ('Clinic A'), ('Clinic B'), ('Clinic C');
-- 30 patients of A (one also belongs to C), 20 of B; everyone has the condition
INSERT INTO outreach.contact (external_id, first_name, last_name, email, time_zone, account_id)
SELECT 'p' || g, 'First' || g, 'Last' || g, 'p' || g || '@example.org', 'UTC',
       (SELECT id FROM outreach.account WHERE name = CASE WHEN g <= 30 THEN 'Clinic A' ELSE 'Clinic B' END)
FROM generate_series(1, 50) g;
INSERT INTO outreach.contact_organization (contact_id, account_id)
SELECT c.id, (SELECT id FROM outreach.account WHERE name = 'Clinic C') FROM outreach.contact c WHERE c.external_id = 'p1';
INSERT INTO outreach.condition (patient_id, code, description)
SELECT id, '65', 'Hypermetropia' FROM outreach.contact;
CREATE TEMP TABLE ids AS SELECT external_id, id FROM outreach.contact;
GRANT SELECT ON ids TO PUBLIC;

SELECT outreach.grant_organization('t_mk_a', 'Clinic A');
SELECT outreach.grant_organization('t_mk_b', 'Clinic B');
SELECT outreach.grant_organization('t_analyst', 'Clinic A');
SELECT outreach.grant_organization('t_sender', '*');

SELECT outreach.create_template('news', 'email',
  'Hi {{contact.first_name}} <a href="{{unsubscribe_url}}">unsubscribe</a> {{sender.postal_address}}',
  subject => 'News for {{contact.first_name}}', sender_postal_address => '1 Main St, Springfield');
SELECT outreach.create_subscription_list('letters');

-- Tries a statement as a role; 'ok' or the SQLSTATE it failed with.
CREATE FUNCTION pg_temp.try_as(r name, stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('SET LOCAL ROLE %I', r);
  BEGIN
    EXECUTE stmt;
  EXCEPTION WHEN OTHERS THEN
    RESET ROLE;
    RETURN SQLSTATE;
  END;
  RESET ROLE;
  RETURN 'ok';
END $$;

-- The tables, views and API functions of this suite's matrix (0.2.0 and the access part):
-- the other parts of 0.3 grant their own objects and test them.  The invariants below that
-- hold for every object (nothing for PUBLIC or a role with none, no clinical table for the
-- marketer, RLS on every patient table, pinned search_path) are checked on the whole schema.
CREATE FUNCTION pg_temp.known_relations() RETURNS text[] LANGUAGE sql AS $$
  SELECT string_to_array(
  'access_settings,account,allergy,audit_log,condition,contact,'
  || 'contact_organization,contact_stamp,encounter,enrollment,enrollment_step,entity,'
  || 'entity_field,entity_link,entity_overview,frequency_cap,immunization,interaction,journey,'
  || 'journey_funnel,journey_message_stats,journey_scope,journey_step,journey_step_funnel,'
  || 'journey_tick_run,medication,message,message_outcome,message_status,messaging_settings,observation,'
  || 'organization_grant,procedure,quiet_hours,report_journey_funnel,report_message_status,'
  || 'report_segment_sizes,segment,segment_change,segment_change_consumer,segment_dependency,'
  || 'segment_entity,segment_failure,segment_member,segment_members,segment_overview,segment_pending,'
  || 'segment_template,segmentation_grant,subscription,subscription_list,synthea_source_row,'
  || 'template,template_engagement,tick_run,value_set,value_set_summary', ',')
$$;
CREATE FUNCTION pg_temp.known_functions() RETURNS text[] LANGUAGE sql AS $$
  SELECT string_to_array(
  'add_entity_link,add_members,add_step,allowed_value,alter_segment,alter_template,'
  || 'claim_messages,compile,confirm_subscription,consume_segment_changes,create_journey,'
  || 'create_segment,create_segment_from_template,create_static_segment,create_subscription_list,'
  || 'create_template,drop_journey,drop_segment,drop_template,enqueue_message,evaluate,'
  || 'field_allowed_values,generate_population,go_live,grant_organization,grant_segmentation,'
  || 'import_synthea,launch_journey,next_local_window,now,preview,preview_template,'
  || 'purge_audit_log,query_dependencies,quiet_hours_end,register_entity,remove_members,'
  || 'remove_population,rename_segment,report_delivery,report_interaction,retry_enrollment,'
  || 'revoke_organization,revoke_segmentation,schedule_tick,segment_members_at,set_entry_step,'
  || 'set_segment_mode,set_segment_schedule,sms_segments,stop,stop_journey,subscribe,'
  || 'template_query,template_tokens,tick,tick_journeys,touch_updated_at,unregister_entity,'
  || 'unschedule_tick,unsubscribe,unsubscribe_by_token,valid_phone,valid_time_zone,validate,'
  || 'validate_journey', ',')
$$;

-- Every relation of the matrix a role can read, tried for real.
CREATE FUNCTION pg_temp.readable(r name) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') FROM pg_class c
  WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'v', 'p')
    AND c.relname = ANY (pg_temp.known_relations())
    AND pg_temp.try_as(r, format('SELECT * FROM %s LIMIT 1', c.oid::regclass)) = 'ok'
$$;

-- ------------------------------------------------------------------ the matrix, per role
SELECT is((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'v', 'p')
            AND pg_temp.try_as('t_nobody', format('SELECT * FROM %s LIMIT 1', c.oid::regclass)) = 'ok')::int, 0,
          'a role with no outreach role reads no table or view');
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'outreach'::regnamespace
            AND has_function_privilege('t_nobody', p.oid, 'EXECUTE'))::int, 0,
          'a role with no outreach role may execute no function');
SELECT ok(NOT has_schema_privilege('t_nobody', 'outreach', 'USAGE'), 'a role with no outreach role has no usage on the schema');
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'outreach'::regnamespace
            AND EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                        WHERE a.grantee = 0))::int, 0, 'PUBLIC may execute no function of the schema');
SELECT is((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace
            AND EXISTS (SELECT 1 FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a WHERE a.grantee = 0))::int, 0,
          'PUBLIC has no privilege on any table, view or sequence of the schema');

SELECT is(pg_temp.readable('t_analyst'),
  '{organization_grant,report_journey_funnel,report_message_status,report_segment_sizes}',
  'the analyst reads the reporting views (and its own organization grants), nothing else');
SELECT is(pg_temp.readable('t_sender'), '{organization_grant}', 'the sender reads no table or view');
SELECT is(pg_temp.readable('t_mk_a'),
  '{account,contact_organization,enrollment,enrollment_step,entity,entity_field,entity_link,'
  'entity_overview,frequency_cap,interaction,journey,journey_funnel,journey_message_stats,journey_scope,journey_step,journey_step_funnel,'
  'message,message_outcome,message_status,messaging_settings,organization_grant,quiet_hours,report_journey_funnel,report_message_status,'
  'report_segment_sizes,segment,segment_change,segment_dependency,segment_entity,segment_failure,segment_member,segment_members,'
  'segment_overview,segment_pending,segment_template,segmentation_grant,subscription,subscription_list,template,'
  'template_engagement,value_set,value_set_summary}',
  'the marketer reads segments, journeys, templates, lists and their views; contact only by column, no clinical table');
SELECT is(pg_temp.try_as('t_mk_a', 'SELECT id, first_name, email, phone, birthdate FROM outreach.contact'), 'ok',
          'the marketer reads contacts'' identity and channels');
SELECT is(pg_temp.try_as('t_mk_a', 'SELECT deceased_at FROM outreach.contact'), '42501',
          'the marketer does not read contact.deceased_at');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind = 'r'
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'patient_id')
              AND NOT has_table_privilege('t_mk_a', c.oid, 'SELECT')),
          (SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind = 'r'
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'patient_id')),
          'the marketer may read no clinical table');
SELECT is((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'v')
            AND c.relname <> 'contact' AND c.relname = ANY (pg_temp.known_relations())
            AND (has_table_privilege('t_mk_a', c.oid, 'INSERT') OR has_table_privilege('t_mk_a', c.oid, 'UPDATE')
                 OR has_table_privilege('t_mk_a', c.oid, 'DELETE') OR has_table_privilege('t_mk_a', c.oid, 'TRUNCATE')))::int, 0,
          'the marketer writes no table directly (only through the API), but contact''s channels and consent');
SELECT is(pg_temp.try_as('t_mk_a', format('UPDATE outreach.contact SET do_not_sms = true WHERE id = %s', (SELECT id FROM ids WHERE external_id = 'p1'))),
          'ok', 'the marketer updates a contact''s consent flags');
SELECT is(pg_temp.try_as('t_mk_a', 'UPDATE outreach.contact SET first_name = ''x'''), '42501', 'the marketer does not rename contacts');

SELECT is((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind IN ('r', 'v')
            AND NOT has_table_privilege('t_admin', c.oid, 'SELECT'))::int, 0, 'the admin reads every table and view');
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'outreach'::regnamespace AND p.proname !~ '^_'
            AND p.prorettype <> 'trigger'::regtype AND NOT has_function_privilege('t_admin', p.oid, 'EXECUTE'))::int, 0,
          'the admin may execute every API function');
SELECT is(pg_temp.try_as('t_admin', 'UPDATE outreach.audit_log SET actor = ''x'''), '42501', 'even the admin does not update the audit log');

-- the admin is not a superuser, and runs the extension
SET LOCAL ROLE t_admin;
SELECT lives_ok($$ SELECT outreach.create_segment('admin_seg', 'contact where has condition where code = ''65'''); SELECT outreach.go_live('admin_seg') $$,
  'a non-superuser admin creates and takes segments live');
SELECT lives_ok($$ SELECT outreach.tick(); SELECT outreach.tick_journeys() $$, 'and runs the ticks');
SELECT is((SELECT count(*) FROM outreach.segment_members WHERE segment = 'admin_seg')::int, 50, 'and sees every organization');
SELECT lives_ok($$ SELECT outreach.drop_segment('admin_seg') $$, 'and drops segments');
RESET ROLE;

-- API functions: who may call which
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM (SELECT DISTINCT p.proname FROM pg_proc p
            WHERE p.pronamespace = 'outreach'::regnamespace AND has_function_privilege('t_sender', p.oid, 'EXECUTE')
              AND p.proname = ANY (pg_temp.known_functions())) p),
          '{allowed_value,claim_messages,confirm_subscription,field_allowed_values,now,report_delivery,report_interaction,'
          'unsubscribe_by_token,valid_phone,valid_time_zone}', 'the sender may claim, report and follow patients'' links, nothing else');
SELECT is((SELECT array_agg(p.proname::text ORDER BY p.proname) FROM (SELECT DISTINCT p.proname FROM pg_proc p
            WHERE p.pronamespace = 'outreach'::regnamespace AND has_function_privilege('t_analyst', p.oid, 'EXECUTE')
              AND p.proname = ANY (pg_temp.known_functions())) p),
          '{allowed_value,field_allowed_values,grant_segmentation,now,revoke_segmentation,valid_phone,valid_time_zone}',
          'the analyst calls no API function (granting segmentation on a table it owns aside)');
SELECT ok(NOT has_function_privilege('t_mk_a', 'outreach.tick(timestamptz)', 'EXECUTE')
          AND NOT has_function_privilege('t_mk_a', 'outreach.register_entity(text,name,name,text,text,text)', 'EXECUTE')
          AND NOT has_function_privilege('t_mk_a', 'outreach.claim_messages(text,integer,interval,integer)', 'EXECUTE')
          AND NOT has_function_privilege('t_mk_a', 'outreach.grant_organization(name,text)', 'EXECUTE')
          AND NOT has_function_privilege('t_mk_a', 'outreach.import_synthea(text,boolean)', 'EXECUTE'),
          'the marketer may not tick, register entities, claim messages, grant organizations or import');
SELECT ok(has_function_privilege('t_mk_a', 'outreach.create_segment(text,outreach.segment_query,text)', 'EXECUTE')
          AND has_function_privilege('t_mk_a', 'outreach.create_journey(text,text,text,text,timestamptz,timestamptz,text,boolean,boolean,text)', 'EXECUTE')
          AND has_function_privilege('t_mk_a', 'outreach.create_template(text,text,text,text,text,text,text)', 'EXECUTE')
          AND has_function_privilege('t_mk_a', 'outreach.subscribe(text,bigint,text)', 'EXECUTE'),
          'the marketer may manage segments, journeys, templates and lists');
-- An internal function a non-admin role may execute either is one the policies evaluate, or
-- runs with its caller's rights (helpers of SECURITY INVOKER API functions, e.g. the leads
-- part's): executing it grants nothing the caller did not have.
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY 1) FROM pg_proc p
           WHERE p.pronamespace = 'outreach'::regnamespace AND p.proname ~ '^_'
            AND p.proname NOT IN ('_scope', '_scope_compute', '_cell', '_audit_read', '_health') AND p.prosecdef
            AND (has_function_privilege('t_mk_a', p.oid, 'EXECUTE') OR has_function_privilege('t_analyst', p.oid, 'EXECUTE')
                 OR has_function_privilege('t_sender', p.oid, 'EXECUTE'))), NULL,
          'internal functions are the owner''s, but the few the policies evaluate and caller-rights helpers');
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'outreach'::regnamespace AND p.prosecdef
            AND NOT coalesce(p.proconfig @> '{"search_path=pg_catalog, pg_temp"}', false))::int, 0,
          'every SECURITY DEFINER function pins search_path to pg_catalog, pg_temp');
SELECT ok((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'outreach'::regnamespace AND p.prosecdef) > 40,
          'the API functions that act on what their caller cannot touch run as the owner');

-- Views respect the reader
SELECT is((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind = 'v'
            AND c.relname !~ '^report_' AND NOT coalesce(c.reloptions @> '{security_invoker=true}', false))::int, 0,
          'every view but the reporting ones runs with its reader''s rights');
CREATE ROLE t_viewer; GRANT USAGE ON SCHEMA outreach TO t_viewer; GRANT SELECT ON outreach.segment_members TO t_viewer;
SELECT is(pg_temp.try_as('t_viewer', 'SELECT * FROM outreach.segment_members'), '42501',
          'SELECT on segment_members alone shows nothing: the tables behind it are checked');

-- Row-level security on every table with patient data
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'outreach'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
              AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname IN ('contact_id', 'patient_id') AND NOT a.attisdropped)),
          NULL, 'every table with a contact_id or patient_id column has row-level security');

-- ------------------------------------------------------------------ targeting is not browsing
SET LOCAL ROLE t_mk_a;
SELECT throws_ok($$ SELECT count(*) FROM outreach.condition $$, '42501', NULL, 'the marketer cannot SELECT a clinical row');
SELECT lives_ok($$ SELECT outreach.create_segment('hyperopes', 'contact where has condition where description contains ''Hypermetropia''') $$,
  'yet builds the seeds'' exercise segment on conditions');
SELECT lives_ok($$ SELECT outreach.go_live('hyperopes') $$, 'and takes it live');
RESET ROLE;
SELECT is((SELECT count(*) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id WHERE s.name = 'hyperopes')::int, 50,
          'the segment''s membership covers every organization (maintenance sees everything)');

-- two organizations, each marketer sees its own patients only
SET LOCAL ROLE t_mk_a;
SELECT is((SELECT count(*) FROM outreach.segment_members WHERE segment = 'hyperopes')::int, 30, 'marketer A sees A''s 30 members');
SELECT is((SELECT member_count FROM outreach.preview('contact where has condition where code = ''65''')), 30::bigint, 'A''s preview counts A''s patients');
SELECT ok((SELECT bool_and(e IN (SELECT id FROM ids WHERE external_id::text IN (SELECT 'p' || g FROM generate_series(1, 30) g)))
           FROM unnest((SELECT sample FROM outreach.preview('contact where has condition where code = ''65''', 100))) e),
          'A''s preview sample holds A''s patients only');
SELECT is((SELECT count(*) FROM outreach.evaluate('contact where has condition where code = ''65'''))::int, 30, 'A''s evaluate returns A''s patients');
SELECT is((SELECT count(*) FROM outreach.contact)::int, 30, 'A reads 30 contacts');
SELECT is((SELECT array_agg(name::text) FROM outreach.account), '{"Clinic A"}', 'and the accounts of its organizations and contacts only');
SELECT is((SELECT members FROM outreach.segment_overview WHERE name = 'hyperopes'), 30::bigint, 'segment_overview counts A''s members for A');
RESET ROLE;
SET LOCAL ROLE t_mk_b;
SELECT is((SELECT count(*) FROM outreach.segment_members WHERE segment = 'hyperopes')::int, 20, 'marketer B sees B''s 20 members');
SELECT is((SELECT member_count FROM outreach.preview('contact where has condition where code = ''65''')), 20::bigint, 'B''s preview counts B''s patients');
SELECT is((SELECT count(*) FROM outreach.segment_members_at('hyperopes', clock_timestamp()))::int, 20, 'B''s segment_members_at lists B''s members');
SELECT is((SELECT count(*) FROM outreach.evaluate('contact where has condition where code = ''65''',
           (SELECT array_agg(id) FROM ids)))::int, 20, 'evaluate over given ids drops the other organization''s');
RESET ROLE;
-- a contact in two organizations is seen by both
SELECT outreach.grant_organization('t_mk_b', 'Clinic C');
SET LOCAL ROLE t_mk_b;
SELECT is((SELECT count(*) FROM outreach.contact)::int, 21, 'a contact of A that also belongs to C is seen by a role granted C');
RESET ROLE;
SELECT outreach.revoke_organization('t_mk_b', 'Clinic C');
SET LOCAL ROLE t_mk_b;
SELECT is((SELECT count(*) FROM outreach.contact)::int, 20, 'a revoked organization is no longer seen, in the same transaction');
RESET ROLE;
SAVEPOINT before_grant;
SELECT outreach.grant_organization('t_mk_b', 'Clinic A');
SET LOCAL ROLE t_mk_b;
SELECT count(*) FROM outreach.contact;
RESET ROLE;
ROLLBACK TO SAVEPOINT before_grant;
SET LOCAL ROLE t_mk_b;
SELECT is((SELECT count(*) FROM outreach.contact)::int, 20, 'a grant rolled back to a savepoint is not seen');
RESET ROLE;

-- messages and interactions
SELECT outreach.subscribe('letters', id) FROM ids;
SELECT outreach.enqueue_message(id, 'news') FROM ids;
SET LOCAL ROLE t_mk_a;
SELECT is((SELECT count(*) FROM outreach.message)::int, 30, 'marketer A sees the messages of A''s patients only');
SELECT is((SELECT count(*) FROM outreach.subscription)::int, 30, 'and their subscriptions only');
SELECT is((SELECT sum(messages) FROM outreach.message_status)::int, 30, 'message_status counts A''s messages for A');
RESET ROLE;
SET LOCAL ROLE t_mk_b;
SELECT is((SELECT count(*) FROM outreach.message)::int, 20, 'marketer B sees the messages of B''s patients only');
RESET ROLE;
SELECT is((SELECT count(*) FROM outreach.message)::int, 50, 'the superuser sees every message');

-- analytics: counts of the analyst's organizations, no identifiers, small cells suppressed
SET LOCAL ROLE t_analyst;
SELECT is((SELECT members FROM outreach.report_segment_sizes WHERE segment = 'hyperopes'), 30::bigint, 'the analyst counts A''s members');
SELECT is((SELECT sum(messages) FROM outreach.report_message_status)::int, 30, 'the analyst counts A''s messages');
SELECT throws_ok($$ SELECT * FROM outreach.segment_members $$, '42501', NULL, 'the analyst cannot list members');
SELECT throws_ok($$ SELECT * FROM outreach.contact $$, '42501', NULL, 'the analyst cannot read contacts');
RESET ROLE;
SELECT is((SELECT count(*) FROM information_schema.columns WHERE table_schema = 'outreach' AND table_name LIKE 'report\_%'
            AND column_name ~ '(name|email|phone|birth|address|contact_id|external_id)$' AND column_name NOT IN ('segment', 'journey'))::int,
          0, 'the reporting views have no identifier column');
SET LOCAL ROLE t_mk_a;
SELECT outreach.create_static_segment('few');
SELECT outreach.add_members('few', (SELECT array_agg(id) FROM ids WHERE external_id IN ('p1', 'p2', 'p3')));
RESET ROLE;
SET LOCAL ROLE t_analyst;
SELECT is((SELECT members FROM outreach.report_segment_sizes WHERE segment = 'few'), NULL::bigint, 'a count of 3 is suppressed');
RESET ROLE;
INSERT INTO outreach.access_settings (min_cell_size) VALUES (3) ON CONFLICT (singleton) DO UPDATE SET min_cell_size = EXCLUDED.min_cell_size;
SET LOCAL ROLE t_analyst;
SELECT is((SELECT members FROM outreach.report_segment_sizes WHERE segment = 'few'), 3::bigint, 'the threshold is configurable');
RESET ROLE;
SELECT is(pg_temp.try_as('t_analyst', 'UPDATE outreach.access_settings SET min_cell_size = 1'), '42501', 'but not by the analyst');
SELECT is(pg_temp.try_as('t_mk_a', 'DELETE FROM outreach.access_settings'), '42501', 'nor by the marketer');
UPDATE outreach.access_settings SET min_cell_size = 11;

-- no leak of another organization's patient through the API or its errors
SET LOCAL ROLE t_mk_a;
SELECT throws_ok(format('SELECT outreach.add_members(''few'', ARRAY[%s])', (SELECT id FROM ids WHERE external_id = 'p40')), '23503',
  format('contact %s does not exist', (SELECT id FROM ids WHERE external_id = 'p40')),
  'a contact of another organization cannot be added: it "does not exist", like an unknown id');
SELECT throws_ok(format('SELECT * FROM outreach.preview_template(''news'', %s)', (SELECT id FROM ids WHERE external_id = 'p40')), '23503',
  format('contact %s does not exist', (SELECT id FROM ids WHERE external_id = 'p40')),
  'nor previewed with a template (no name of B''s patient in the error)');
SELECT throws_ok(format('SELECT outreach.unsubscribe(''letters'', %s)', (SELECT id FROM ids WHERE external_id = 'p40')), '23503', NULL,
  'nor unsubscribed');
SELECT is((SELECT subject FROM outreach.preview_template('news', (SELECT id FROM ids WHERE external_id = 'p1'))), 'News for First1',
  'A''s own patient previews');
RESET ROLE;

-- another organization's enrollment cannot be retried, and the error says nothing about it
SELECT outreach.create_journey('scoped_journey', 'hyperopes');
INSERT INTO outreach.enrollment (journey_id, contact_id, status, step_entered_at, entered_at)
SELECT j.id, (SELECT id FROM ids WHERE external_id = 'p40'), 'failed', now(), now() FROM outreach.journey j WHERE j.name = 'scoped_journey';
SELECT max(id) AS b_enrollment FROM outreach.enrollment \gset
SET LOCAL ROLE t_mk_a;
SELECT is((SELECT count(*) FROM outreach.enrollment WHERE id = :b_enrollment)::int, 0, 'marketer A does not see B''s enrollment');
SELECT throws_ok('SELECT outreach.retry_enrollment(' || :b_enrollment || ')', '55000',
  'enrollment ' || :b_enrollment || ' is not failed',
  'marketer A cannot retry B''s failed enrollment; it reads like one that is not failed');
RESET ROLE;
SET LOCAL ROLE t_mk_b;
SELECT lives_ok('SELECT outreach.retry_enrollment(' || :b_enrollment || ')', 'marketer B retries it');
RESET ROLE;

-- a journey messages its creator's organizations only
SET LOCAL ROLE t_mk_a;
SELECT outreach.create_journey('a_only', 'hyperopes');
SELECT outreach.add_step('a_only', 'wait', 'wait', duration => '1 day');
SELECT outreach.launch_journey('a_only');
RESET ROLE;
SELECT outreach.tick_journeys();
SELECT is((SELECT count(*) FROM outreach.enrollment e JOIN outreach.journey j ON j.id = e.journey_id WHERE j.name = 'a_only')::int, 30,
  'a journey created by marketer A enrolls A''s 30 patients of the 50 members');

-- segmentation rights per entity and field
SELECT outreach.revoke_segmentation('condition', 'outreach_marketer');
SET LOCAL ROLE t_mk_a;
SELECT throws_ok($$ SELECT outreach.create_segment('s2', 'contact where has condition where code = ''1''') $$, '42501',
  'permission denied to segment on entity "condition"', 'a segment over a revoked entity is refused, naming it');
SELECT throws_ok($$ SELECT * FROM outreach.preview('contact where has condition where code = ''1''') $$, '42501',
  'permission denied to segment on entity "condition"', 'so is its preview');
SELECT throws_ok($$ SELECT outreach.compile('contact where has condition where code = ''1''') $$, '42501',
  'permission denied to segment on entity "condition"', 'and compiling it');
SELECT throws_ok($$ SELECT outreach.go_live('hyperopes') $$, '42501',
  'permission denied to segment on entity "condition"', 'and taking a stored segment over it live');
SELECT throws_ok($$ SELECT outreach.create_segment('s3', 'contact where has encounter where has condition where code = ''1''') $$, '42501',
  'permission denied to segment on entity "condition"', 'also when nested under another entity');
RESET ROLE;
SELECT outreach.grant_segmentation('condition', 'outreach_marketer', ARRAY['code']);
SET LOCAL ROLE t_mk_a;
SELECT lives_ok($$ SELECT outreach.create_segment('by_code', 'contact where has condition where code = ''65''') $$,
  'a field-level grant allows that field');
SELECT throws_ok($$ SELECT outreach.create_segment('by_desc', 'contact where has condition where description contains ''x''') $$, '42501',
  'permission denied to segment on field "condition.description"', 'and refuses another field, naming it');
RESET ROLE;
SELECT outreach.revoke_segmentation('condition', 'outreach_marketer');
SELECT outreach.grant_segmentation('condition', 'outreach_marketer');

-- a table registered for segmentation: its owner decides
CREATE TABLE public.t_owned (id bigint PRIMARY KEY, contact_id bigint REFERENCES outreach.contact (id), secret text);
ALTER TABLE public.t_owned OWNER TO t_owner;
INSERT INTO public.t_owned SELECT id, id, 'x' FROM ids;
SELECT outreach.register_entity('public.t_owned', 'contact_id', name => 't_owned');
SET LOCAL ROLE t_mk_a;
SELECT throws_ok($$ SELECT * FROM outreach.preview('contact where has t_owned where secret = ''x''') $$, '42501',
  'permission denied to segment on entity "t_owned"', 'a registered table owned by another role cannot be segmented on');
SELECT throws_ok($$ SELECT outreach.grant_segmentation('t_owned', 't_mk_a') $$, '42501',
  'permission denied to grant segmentation on entity "t_owned"', 'nor granted to oneself');
RESET ROLE;
GRANT outreach_analyst TO t_owner;
SET LOCAL ROLE t_owner;
SELECT lives_ok($$ SELECT outreach.grant_segmentation('t_owned', 't_mk_a', ARRAY['secret']) $$, 'its owner grants it');
RESET ROLE;
SET LOCAL ROLE t_mk_a;
SELECT is((SELECT member_count FROM outreach.preview('contact where has t_owned where secret = ''x''')), 30::bigint,
  'then the marketer segments on it, within its organization');
SELECT throws_ok($$ SELECT * FROM public.t_owned $$, '42501', NULL, 'still without reading it');
RESET ROLE;
-- ------------------------------------------------------------------ escalation attempts
-- (1) compiled SQL is not user-writable state
SET LOCAL ROLE t_mk_a;
SELECT throws_ok($$ UPDATE outreach.segment SET full_sql = 'SELECT 1' $$, '42501', NULL,
  'a marketer cannot rewrite a segment''s compiled SQL');
SELECT throws_ok($$ INSERT INTO outreach.segment (name, kind) VALUES ('x', 'static') $$, '42501', NULL,
  'nor insert segments behind the API');
RESET ROLE;
-- (2) a public.count / operator shadow does not run in maintenance
CREATE TABLE public.t_shadow_calls (n int);
GRANT INSERT ON public.t_shadow_calls TO PUBLIC;
GRANT CREATE ON SCHEMA public TO t_mk_a;
SELECT outreach.create_segment('counted', 'contact where count(condition.description) >= 2');
SELECT outreach.go_live('counted');
SET LOCAL ROLE t_mk_a;
-- public.count(text) matches count(r1.description) better than pg_catalog.count("any")
CREATE FUNCTION public.t_shadow_step(bigint, text) RETURNS bigint LANGUAGE sql AS
  $$ INSERT INTO public.t_shadow_calls VALUES (1) RETURNING $1 + 1 $$;
CREATE AGGREGATE public.count(text) (sfunc = public.t_shadow_step, stype = bigint, initcond = '0');
RESET ROLE;
SET LOCAL search_path = public, outreach;
INSERT INTO outreach.condition (patient_id, code, description) VALUES ((SELECT id FROM ids WHERE external_id = 'p1'), '65', 'Hypermetropia');
SELECT outreach.tick();
RESET search_path;
SELECT is((SELECT count(*) FROM public.t_shadow_calls)::int, 0,
  'maintenance under a superuser whose search_path starts with public does not run a public.count shadow');
SELECT is((SELECT count(*) FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
            WHERE s.name = 'counted' AND m.contact_id = (SELECT id FROM ids WHERE external_id = 'p1'))::int, 1,
  'and maintains the segment with the real count');
REVOKE CREATE ON SCHEMA public FROM t_mk_a;

-- (3) the test clock
SET LOCAL ROLE t_mk_a;
SELECT throws_ok($$ SET outreach.now = '2030-01-01' $$, '42501', NULL, 'a marketer cannot move the clock');
RESET ROLE;
SET LOCAL ROLE t_sender;
SELECT throws_ok($$ SET LOCAL outreach.now = '2030-01-01' $$, '42501', NULL, 'nor can the sender (quiet hours stay real)');
RESET ROLE;
SET LOCAL ROLE t_admin;
SELECT lives_ok($$ SET LOCAL outreach.now = '2030-01-01' $$, 'the admin can');
RESET ROLE;
RESET outreach.now;

-- ------------------------------------------------------------------ templates and rendering
UPDATE outreach.contact SET first_name = E'Eve\r\nBcc: victim@example.org', last_name = E'x\u0007y'
WHERE id = (SELECT id FROM ids WHERE external_id = 'p2');
SELECT is((SELECT subject FROM outreach.preview_template('news', (SELECT id FROM ids WHERE external_id = 'p2'))),
  'News for Eve  Bcc: victim@example.org', 'a line break in a patient''s name is folded out of the subject');
SELECT outreach.create_template('plain', 'letter', 'Dear {{contact.first_name}} {{contact.last_name}}');
SELECT is((SELECT body FROM outreach.preview_template('plain', (SELECT id FROM ids WHERE external_id = 'p2'))),
  'Dear Eve  Bcc: victim@example.org x y', 'control characters are folded in text bodies too');
SELECT throws_ok($$ SELECT outreach.create_template('subj', 'email', '<a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
  subject => E'Hi\r\nBcc: x@example.org', sender_postal_address => '1 Main St') $$, '22023', NULL,
  'a subject with a line break is refused when saved');
SET LOCAL ROLE t_mk_a;
SELECT throws_ok($$ SELECT outreach.create_template('xss', 'email', '<img alt={{contact.first_name}}> <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
  subject => 'Hi', sender_postal_address => '1 Main St') $$, '22023',
  'template token in an unquoted attribute value or inside a tag in body of template "xss" at character 10',
  'a token in an unquoted attribute is refused');
SELECT throws_ok($$ SELECT outreach.create_template('xss', 'email', '<script>var n = "{{contact.first_name}}";</script> <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
  subject => 'Hi', sender_postal_address => '1 Main St') $$, '22023', NULL, 'a token inside <script> is refused');
SELECT throws_ok($$ SELECT outreach.create_template('xss', 'email', '<style>p { color: {{contact.first_name}} }</style> <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
  subject => 'Hi', sender_postal_address => '1 Main St') $$, '22023', NULL, 'a token inside <style> is refused');
SELECT throws_ok($$ SELECT outreach.create_template('xss', 'email', '<b onclick="go(''{{contact.first_name}}'')">x</b> <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
  subject => 'Hi', sender_postal_address => '1 Main St') $$, '22023', NULL, 'a token in an event handler is refused');
SELECT throws_ok($$ SELECT outreach.create_template('xss', 'email', '<a href="{{contact.email}}">me</a> <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
  subject => 'Hi', sender_postal_address => '1 Main St') $$, '22023', NULL, 'a contact value cannot start a URL');
SELECT lives_ok($$ SELECT outreach.create_template('fine', 'email', '<p title="{{contact.first_name}}">Hi {{contact.first_name}}</p><!-- {{contact.last_name}} --><a href="https://example.org/?n={{contact.last_name}}">x</a> <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
  subject => 'Hi {{contact.first_name}}', sender_postal_address => '1 Main St') $$, 'quoted attributes, text and URL parameters are fine');
SELECT throws_ok($$ SELECT outreach.create_template('dead', 'letter', 'In memory of {{contact.deceased_at}}') $$, '42501',
  'permission denied to use token "contact.deceased_at" in template "dead"', 'a template cannot expose a column its author cannot read');
RESET ROLE;

-- ------------------------------------------------------------------ audit
SELECT throws_ok($$ DELETE FROM outreach.audit_log $$, '42501', 'outreach.audit_log is append-only', 'the owner cannot delete audit rows either');
CREATE TEMP TABLE audit_mark AS SELECT coalesce(max(id), 0) AS id FROM outreach.audit_log;
GRANT SELECT ON audit_mark TO PUBLIC;
CREATE FUNCTION pg_temp.audited(act text, kind text) RETURNS TABLE (n bigint, actors name[]) LANGUAGE sql AS $$
  SELECT count(*), array_agg(DISTINCT actor) FROM outreach.audit_log
  WHERE id > (SELECT id FROM audit_mark) AND action = act AND object_kind = kind
$$;
SET LOCAL ROLE t_mk_a;
SELECT outreach.create_segment('audited', 'contact where first_name = ''x''');
SELECT outreach.alter_segment('audited', 'contact where first_name = ''y''');
SELECT outreach.go_live('audited');
SELECT outreach.drop_segment('audited');
SELECT outreach.create_template('audited_t', 'letter', 'Dear {{contact.first_name}}');
SELECT outreach.create_subscription_list('audited_l');
SELECT outreach.subscribe('audited_l', (SELECT id FROM ids WHERE external_id = 'p3'), 'staff');
SELECT outreach.unsubscribe('audited_l', (SELECT id FROM ids WHERE external_id = 'p3'), 'patient via link');
UPDATE outreach.contact SET do_not_email = true WHERE id = (SELECT id FROM ids WHERE external_id = 'p4');
SELECT count(*) FROM outreach.evaluate('contact where first_name = ''x''');
SELECT count(*) FROM outreach.segment_members;
SELECT outreach.create_journey('audited_j', 'hyperopes');
SELECT outreach.add_step('audited_j', 'wait', 'wait', duration => '1 day');
SELECT outreach.drop_template('audited_t');
RESET ROLE;
SELECT outreach.grant_organization('t_analyst', 'Clinic B');
SELECT is((SELECT row(n, actors)::text FROM pg_temp.audited('create', 'segment')), '(1,{t_mk_a})', 'create_segment: one audit row, by the marketer');
SELECT is((SELECT n FROM pg_temp.audited('alter', 'segment')), 2::bigint, 'alter_segment and go_live: one row each');
SELECT is((SELECT n FROM pg_temp.audited('drop', 'segment')), 1::bigint, 'drop_segment: one row');
SELECT is((SELECT n FROM pg_temp.audited('create', 'template')), 1::bigint, 'create_template: one row');
SELECT is((SELECT n FROM pg_temp.audited('create', 'subscription list')), 1::bigint, 'create_subscription_list: one row');
SELECT is((SELECT array_agg(detail ->> 'source' ORDER BY id) FROM outreach.audit_log
            WHERE id > (SELECT id FROM audit_mark) AND action = 'consent' AND object_kind = 'subscription'),
          '{staff,"patient via link"}', 'subscribe and unsubscribe: one consent row each, with their source');
SELECT is((SELECT row(n, actors)::text FROM pg_temp.audited('consent', 'contact')), '(1,{t_mk_a})', 'a do-not-email change: one consent row');
SELECT is((SELECT row(n, actors)::text FROM pg_temp.audited('export', 'query')), '(1,{t_mk_a})', 'evaluate by a marketer: one export row');
SELECT is((SELECT row(n, actors)::text FROM pg_temp.audited('export', 'view')), '(1,{t_mk_a})', 'reading segment_members: one export row');
SELECT is((SELECT row(n, actors)::text FROM pg_temp.audited('create', 'journey')), '(1,{t_mk_a})', 'create_journey: one row');
SELECT is((SELECT object_name FROM outreach.audit_log WHERE id > (SELECT id FROM audit_mark) AND action = 'create' AND object_kind = 'journey step'),
          'audited_j.wait', 'add_step: one row naming the journey and step');
SELECT is((SELECT n FROM pg_temp.audited('drop', 'template')), 1::bigint, 'drop_template: one row');
SELECT is((SELECT row(n, actors)::text FROM pg_temp.audited('grant', 'organization')), '(1,{postgres})', 'grant_organization: one row, by the superuser');
SELECT ok((SELECT bool_and(session_role IS NOT NULL AND at IS NOT NULL) FROM outreach.audit_log), 'rows carry the session user and the time');
SELECT is(pg_temp.try_as('t_mk_a', 'SELECT * FROM outreach.audit_log'), '42501', 'a marketer cannot read the audit log');
SELECT is(pg_temp.try_as('t_mk_a', 'DELETE FROM outreach.audit_log'), '42501', 'nor delete from it');
SELECT is(pg_temp.try_as('t_admin', 'DELETE FROM outreach.audit_log'), '42501', 'the admin cannot delete rows directly');
SELECT is(pg_temp.try_as('t_admin', 'SELECT outreach.purge_audit_log(''1 day'')'), '22023', 'the purge keeps at least 30 days');
SELECT is(pg_temp.try_as('t_mk_a', 'SELECT outreach.purge_audit_log(''6 years'')'), '42501', 'only the admin purges');
SET LOCAL ROLE t_admin;
SELECT is(outreach.purge_audit_log('6 years'), 0::bigint, 'the admin''s purge removes what is older than the retention');
RESET ROLE;
SELECT is((SELECT row(n, actors)::text FROM pg_temp.audited('purge', 'audit log')), '(1,{t_admin})', 'and is itself recorded');

SELECT * FROM finish();
ROLLBACK;
