-- 97_audit.sql: outreach.audit_log (DESIGN §8), the append-only record of who changed a
-- definition (segments, journeys, templates, lists), a consent or subscription (with its
-- source), an organization or segmentation grant, and who exported a member list
-- (evaluate, preview, segment_members_at).  Statement-level auditing (who read which table)
-- is pgaudit's job; docs/security.md shows how the two fit together.
--
-- Rows are written by outreach._audit(), which only the extension's own functions and
-- triggers call.  Nobody may update a row; deleting is outreach.purge_audit_log(), admin only.

CREATE TABLE outreach.audit_log (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at           timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  actor        name NOT NULL,
  session_role name NOT NULL,
  client_addr  inet,
  application  text,
  action       text NOT NULL,
  object_kind  text NOT NULL,
  object_name  text,
  detail       jsonb,
  xid          xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
CREATE INDEX audit_log_at ON outreach.audit_log (at);
SELECT outreach._dump('outreach.audit_log');
COMMENT ON TABLE outreach.audit_log IS
  'Append-only audit trail: who (the acting role, the session user, the client address), when, what';
COMMENT ON COLUMN outreach.audit_log.actor IS 'The role the action was done as: SET ROLE''s role, else the session user';
COMMENT ON COLUMN outreach.audit_log.action IS
  'create, alter, drop (definitions); consent (consent and subscription changes); export (member lists); grant, revoke; purge';
COMMENT ON COLUMN outreach.audit_log.id IS 'Id (identity), increasing in the order rows were written';
COMMENT ON COLUMN outreach.audit_log.at IS 'When the action happened (clock time of the writing statement, not the transaction start)';
COMMENT ON COLUMN outreach.audit_log.session_role IS 'The role that logged in (session_user), which differs from actor after SET ROLE';
COMMENT ON COLUMN outreach.audit_log.client_addr IS 'IP address of the client connection; NULL for a Unix-socket connection or a background job (pg_cron)';
COMMENT ON COLUMN outreach.audit_log.application IS 'The client''s application_name setting (NULL when empty)';
COMMENT ON COLUMN outreach.audit_log.object_kind IS
  'What kind of object was acted on: segment, journey, journey step, template, subscription list, subscription, contact, query, view, organization, segmentation, audit log';
COMMENT ON COLUMN outreach.audit_log.object_name IS
  'Which object: its name (a journey step as journey.step), the contact id, the query text or view name of an export, the account of an organization grant, the entity of a segmentation grant';
COMMENT ON COLUMN outreach.audit_log.detail IS
  'Action-specific details (jsonb): the changed columns of an alter, the contact, statuses and source of a consent change, the role and account or fields of a grant, the exporting function, the rows purged';
COMMENT ON COLUMN outreach.audit_log.xid IS 'Id of the transaction that wrote the row (pg_current_xact_id()): rows of one transaction share it';

-- One audit row.  plpgsql so that outreach._caller() (98_access.sql) is resolved when called.
CREATE FUNCTION outreach._audit(action text, object_kind text, object_name text, detail jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO outreach.audit_log (actor, session_role, client_addr, application, action, object_kind, object_name, detail)
  VALUES (outreach._caller(), pg_catalog.session_user(), pg_catalog.inet_client_addr(),
          nullif(pg_catalog.current_setting('application_name'), ''), action, object_kind, object_name, detail);
END $$;

-- Definitions: one row per create / drop, one per change of what a user defines (not the
-- bookkeeping the ticks update), and one per object and statement: create_segment inserts
-- and then stores the definition, which is one action.
CREATE FUNCTION outreach._audit_definition() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  kind text := TG_ARGV[0];
  bookkeeping text[] := TG_ARGV[1:];
  old_j jsonb;
  new_j jsonb;
  changed text[];
  obj text;
BEGIN
  IF TG_OP = 'INSERT' THEN
    new_j := to_jsonb(NEW);
  ELSIF TG_OP = 'DELETE' THEN
    old_j := to_jsonb(OLD);
  ELSE
    old_j := to_jsonb(OLD) - bookkeeping;
    new_j := to_jsonb(NEW) - bookkeeping;
    IF old_j = new_j THEN
      RETURN NULL;
    END IF;
    SELECT array_agg(k ORDER BY k) INTO changed FROM jsonb_object_keys(new_j) k
    WHERE new_j -> k IS DISTINCT FROM old_j -> k;
  END IF;
  obj := coalesce(new_j, old_j) ->> 'name';
  IF kind = 'journey step' THEN
    SELECT j.name || '.' || (coalesce(new_j, old_j) ->> 'key') INTO obj
    FROM outreach.journey j WHERE j.id = (coalesce(new_j, old_j) ->> 'journey_id')::bigint;
  END IF;
  IF TG_OP = 'UPDATE' AND EXISTS (
      SELECT 1 FROM outreach.audit_log a WHERE a.xid = pg_catalog.pg_current_xact_id()
        AND a.at >= pg_catalog.statement_timestamp() AND a.object_kind = kind AND a.object_name = obj AND a.action IN ('create', 'alter')) THEN
    RETURN NULL;
  END IF;
  PERFORM outreach._audit(CASE TG_OP WHEN 'INSERT' THEN 'create' WHEN 'DELETE' THEN 'drop' ELSE 'alter' END,
                          kind, obj, CASE WHEN changed IS NOT NULL THEN jsonb_build_object('changed', changed) END);
  RETURN NULL;
END $$;

CREATE TRIGGER audit_definition AFTER INSERT OR UPDATE OR DELETE ON outreach.segment
  FOR EACH ROW EXECUTE FUNCTION outreach._audit_definition('segment', 'updated_at', 'last_evaluated_at',
    'last_evaluation_duration', 'next_evaluation_at', 'pending_full', 'version', 'restricted_sql', 'full_sql', 'kind');
CREATE TRIGGER audit_definition AFTER INSERT OR UPDATE OR DELETE ON outreach.journey
  FOR EACH ROW EXECUTE FUNCTION outreach._audit_definition('journey', 'updated_at', 'went_live_at', 'stopped_at');
CREATE TRIGGER audit_definition AFTER INSERT OR UPDATE OR DELETE ON outreach.journey_step
  FOR EACH ROW EXECUTE FUNCTION outreach._audit_definition('journey step');
CREATE TRIGGER audit_definition AFTER INSERT OR UPDATE OR DELETE ON outreach.template
  FOR EACH ROW EXECUTE FUNCTION outreach._audit_definition('template', 'updated_at', 'tokens');
CREATE TRIGGER audit_definition AFTER INSERT OR UPDATE OR DELETE ON outreach.subscription_list
  FOR EACH ROW EXECUTE FUNCTION outreach._audit_definition('subscription list');

-- Consent: a subscription's status, with the source the API recorded (patient via link,
-- staff, import, bounce ...); a contact's do-not-contact flags, with who changed them.
CREATE FUNCTION outreach._audit_subscription() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
    RETURN NULL;
  END IF;
  PERFORM outreach._audit('consent', 'subscription',
    (SELECT l.name FROM outreach.subscription_list l WHERE l.id = NEW.list_id),
    jsonb_build_object('contact_id', NEW.contact_id, 'status', NEW.status,
      'previous_status', CASE WHEN TG_OP = 'UPDATE' THEN OLD.status END,
      'source', CASE WHEN NEW.status = 'unsubscribed' THEN NEW.unsubscribe_source ELSE NEW.subscribe_source END));
  RETURN NULL;
END $$;
CREATE TRIGGER audit_consent AFTER INSERT OR UPDATE ON outreach.subscription
  FOR EACH ROW EXECUTE FUNCTION outreach._audit_subscription();

CREATE FUNCTION outreach._audit_contact_consent() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  changes jsonb := '{}';
  source text;
BEGIN
  IF NEW.do_not_email IS DISTINCT FROM OLD.do_not_email THEN changes := changes || jsonb_build_object('do_not_email', NEW.do_not_email); END IF;
  IF NEW.do_not_sms IS DISTINCT FROM OLD.do_not_sms THEN changes := changes || jsonb_build_object('do_not_sms', NEW.do_not_sms); END IF;
  IF NEW.do_not_mail IS DISTINCT FROM OLD.do_not_mail THEN changes := changes || jsonb_build_object('do_not_mail', NEW.do_not_mail); END IF;
  IF changes = '{}' THEN
    RETURN NULL;
  END IF;
  source := CASE
    WHEN pg_catalog.pg_has_role(outreach._caller(), 'outreach_sender', 'USAGE')
         AND NOT pg_catalog.pg_has_role(outreach._caller(), 'outreach_admin', 'USAGE') THEN 'gateway (bounce, complaint or link)'
    WHEN (SELECT a.rolsuper FROM pg_catalog.pg_roles a WHERE a.rolname = outreach._caller()) THEN 'system'
    ELSE 'staff' END;
  PERFORM outreach._audit('consent', 'contact', NEW.id::text, changes || jsonb_build_object('contact_id', NEW.id, 'source', source));
  RETURN NULL;
END $$;
CREATE TRIGGER audit_consent AFTER UPDATE OF do_not_email, do_not_sms, do_not_mail ON outreach.contact
  FOR EACH ROW EXECUTE FUNCTION outreach._audit_contact_consent();

-- Append-only: no UPDATE ever; DELETE only inside purge_audit_log.
CREATE FUNCTION outreach._audit_log_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_OP = 'DELETE' AND pg_catalog.current_setting('outreach_audit.purging', true) = 'on' THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION 'outreach.audit_log is append-only' USING ERRCODE = 'insufficient_privilege',
    HINT = 'An admin removes old rows with outreach.purge_audit_log(older_than).';
END $$;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON outreach.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION outreach._audit_log_guard();

-- The admin's retention purge: rows older than older_than (at least 30 days) go, and the
-- purge itself is recorded.
CREATE FUNCTION outreach.purge_audit_log(older_than interval) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
BEGIN
  IF older_than IS NULL OR older_than < interval '30 days' THEN
    RAISE EXCEPTION 'audit rows are kept at least 30 days, not %', coalesce(older_than::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value', HINT = 'HIPAA asks for six years of audit records; pass e.g. interval ''6 years''.';
  END IF;
  PERFORM pg_catalog.set_config('outreach_audit.purging', 'on', true);
  DELETE FROM outreach.audit_log a WHERE a.at < pg_catalog.now() - older_than;
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM pg_catalog.set_config('outreach_audit.purging', 'off', true);
  PERFORM outreach._audit('purge', 'audit log', NULL, jsonb_build_object('older_than', older_than, 'rows', n));
  RETURN n;
END $$;
COMMENT ON FUNCTION outreach.purge_audit_log(interval) IS
  'Deletes audit rows older than the given age (at least 30 days); admin only; recorded in the log';
REVOKE ALL ON FUNCTION outreach.purge_audit_log(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach.purge_audit_log(interval) TO outreach_admin;
REVOKE ALL ON outreach.audit_log FROM PUBLIC;
GRANT SELECT ON outreach.audit_log TO outreach_admin;
