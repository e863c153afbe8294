-- Demo section: load the deterministic demo population and show what it holds.
\echo
\echo '== 1. A demo population (outreach.generate_population) =='
\echo 'Deterministic: the same seed and reference date always give the same patients.'
\echo
\timing on
SELECT table_name, rows FROM outreach.generate_population(:contacts, :seed);
\timing off
\echo
\echo 'Who they are (status, deceased, reachable by email/SMS):'
SELECT status,
       count(*) AS contacts,
       count(*) FILTER (WHERE deceased_at IS NOT NULL) AS deceased,
       count(*) FILTER (WHERE email IS NOT NULL AND NOT do_not_email) AS emailable,
       count(*) FILTER (WHERE phone IS NOT NULL AND NOT do_not_sms) AS textable,
       round(avg(date_part('year', age(DATE '2026-01-01', birthdate)))::numeric, 1) AS mean_age
FROM outreach.contact GROUP BY status ORDER BY status;
\echo
\echo 'Three of them:'
SELECT id, first_name, last_name, birthdate, gender, email, phone, time_zone, status
FROM outreach.contact ORDER BY id LIMIT 3;
\echo
\echo 'The most frequent conditions:'
SELECT code, description, count(*) AS patients
FROM outreach.condition GROUP BY code, description ORDER BY count(*) DESC, code LIMIT 6;
