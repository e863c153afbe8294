-- 10_datamodel-hardening.sql (issue 19, defect 4): touch_updated_at checks the type of
-- updated_at (in C); its EXECUTE is no longer granted to PUBLIC.
REVOKE ALL ON FUNCTION outreach.touch_updated_at() FROM PUBLIC;
