-- 40_segments-hardening.sql (issue 19, issue 20 compiler side): the changed segment objects.
REVOKE ALL ON FUNCTION outreach._segment_deleted() FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._membership_trigger() FROM PUBLIC;
