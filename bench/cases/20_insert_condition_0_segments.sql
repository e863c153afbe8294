-- 100 single-row condition INSERTs (one statement each) with no live segment; rolled back.
BEGIN;
DO $$
DECLARE p bigint;
BEGIN
  FOR i IN 1 .. 100 LOOP
    SELECT id INTO p FROM outreach.contact WHERE id = (SELECT min(id) FROM outreach.contact) + i * 7;
    INSERT INTO outreach.condition (patient_id, code, description) VALUES (p, '38101003', 'Hypermetropia (disorder)');
  END LOOP;
END $$;
ROLLBACK;
