SET client_min_messages = warning; DROP EXTENSION IF EXISTS outreach CASCADE; CREATE EXTENSION outreach CASCADE; RESET client_min_messages;
-- Every error the validator reports when a segment query is compiled: names checked
-- against the registry with the closest one as a hint, types of values, enumerated
-- values, value sets, segments and references back to the segment being defined.
\set VERBOSITY default

-- a registered table with two links to contact, a key-less column type, and no time column
CREATE TABLE public.referral (
  id          bigint PRIMARY KEY,
  patient_id  bigint REFERENCES outreach.contact,
  referrer_id bigint REFERENCES outreach.contact,
  token       uuid,
  note        text
);
SELECT outreach.register_entity('public.referral', link_column => 'patient_id');
INSERT INTO outreach.value_set (name, code_system, code) VALUES ('zz screening', 'SNOMED', '24623002');
INSERT INTO outreach.segment (id, name, kind, status, definition) VALUES
  (1, 'diabetics', 'dynamic', 'live', $$contact where has condition where code = '44054006'$$),
  (2, 'drafty', 'dynamic', 'draft', $$contact where status = 'active'$$),
  (3, 'loop_a', 'compound', 'live', $$segment 'loop_b' union segment 'diabetics'$$),
  (4, 'loop_b', 'compound', 'live', $$contact where in segment 'target'$$),
  (5, 'target', 'compound', 'draft', $$segment 'diabetics'$$);

-- unknown entity, with and without a close name
SELECT outreach.compile($$contact where has conditon$$);
SELECT outreach.compile($$contact where has xyzzy_entity$$);
-- unknown field, with and without a close name
SELECT outreach.compile($$contact where stauts = 'active'$$);
SELECT outreach.compile($$contact where has condition where xyzzy_field = 'x'$$);
SELECT outreach.compile($$contact where has condition where birthdate is empty$$);
-- entities that are not linked
SELECT outreach.compile($$contact where has condition where has allergy$$);
SELECT outreach.compile($$contact where has contact$$);
-- a relation that needs via, and a via that is not a link
SELECT outreach.compile($$contact where has referral$$);
SELECT outreach.compile($$contact where has referral via note$$);
SELECT outreach.compile($$contact where has referral via referrer_id and has referral via patient_id$$) IS NOT NULL AS via_resolves;
-- a self link reads the rows pointing at the scope row (child accounts)
SELECT outreach.compile($$contact where has account where has account$$);

-- type mismatches
SELECT outreach.compile($$contact where age contains 'x'$$);
SELECT outreach.compile($$contact where birthdate > 'abc'$$);
SELECT outreach.compile($$contact where birthdate > '2024-02-30'$$);
SELECT outreach.compile($$contact where birthdate = '2024-01-31 10:00'$$);
SELECT outreach.compile($$contact where birthdate < 'today'$$);
SELECT outreach.compile($$contact where deceased_at < '2024-01-31 10:00+02'$$);
SELECT outreach.compile($$contact where deceased_at < 'noon-ish'$$);
SELECT outreach.compile($$contact where birthdate > '294277-01-01'$$);
SELECT outreach.compile($$contact where deceased_at > '2024-01-01 25:00'$$);
-- relative amounts out of range
SELECT outreach.compile($$contact where birthdate > today - 999999 years$$);
SELECT outreach.compile($$contact where deceased_at within last 100001 minutes$$);
SELECT outreach.compile($$contact where first_name = 42$$);
SELECT outreach.compile($$contact where first_name = today$$);
SELECT outreach.compile($$contact where age > '40'$$);
SELECT outreach.compile($$contact where age > true$$);
SELECT outreach.compile($$contact where do_not_email = 'yes'$$);
SELECT outreach.compile($$contact where do_not_email > false$$);
SELECT outreach.compile($$contact where birthdate = 20240101$$);
SELECT outreach.compile($$contact where birthdate between date '2000-01-01' and 5$$);
SELECT outreach.compile($$contact where has referral via patient_id where token = 'abc'$$);
SELECT outreach.compile($$contact where has referral via patient_id where token is empty$$) IS NOT NULL AS other_types_can_be_empty;
SELECT outreach.compile($$contact where birthdate contains '19'$$);
SELECT outreach.compile($$contact where has referral via patient_id where token starts with 'a'$$);
SELECT outreach.compile($$contact where age within last 2 years$$);
-- age at: a date (written, or today moved by whole days to years), only on contact's age
SELECT outreach.compile($$contact where age at now >= 18$$);
SELECT outreach.compile($$contact where age at timestamp '2024-12-31 10:00' >= 18$$);
SELECT outreach.compile($$contact where age at 2024 >= 18$$);
SELECT outreach.compile($$contact where age at today + 3 hours >= 18$$);
SELECT outreach.compile($$contact where age at '2024-13-01' >= 18$$);
SELECT outreach.compile($$contact where age at date '2024-12-31' > 'x'$$);
SELECT outreach.compile($$contact where has observation where age at date '2024-12-31' > 1$$);
SELECT outreach.compile($$contact where count(distinct day of immunization.code) > 1$$);
-- contact.field: only inside relations, a field of contact, of a kind that fits
SELECT outreach.compile($$contact where birthdate < contact.birthdate$$);
SELECT outreach.compile($$contact where count(immunization) > contact.birthdate$$);
SELECT outreach.compile($$contact where has immunization where administered_at < contact.birthdat + 2 years$$);
SELECT outreach.compile($$contact where has immunization where administered_at < contact.first_name$$);
SELECT outreach.compile($$contact where has immunization where code = contact.birthdate$$);
SELECT outreach.compile($$contact where has immunization where code = contact.first_name + 1 day$$);
SELECT outreach.compile($$contact where has observation where (value_numeric > contact.age and code = contact.first_name)$$) IS NOT NULL AS same_kinds_compare;
SELECT outreach.compile($$contact where first_name older than 2 years$$);
SELECT outreach.compile($$contact where birthdate in value_set 'zz screening'$$);
SELECT outreach.compile($$contact where do_not_email in (true, 'x')$$);

