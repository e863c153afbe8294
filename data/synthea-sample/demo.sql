-- data/synthea-sample/demo.sql: the Synthea part of `make demo`.
-- Run with psql -v synthea_dir=/absolute/path/readable/by/the/server/synthea-sample -f demo.sql
-- on a database with the outreach extension.  Imports the sample, makes care-gap segments
-- from templates, shows their members and a gap closing.
\set ON_ERROR_STOP 1
\echo '== Synthea sample: 107 synthetic patients (Apache-2.0, github.com/ablack3/SyntheaCdmFactory @ 761f5e4)'
SELECT entity, rows_in_csv, inserted, updated
FROM outreach.import_synthea(:'synthea_dir', synthesize_channels => true);

\echo '== Care-gap segments from templates (measurement year 2022, the last full year of the sample)'
SELECT count(outreach.create_segment_from_template(s.name, s.template, s.params::jsonb, 'UTC')) AS segments_created
FROM (VALUES
  ('Colorectal screening due 2022', 'colorectal_cancer_screening_gap', '{"measurement_year": 2022}'),
  ('Mammography due 2022',          'breast_cancer_screening_gap',     '{"measurement_year": 2022}'),
  ('Cervical screening due 2022',   'cervical_cancer_screening_gap',   '{"measurement_year": 2022}'),
  ('Flu vaccine due 2022-23',       'influenza_vaccination_gap',       '{"season": 2022}')) s(name, template, params);
SELECT count(*) AS segments_live FROM (SELECT outreach.go_live(name) FROM outreach.segment
WHERE name IN ('Colorectal screening due 2022', 'Mammography due 2022', 'Cervical screening due 2022', 'Flu vaccine due 2022-23')) g;

SELECT s.name AS segment, count(m.contact_id) AS members
FROM outreach.segment s LEFT JOIN outreach.segment_member m ON m.segment_id = s.id
WHERE s.name LIKE '%due 2022%'
GROUP BY s.name ORDER BY s.name;

\echo '== Members of "Colorectal screening due 2022" (first 10)'
SELECT c.first_name, c.last_name, c.birthdate, c.email,
       (SELECT max(p.performed_at)::date FROM outreach.procedure p
        WHERE p.patient_id = c.id AND p.code IN (SELECT code FROM outreach.value_set WHERE name = 'colonoscopy')) AS last_colonoscopy
FROM outreach.segment_member m
JOIN outreach.segment s ON s.id = m.segment_id AND s.name = 'Colorectal screening due 2022'
JOIN outreach.contact c ON c.id = m.contact_id
ORDER BY c.last_name, c.first_name LIMIT 10;

\echo '== The template is plain segment language: the query behind "Colorectal screening due 2022"'
SELECT regexp_replace(definition::text, ' and (has|birthdate)', E'\n  and \\1', 'g') AS definition
FROM outreach.segment WHERE name = 'Colorectal screening due 2022';

\echo '== A colonoscopy closes the gap at once'
INSERT INTO outreach.procedure (patient_id, code, description, performed_at)
SELECT m.contact_id, '73761001', 'Colonoscopy', timestamptz '2022-11-15 10:00+00'
FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
WHERE s.name = 'Colorectal screening due 2022' ORDER BY m.contact_id LIMIT 1;
SELECT count(*) AS members_now FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
WHERE s.name = 'Colorectal screening due 2022';
