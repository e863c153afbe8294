-- Demo section: the segment language and live segments (the seed exercise).
\echo
\echo '== 3. The seed exercise: a segment in the segment language =='
\set q 'contact where status = ''active'' and has condition where description contains ''Hypermetropia'''
SELECT :'q'::outreach.segment_query AS query;
\echo 'It compiles to plain SQL (readable, for EXPLAIN):'
SELECT outreach.compile(:'q');
SELECT count(*) AS matching_now FROM outreach.evaluate(:'q');
\echo
\echo '== 4. Live segments: membership is right when the writing transaction commits =='
SELECT outreach.create_segment('Hypermetropia (active patients)', :'q') AS segment_id;
\timing on
SELECT count(*) AS segments_gone_live FROM (SELECT outreach.go_live('Hypermetropia (active patients)')) g;
\timing off
SELECT count(*) AS members FROM outreach.segment_member m JOIN outreach.segment s ON s.id = m.segment_id
WHERE s.name = 'Hypermetropia (active patients)';
SELECT c.id AS new_patient, c.first_name, c.last_name FROM outreach.contact c
WHERE c.status = 'active' AND c.contact_type = 'patient'
  AND NOT EXISTS (SELECT 1 FROM outreach.condition d WHERE d.patient_id = c.id AND d.code = '38101003')
ORDER BY c.id LIMIT 1 \gset
\echo 'A new diagnosis for' :first_name :last_name '(contact' :new_patient ') is inserted:'
\timing on
INSERT INTO outreach.condition (patient_id, code, description, onset_date)
VALUES (:new_patient, '38101003', 'Hypermetropia (disorder)', DATE '2026-01-01');
\timing off
\echo '... and the patient joined the segment in the same transaction:'
SELECT s.name AS segment, ch.contact_id, ch.change
FROM outreach.segment_change ch JOIN outreach.segment s ON s.id = ch.segment_id
WHERE ch.contact_id = :new_patient ORDER BY ch.id;