-- enumerated values: an error listing the allowed ones, never a silent empty match
SELECT outreach.compile($$contact where status = 'Active'$$);
SELECT outreach.compile($$contact where status != 'activ'$$);
SELECT outreach.compile($$contact where gender in ('female', 'zebra')$$);
SELECT outreach.compile($$contact where latest(encounter.class) = 'ambulant'$$);

-- aggregates and latest
SELECT outreach.compile($$contact where sum(observation) > 1$$);
SELECT outreach.compile($$contact where avg(observation.code) > 1$$);
SELECT outreach.compile($$contact where max(observation.value_numeric) > 'high'$$);
SELECT outreach.compile($$contact where min(referral via patient_id.token) > 'a'$$);
SELECT outreach.compile($$contact where count(observation) > 'two'$$);
SELECT outreach.compile($$contact where latest(account.name) = 'x'$$);
SELECT outreach.compile($$contact where latest(observation.value_numeric) > 'x'$$);

-- value sets
SELECT outreach.compile($$contact where has procedure where code in value_set 'zz screenign'$$);
SELECT outreach.compile($$contact where has procedure where code in value_set 'nothing like it'$$);

-- segments: unknown, not live, in segment outside contact, references back
SELECT outreach.compile($$segment 'diabetic'$$);
SELECT outreach.compile($$contact where in segment 'zzz'$$);
SELECT outreach.compile($$segment 'drafty'$$);
SELECT outreach.compile($$contact where has condition where in segment 'diabetics'$$);
SELECT outreach.validate($$segment 'target'$$, 'target');
SELECT outreach.validate($$segment 'loop_a' union segment 'diabetics'$$, 'target');
SELECT outreach.validate($$contact where in segment 'loop_b'$$, 'target');
SELECT outreach.validate($$segment 'diabetics'$$, 'target');
SELECT outreach.validate($$segment 'loop_a'$$, 'new segment');
-- a cycle among existing segments that does not involve the one being defined terminates
UPDATE outreach.segment SET definition = $$segment 'loop_a'$$ WHERE name = 'target';
SELECT outreach.validate($$segment 'loop_b'$$, 'other');

-- shared references are explored once: 30 segments, each referring to the two before it
INSERT INTO outreach.segment (id, name, kind, status, definition)
SELECT 100 + k, 'fib' || k, 'compound', 'live',
       CASE WHEN k = 1 THEN $$segment 'diabetics'$$ WHEN k = 2 THEN $$segment 'fib1'$$
            ELSE format($$segment 'fib%s' union segment 'fib%s'$$, k - 1, k - 2) END::outreach.segment_query
FROM generate_series(1, 30) k;
SELECT outreach.validate($$segment 'fib30'$$, 'new segment');
SELECT outreach.validate($$segment 'fib5'$$, 'fib2');

-- time zones, and the evaluation API's arguments
SELECT outreach.compile($$contact where birthdate = today$$, false, 'Mars/Olympus_Mons');
SELECT outreach.compile($$contact where birthdate = today$$, false, '');
SELECT outreach.evaluate($$contact$$, NULL::bigint[]);
SELECT * FROM outreach.preview($$contact$$, -1);
SELECT * FROM outreach.preview($$contact$$, NULL);

-- NULL queries compile to NULL
SELECT outreach.compile(NULL) IS NULL AS null_compiles_to_null;

SELECT outreach.unregister_entity('referral');
DROP TABLE public.referral;
