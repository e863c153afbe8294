-- operations_errors: an error raised inside outreach carries the caller's context only, not
-- a line per internal PL/pgSQL frame (outreach.error_context = user, the default); full
-- keeps every frame.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach;
RESET client_min_messages;
SELECT outreach.create_static_segment('vip') > 0 AS created;
-- raised three helpers deep: message, detail and hint, no internal frames
SELECT outreach.create_segment('vip or x', $$segment 'vip'$$);
-- an error raised by the API function itself
SELECT outreach.set_operations_setting('no_such_setting', '1');
-- called from the user's own function: the user's frames stay
CREATE FUNCTION public.ops_user_fn() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM outreach.create_segment('vip or x', $q$segment 'vip'$q$);
END $$;
SELECT public.ops_user_fn();
-- full: every frame, for debugging outreach itself
SET outreach.error_context = full;
SELECT outreach.create_segment('vip or x', $$segment 'vip'$$);
RESET outreach.error_context;
SET outreach.error_context = everything;
DROP FUNCTION public.ops_user_fn();
