-- Case 1: full evaluation, outreach.evaluate(q) against hand-written SQL of the same meaning.
-- The hand-written queries were written from the meaning, in the style one would write by
-- hand (literal dates for the fixed clock 2026-01-01 00:00 UTC, date arithmetic for age),
-- not copied from outreach.compile(); compare_eval checks the sets are identical first.
SELECT bench.compare_eval('seed exercise',
  $q$contact where status = 'active' and has condition where description contains 'Hypermetropia'$q$,
  $h$SELECT c.id FROM outreach.contact c
     WHERE c.status = 'active'
       AND c.id IN (SELECT d.patient_id FROM outreach.condition d WHERE d.description ILIKE '%hypermetropia%')$h$,
  :repeat);

SELECT bench.compare_eval('HEDIS gap (has no, windows)',
  $q$contact where gender = 'female' and age between 52 and 74
       and has encounter where start_at within last 1 year
       and has no procedure where (code in value_set 'mammography' and performed_at within last 27 months)
       and has no procedure where code in value_set 'bilateral mastectomy'$q$,
  $h$SELECT c.id FROM outreach.contact c
     WHERE c.gender = 'female'
       AND c.birthdate > date '2026-01-01' - interval '75 years' AND c.birthdate <= date '2026-01-01' - interval '52 years'
       AND EXISTS (SELECT FROM outreach.encounter e WHERE e.patient_id = c.id
                   AND e.start_at BETWEEN timestamptz '2025-01-01 00:00+00' AND timestamptz '2026-01-01 00:00+00')
       AND NOT EXISTS (SELECT FROM outreach.procedure p JOIN outreach.value_set v ON v.code = p.code AND v.name = 'mammography'
                       WHERE p.patient_id = c.id
                         AND p.performed_at BETWEEN timestamptz '2023-10-01 00:00+00' AND timestamptz '2026-01-01 00:00+00')
       AND NOT EXISTS (SELECT FROM outreach.procedure p JOIN outreach.value_set v ON v.code = p.code AND v.name = 'bilateral mastectomy'
                       WHERE p.patient_id = c.id)$h$,
  :repeat);

SELECT bench.compare_eval('count(...) >= 2',
  $q$contact where count(observation where code = '4548-4' and effective_at within last 2 years) >= 2$q$,
  $h$SELECT o.patient_id FROM outreach.observation o
     WHERE o.code = '4548-4' AND o.effective_at BETWEEN timestamptz '2024-01-01 00:00+00' AND timestamptz '2026-01-01 00:00+00'
     GROUP BY o.patient_id HAVING count(*) >= 2$h$,
  :repeat);

SELECT bench.compare_eval('latest(...) > 140',
  $q$contact where latest(observation.value_numeric where code = '8480-6') > 140$q$,
  $h$SELECT l.patient_id FROM (
       SELECT DISTINCT ON (o.patient_id) o.patient_id, o.value_numeric
       FROM outreach.observation o WHERE o.code = '8480-6'
       ORDER BY o.patient_id, o.effective_at DESC NULLS LAST, o.id DESC) l
     WHERE l.value_numeric > 140$h$,
  :repeat);

SELECT bench.compare_eval('nested relations',
  $q$contact where has encounter where (class = 'emergency' and has condition where code = '44054006')$q$,
  $h$SELECT DISTINCT e.patient_id FROM outreach.encounter e JOIN outreach.condition d ON d.encounter_id = e.id
     WHERE e.class = 'emergency' AND d.code = '44054006'$h$,
  :repeat);

SELECT bench.compare_eval('compound (union, except)',
  $q$(contact where has condition where code = '44054006') union (contact where has condition where code = '15777000')
     except (contact where status = 'inactive')$q$,
  $h$SELECT c.id FROM outreach.contact c
     WHERE c.status IS DISTINCT FROM 'inactive'
       AND EXISTS (SELECT FROM outreach.condition d WHERE d.patient_id = c.id AND d.code IN ('44054006', '15777000'))$h$,
  :repeat);
