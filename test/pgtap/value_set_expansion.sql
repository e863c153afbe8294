-- value_set_expansion: `in value_set` matches (code system, code); value sets include other
-- sets and descendants from a loaded hierarchy, expanded once and kept in sync by triggers.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(24);

-- Fixture: one patient with a SNOMED condition and a LOINC observation whose codes collide
-- with codes of another system.
INSERT INTO outreach.contact (id, first_name) VALUES (900001, 'A'), (900002, 'B'), (900003, 'C');
INSERT INTO outreach.condition (patient_id, code, code_system) VALUES
  (900001, '1234', 'SNOMED'),      -- in set 'x' by SNOMED
  (900002, '1234', 'ICD-10-CM');   -- same code, other system
INSERT INTO outreach.value_set (name, code_system, code) VALUES ('x', 'SNOMED', '1234');

SELECT set_eq($$SELECT * FROM outreach.evaluate('contact where has condition where code in value_set ''x''')$$,
              ARRAY[900001::bigint], 'in value_set matches the code system too, not the code alone');
SELECT set_eq($$SELECT * FROM outreach.evaluate('contact where has condition where code not in value_set ''x''')$$,
              ARRAY[900002::bigint], 'not in value_set: the same code in another system is not in the set');
SELECT matches(outreach.compile('contact where has condition where code in value_set ''x'''),
               '\(r\d+\.code_system, r\d+\.code\) OPERATOR\(pg_catalog\.=\) ANY \(SELECT vs\.code_system, vs\.code FROM outreach\.value_set_expansion AS vs WHERE vs\.name OPERATOR\(pg_catalog\.=\) ''x''\)',
               'the compiled predicate compares (code_system, code) against the expansion');

-- A value set may name its code system by URI: the expansion stores the short name.
INSERT INTO outreach.value_set (name, code_system, code) VALUES ('by uri', 'http://snomed.info/sct', '1234');
SELECT is((SELECT code_system FROM outreach.value_set_expansion WHERE name = 'by uri'), 'SNOMED',
          'a code system URI in a value set is stored as its short name');
SELECT set_eq($$SELECT * FROM outreach.evaluate('contact where has condition where code in value_set ''by uri''')$$,
              ARRAY[900001::bigint], 'a set written with the SNOMED URI matches SNOMED rows');

-- Inclusion of another value set, transitively, with a cycle.
INSERT INTO outreach.value_set (name, code_system, code) VALUES ('y', 'ICD-10-CM', '1234');
INSERT INTO outreach.value_set_include (name, value_set) VALUES ('both', 'x'), ('both', 'y'), ('all', 'both');
SELECT set_eq($$SELECT code_system FROM outreach.value_set_expansion WHERE name = 'both'$$, ARRAY['SNOMED', 'ICD-10-CM'],
              'a set that includes two sets holds the codes of both');
SELECT set_eq($$SELECT code_system || ' ' || via FROM outreach.value_set_expansion WHERE name = 'all'$$,
              ARRAY['SNOMED included from x', 'ICD-10-CM included from y'], 'inclusion is transitive and says where a code came from');
SELECT set_eq($$SELECT * FROM outreach.evaluate('contact where has condition where code in value_set ''all''')$$,
              ARRAY[900001::bigint, 900002::bigint], 'a query on an including set matches the codes of the included ones');
INSERT INTO outreach.value_set_include (name, value_set) VALUES ('x', 'all');
SELECT is((SELECT count(*) FROM outreach.value_set_expansion WHERE name = 'x'), 2::bigint,
          'a cycle of inclusions terminates: x now holds what all holds');
DELETE FROM outreach.value_set_include WHERE name = 'x';
SELECT is((SELECT count(*) FROM outreach.value_set_expansion WHERE name = 'x'), 1::bigint, 'removing an inclusion shrinks the set at once');
SELECT throws_ok($$INSERT INTO outreach.value_set_include (name, value_set, code) VALUES ('z', 'x', '1')$$, '23514', NULL,
                 'an inclusion is either a value set or a code with its system, not both');
SELECT throws_ok($$INSERT INTO outreach.value_set_include (name, value_set) VALUES ('z', 'z')$$, '23514', NULL,
                 'a value set cannot include itself');

-- Descendants from a hierarchy.
INSERT INTO outreach.code_hierarchy (code_system, parent_code, child_code) VALUES
  ('SNOMED', '100', '110'), ('SNOMED', '110', '111'), ('SNOMED', '100', '120'), ('SNOMED', '900', '901');
INSERT INTO outreach.value_set_include (name, code_system, code) VALUES ('tree', 'SNOMED', '110');
SELECT set_eq($$SELECT code FROM outreach.value_set_expansion WHERE name = 'tree'$$, ARRAY['110', '111'],
              'a code with its descendants: the code itself and every level below it, not its siblings');
SELECT is((SELECT via FROM outreach.value_set_expansion WHERE name = 'tree' AND code = '111'), 'descendant of SNOMED|110',
          'the expansion says why a descendant is in the set');
INSERT INTO outreach.code_hierarchy (code_system, parent_code, child_code) VALUES ('SNOMED', '111', '112');
SELECT ok(EXISTS (SELECT 1 FROM outreach.value_set_expansion WHERE name = 'tree' AND code = '112'),
          'a code added to the hierarchy joins the sets of its ancestors at once');
DELETE FROM outreach.code_hierarchy WHERE child_code = '111';
SELECT set_eq($$SELECT code FROM outreach.value_set_expansion WHERE name = 'tree'$$, ARRAY['110'],
              'cutting a branch removes all its codes from the set');
INSERT INTO outreach.code_hierarchy (code_system, parent_code, child_code) VALUES ('ICD-10-CM', '110', '119');
SELECT ok(NOT EXISTS (SELECT 1 FROM outreach.value_set_expansion WHERE name = 'tree' AND code = '119'),
          'descendants follow the hierarchy of the same code system only');
INSERT INTO outreach.condition (patient_id, code, code_system) VALUES (900003, '110', 'SNOMED');
SELECT set_eq($$SELECT * FROM outreach.evaluate('contact where has condition where code in value_set ''tree''')$$,
              ARRAY[900003::bigint], 'a query matches codes that are in a set through the hierarchy');
SELECT throws_ok($$INSERT INTO outreach.code_hierarchy VALUES ('SNOMED', '5', '5')$$, '23514', NULL,
                 'a code is not its own parent');
SELECT ok((SELECT count(*) FROM outreach.value_set_expansion e JOIN outreach.value_set v
           ON (v.name, v.code_system, v.code) = (e.name, e.code_system, e.code)) = (SELECT count(*) FROM outreach.value_set WHERE code_system !~ '^http'),
          'every listed code of every bundled set is in the expansion');
SELECT is(outreach.refresh_value_set_expansion(), 0::bigint, 'a refresh with no change in the sources changes nothing');

-- Unknown sets are still an error with a hint, and templates find sets made only of inclusions.
SELECT throws_ok($$SELECT outreach.compile('contact where has condition where code in value_set ''tre''')$$, '42704',
                 'value set "tre" does not exist at character 53', 'an unknown value set is an error naming its position');
SELECT lives_ok($$SELECT outreach.template_query('new_diagnosis', '{"value_set": "all"}')$$,
                'a template accepts a value set made only of inclusions');

-- Synthea's QALY, DALY and QOLS are not LOINC (they are Synthea's own codes).
SELECT is((SELECT name FROM outreach.code_system WHERE uri = 'http://synthetichealth.github.io/synthea'), 'Synthea',
          'Synthea''s own code system has a short name');
SELECT * FROM finish();
ROLLBACK;
