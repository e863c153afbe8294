-- baseline for single-row writes: one condition INSERT with no live segment (rolled back).
BEGIN;
INSERT INTO outreach.condition (patient_id, code, description) SELECT min(id), '38101003', 'Hypermetropia (disorder)' FROM outreach.contact;
ROLLBACK;
