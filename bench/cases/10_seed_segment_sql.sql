-- The seed exercise written by hand in SQL: active contacts with a hypermetropia condition.
SELECT count(*) FROM outreach.contact c
WHERE c.status = 'active'
  AND EXISTS (SELECT 1 FROM outreach.condition d WHERE d.patient_id = c.id AND d.description ILIKE '%Hypermetropia%');
