-- 50_messaging-engine.sql (0.2.0 -> 0.3.0, engine): consent at every claim and withdrawal
-- of claimed messages (issue 19 defect 5), the pacing row that makes frequency caps exact
-- under every isolation level (defect 6), batch reporting (issue 15), grants.

ALTER TABLE outreach.message
  ADD COLUMN withdrawn_at timestamptz,
  ADD COLUMN late_report text
             CONSTRAINT message_late_report_allowed CHECK (late_report IN ('sent', 'delivered', 'bounced', 'failed'));
COMMENT ON COLUMN outreach.message.withdrawn_at IS
  'When consent was withdrawn (opt-out, unsubscribe, death, deactivation) while a worker held the message; it is suppressed';
COMMENT ON COLUMN outreach.message.late_report IS
  'A withdrawn message''s delivery result as its worker reported it afterwards (sent after the opt-out), kept for audit';

CREATE TABLE outreach.contact_pacing (
  contact_id     bigint NOT NULL REFERENCES outreach.contact ON DELETE CASCADE,
  channel        text NOT NULL,
  last_queued_at timestamptz NOT NULL,
  PRIMARY KEY (contact_id, channel)
);
SELECT outreach._dump('outreach.contact_pacing');
COMMENT ON TABLE outreach.contact_pacing IS
  'Per contact and channel, when a marketing message was last queued: the row every queueing transaction writes so frequency caps hold under every isolation level';
COMMENT ON COLUMN outreach.contact_pacing.last_queued_at IS
  'When the contact''s latest marketing message on this channel was queued (the time queued at: outreach.now() unless the caller gave one; it only moves forward)';
-- the 0.2.0 contacts' past marketing messages, so the first queueing after the upgrade conflicts too
INSERT INTO outreach.contact_pacing (contact_id, channel, last_queued_at)
SELECT m.contact_id, m.channel, max(m.created_at) FROM outreach.message m
 WHERE m.message_class = 'marketing' AND m.status IN ('queued', 'sending', 'sent', 'delivered')
 GROUP BY m.contact_id, m.channel;

ALTER TABLE outreach.messaging_settings
  ADD COLUMN journey_tick_budget interval NOT NULL DEFAULT '50 seconds'
             CONSTRAINT messaging_settings_tick_budget_positive CHECK (journey_tick_budget > interval '0');
COMMENT ON COLUMN outreach.messaging_settings.journey_tick_budget IS
  'How long one journey tick may work through due enrollments before it stops and leaves the rest to the next tick';

CREATE FUNCTION outreach._render_contact(body text, html boolean, tokens text[], c outreach.contact,
                                         a outreach.account, unsubscribe_url text, postal_address text)
RETURNS text LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'outreach_render_contact';

CREATE TYPE outreach.message_request AS (
  enrollment_id     bigint,
  step_id           bigint,
  journey_id        bigint,
  contact_id        bigint,
  template          text,
  message_class     text,
  subscription_list text
);

CREATE OR REPLACE FUNCTION outreach._contact_consent_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  clock timestamptz := outreach.now();
BEGIN
  UPDATE outreach.message m
     SET status = 'suppressed', updated_at = clock, lease_expires_at = NULL,
         withdrawn_at = CASE WHEN m.status = 'sending' THEN clock END,
         suppression_reason = CASE WHEN NEW.status <> 'active' THEN 'contact_inactive'
                                   WHEN NEW.deceased_at IS NOT NULL THEN 'contact_deceased'
                                   ELSE 'opted_out' END
   WHERE m.contact_id = NEW.id AND m.status IN ('queued', 'sending')
     AND (NEW.status <> 'active' OR NEW.deceased_at IS NOT NULL
          OR (m.channel = 'email' AND NEW.do_not_email)
          OR (m.channel = 'sms' AND NEW.do_not_sms)
          OR (m.channel = 'letter' AND NEW.do_not_mail));
  RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION outreach.unsubscribe(list text, contact_id bigint, source text DEFAULT 'api')
RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  l outreach.subscription_list := outreach._subscription_list($1);
  clock timestamptz := outreach.now();
BEGIN
  PERFORM outreach._require_contact($2);
  INSERT INTO outreach.subscription AS x (list_id, contact_id, status, unsubscribed_at, unsubscribe_source)
  VALUES (l.id, $2, 'unsubscribed', clock, $3)
  ON CONFLICT (list_id, contact_id) DO UPDATE
    SET status = 'unsubscribed', unsubscribed_at = excluded.unsubscribed_at,
        unsubscribe_source = excluded.unsubscribe_source, confirmation_token = NULL, token_expires_at = NULL;
  -- a new statement, so a message queued by a transaction we waited for above is seen
  UPDATE outreach.message m
     SET status = 'suppressed', suppression_reason = 'unsubscribed', updated_at = clock, lease_expires_at = NULL,
         withdrawn_at = CASE WHEN m.status = 'sending' THEN clock END
   WHERE m.contact_id = $2 AND m.subscription_list_id = l.id AND m.status IN ('queued', 'sending')
     AND m.message_class = 'marketing';
END $$;

CREATE OR REPLACE FUNCTION outreach.enqueue_message(contact_id bigint, template text, message_class text DEFAULT 'marketing',
                                         subscription_list text DEFAULT NULL, journey_id bigint DEFAULT NULL,
                                         enrollment_id bigint DEFAULT NULL, step_id bigint DEFAULT NULL,
                                         at timestamptz DEFAULT outreach.now())
RETURNS outreach.message LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  t outreach.template;
  c outreach.contact;
  l outreach.subscription_list;
  m outreach.message;
  cls text;
  chk record;
  r record;
  token text := replace(gen_random_uuid()::text, '-', '');
  once boolean := $6 IS NOT NULL AND $7 IS NOT NULL;
BEGIN
  IF $8 IS NULL THEN
    RAISE EXCEPTION 'enqueue_message needs a time (at)' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF once THEN
    SELECT * INTO m FROM outreach.message x WHERE x.enrollment_id = $6 AND x.step_id = $7;
    IF FOUND THEN RETURN m; END IF;
  END IF;
  t := outreach._template($2);
  IF $3 IS NULL OR $3 NOT IN ('marketing', 'transactional') THEN
    RAISE EXCEPTION 'invalid message class "%"', coalesce($3, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: marketing, transactional.';
  END IF;
  IF $3 = 'transactional' AND t.message_class = 'marketing' THEN
    RAISE EXCEPTION 'template "%" is a marketing template and cannot be sent as transactional', t.name
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Transactional messages skip list and frequency checks; only templates saved with message_class => ''transactional'' may be sent that way.';
  END IF;
  cls := t.message_class;
  IF $4 IS NOT NULL THEN
    l := outreach._subscription_list($4);
  END IF;

  -- Lock the contact: an opt-out committing first is seen, one committing later waits for
  -- us and then suppresses what we queued; concurrent enqueues for one contact serialise so
  -- the frequency cap counts exactly.
  SELECT * INTO c FROM outreach.contact x WHERE x.id = $1 FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'contact % does not exist', coalesce($1::text, 'NULL') USING ERRCODE = 'foreign_key_violation';
  END IF;
  IF once THEN                                   -- a concurrent call for this step may have won
    SELECT * INTO m FROM outreach.message x WHERE x.enrollment_id = $6 AND x.step_id = $7;
    IF FOUND THEN RETURN m; END IF;
  END IF;
  -- Write the pacing row before counting: under REPEATABLE READ / SERIALIZABLE a concurrent
  -- queueing for this contact and channel that committed after our snapshot is a
  -- serialization failure here instead of a message the cap did not count.
  IF cls = 'marketing' THEN
    INSERT INTO outreach.contact_pacing AS p (contact_id, channel, last_queued_at) VALUES ($1, t.channel, $8)
    ON CONFLICT (contact_id, channel) DO UPDATE SET last_queued_at = greatest(p.last_queued_at, excluded.last_queued_at);
  END IF;

  SELECT * INTO chk FROM outreach._consent(c, t.channel, cls, l.id, $8);
  SELECT * INTO r FROM outreach._render_for(t, c, token);

  INSERT INTO outreach.message AS x (contact_id, template_id, template_name, channel, message_class, subscription_list_id,
                                     journey_id, enrollment_id, step_id, status, suppression_reason, address,
                                     subject, body, sms_segments, unsubscribe_token, send_after, created_at, updated_at)
  VALUES ($1, t.id, t.name, t.channel, cls, l.id, $5, $6, $7,
          CASE WHEN chk.reason IS NULL THEN 'queued' ELSE 'suppressed' END, chk.reason, chk.address,
          r.subject, r.body, r.sms_segments, token,
          CASE WHEN chk.reason IS NULL THEN outreach.quiet_hours_end(t.channel, c.time_zone, $8) ELSE $8 END,
          $8, $8)
  ON CONFLICT (enrollment_id, step_id) WHERE enrollment_id IS NOT NULL AND step_id IS NOT NULL DO NOTHING
  RETURNING * INTO m;
  IF m.id IS NULL THEN
    SELECT * INTO m FROM outreach.message x WHERE x.enrollment_id = $6 AND x.step_id = $7;
  END IF;
  RETURN m;
END $$;
COMMENT ON FUNCTION outreach.enqueue_message(bigint, text, text, text, bigint, bigint, bigint, timestamptz) IS
  'Renders a template for a contact, checks consent and pacing, and stores one message (queued or suppressed with its reason); once per (enrollment, step)';

CREATE OR REPLACE FUNCTION outreach.claim_messages(worker text, batch_size integer DEFAULT 100, lease interval DEFAULT '5 minutes',
                                        max_attempts integer DEFAULT 5)
RETURNS SETOF outreach.message LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
DECLARE
  clock timestamptz := outreach.now();
  ids bigint[];
BEGIN
  IF coalesce(btrim($1), '') = '' THEN
    RAISE EXCEPTION 'a worker name is required' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Name the worker (e.g. host and process id) so leases can be traced.';
  END IF;
  IF $2 IS NULL OR $2 < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF $3 IS NULL OR $3 <= interval '0' THEN
    RAISE EXCEPTION 'lease must be a positive interval' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF $4 IS NULL OR $4 < 1 THEN
    RAISE EXCEPTION 'max_attempts must be at least 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- a message whose leases keep running out (a worker crashing on it) stops being retried
  UPDATE outreach.message m
     SET status = 'failed', lease_expires_at = NULL, finished_at = clock, updated_at = clock,
         detail = format('no delivery result after %s claims (last by %s)', m.attempts, m.claimed_by)
   WHERE m.id IN (SELECT x.id FROM outreach.message x
                   WHERE x.status = 'sending' AND x.lease_expires_at <= clock AND x.attempts >= $4
                   FOR UPDATE SKIP LOCKED);
  -- The earliest due first.  With no lease run out (the common case) that is a walk of
  -- message_due in order that stops after batch_size rows; the scan of both kinds at once
  -- fetches and sorts every due message per claim, which made draining a backlog quadratic.
  IF EXISTS (SELECT 1 FROM outreach.message x WHERE x.status = 'sending' AND x.lease_expires_at <= clock) THEN
    SELECT array_agg(p.id) INTO ids FROM (
      SELECT x.id FROM outreach.message x
       WHERE (x.status = 'queued' AND x.send_after <= clock)
          OR (x.status = 'sending' AND x.lease_expires_at <= clock)
       ORDER BY x.send_after, x.id
       LIMIT $2
       FOR UPDATE SKIP LOCKED) p;
  ELSE
    SELECT array_agg(p.id) INTO ids FROM (
      SELECT x.id FROM outreach.message x
       WHERE x.status = 'queued' AND x.send_after <= clock
       ORDER BY x.send_after, x.id
       LIMIT $2
       FOR UPDATE SKIP LOCKED) p;
  END IF;
  IF ids IS NULL THEN
    RETURN;
  END IF;
  -- Consent again at every claim, re-claims of expired leases included: a contact who is no
  -- longer active or alive, opted out of the channel or left the list since the message was
  -- queued does not get it; the message is suppressed with the reason (withdrawn when a
  -- worker held it before).  Under REPEATABLE READ a consent change committed after our
  -- snapshot has already touched these rows (the consent triggers), so locking them above
  -- was a serialization failure rather than a stale read.
  UPDATE outreach.message m
     SET status = 'suppressed', suppression_reason = r.reason, lease_expires_at = NULL, updated_at = clock,
         withdrawn_at = CASE WHEN m.status = 'sending' THEN clock END
    FROM (SELECT x.id,
                 CASE WHEN c.status <> 'active' THEN 'contact_inactive'
                      WHEN c.deceased_at IS NOT NULL THEN 'contact_deceased'
                      WHEN (x.channel = 'email' AND c.do_not_email) OR (x.channel = 'sms' AND c.do_not_sms)
                           OR (x.channel = 'letter' AND c.do_not_mail) THEN 'opted_out'
                      WHEN x.message_class = 'marketing' AND x.subscription_list_id IS NOT NULL
                           AND s.status IS DISTINCT FROM 'subscribed'
                        THEN CASE WHEN s.status = 'unsubscribed' THEN 'unsubscribed' ELSE 'not_subscribed' END
                 END AS reason
            FROM outreach.message x
            JOIN outreach.contact c ON c.id = x.contact_id
            LEFT JOIN outreach.subscription s ON s.list_id = x.subscription_list_id AND s.contact_id = x.contact_id
           WHERE x.id = ANY (ids)) r
   WHERE m.id = r.id AND r.reason IS NOT NULL;
  RETURN QUERY
  UPDATE outreach.message m
     SET status = 'sending', claimed_by = $1, claimed_at = clock, lease_expires_at = clock + $3,
         attempts = m.attempts + 1, updated_at = clock
   WHERE m.id = ANY (ids) AND m.status IN ('queued', 'sending')
  RETURNING m.*;
END $$;
COMMENT ON FUNCTION outreach.claim_messages(text, integer, interval, integer) IS
  'Claims due messages for a delivery worker (SKIP LOCKED) after checking consent again; a claim not reported within the lease returns to the pool, up to max_attempts claims, then the message fails';

CREATE OR REPLACE FUNCTION outreach.report_delivery(message_id bigint, status text, detail text DEFAULT NULL,
                                         hard_bounce boolean DEFAULT false, worker text DEFAULT NULL)
RETURNS outreach.message LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message;
  clock timestamptz := outreach.now();
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('sent', 'delivered', 'bounced', 'failed') THEN
    RAISE EXCEPTION 'invalid delivery status "%"', coalesce($2, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Workers report sent, delivered, bounced or failed.';
  END IF;
  IF coalesce($4, false) AND $2 <> 'bounced' THEN
    RAISE EXCEPTION 'hard_bounce applies to status bounced only' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT * INTO m FROM outreach.message x WHERE x.id = $1 FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'message % does not exist', coalesce($1::text, 'NULL') USING ERRCODE = 'no_data_found';
  END IF;
  IF $5 IS NOT NULL AND (m.status = 'sending' OR m.withdrawn_at IS NOT NULL) AND m.claimed_by IS DISTINCT FROM $5 THEN
    RAISE EXCEPTION 'worker "%" no longer holds message %', $5, m.id USING ERRCODE = 'object_not_in_prerequisite_state',
      DETAIL = format('The lease expired and worker "%s" claimed the message again.', m.claimed_by),
      HINT = 'Do not send it; the new claimant will.';
  END IF;
  IF m.status = $2 THEN
    RETURN m;                                    -- the same report twice (webhook retries) changes nothing
  END IF;
  -- Consent was withdrawn while the worker held the message: it stays suppressed, and what
  -- the worker did anyway (sent after the opt-out) is kept for audit, not refused and lost.
  IF m.status = 'suppressed' AND m.withdrawn_at IS NOT NULL THEN
    UPDATE outreach.message x
       SET late_report = $2, detail = coalesce($3, x.detail), updated_at = clock,
           sent_at = CASE WHEN $2 IN ('sent', 'delivered', 'bounced') THEN coalesce(x.sent_at, clock) ELSE x.sent_at END,
           finished_at = clock
     WHERE x.id = m.id
    RETURNING * INTO m;
    RETURN m;
  END IF;
  IF NOT ((m.status = 'sending' AND $2 IN ('sent', 'delivered', 'bounced', 'failed'))
          OR (m.status = 'sent' AND $2 IN ('delivered', 'bounced', 'failed'))) THEN
    RAISE EXCEPTION 'cannot mark message % as %: it is %', m.id, $2, m.status
      USING ERRCODE = 'object_not_in_prerequisite_state',
            DETAIL = 'Messages go queued -> sending (claimed) -> sent -> delivered, bounced or failed.',
            HINT = CASE WHEN m.status = 'queued' THEN 'Claim the message with outreach.claim_messages() first.'
                        ELSE 'The message is already final.' END;
  END IF;
  UPDATE outreach.message x
     SET status = $2, detail = coalesce($3, x.detail), lease_expires_at = NULL, updated_at = clock,
         sent_at = CASE WHEN $2 IN ('sent', 'delivered') THEN coalesce(x.sent_at, clock) ELSE x.sent_at END,
         delivered_at = CASE WHEN $2 = 'delivered' THEN clock ELSE x.delivered_at END,
         finished_at = CASE WHEN $2 IN ('delivered', 'bounced', 'failed') THEN clock ELSE x.finished_at END
   WHERE x.id = m.id
  RETURNING * INTO m;
  IF $2 = 'bounced' THEN
    INSERT INTO outreach.interaction (message_id, contact_id, kind, url, occurred_at)
    VALUES (m.id, m.contact_id, 'bounced', NULL, clock);
    IF $4 THEN
      PERFORM outreach._opt_out(m.contact_id, m.channel);
    END IF;
  END IF;
  RETURN m;
END $$;
COMMENT ON FUNCTION outreach.report_delivery(bigint, text, text, boolean, text) IS
  'A worker''s delivery result; a hard bounce sets the contact''s do_not flag for the channel';

CREATE OR REPLACE FUNCTION outreach.report_interaction(message_id bigint, kind text, url text DEFAULT NULL,
                                            at timestamptz DEFAULT outreach.now())
RETURNS bigint LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message;
  list_name text;
  new_id bigint;
BEGIN
  IF $2 IS NULL OR $2 NOT IN ('opened', 'clicked', 'unsubscribed', 'bounced', 'complained') THEN
    RAISE EXCEPTION 'invalid interaction kind "%"', coalesce($2, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: opened, clicked, unsubscribed, bounced, complained.';
  END IF;
  IF $2 = 'clicked' AND coalesce(btrim($3), '') = '' THEN
    RAISE EXCEPTION 'a click needs the url that was clicked' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  SELECT * INTO m FROM outreach.message x WHERE x.id = $1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'message % does not exist', coalesce($1::text, 'NULL') USING ERRCODE = 'no_data_found';
  END IF;
  IF m.status IN ('queued', 'suppressed', 'failed') AND m.late_report IS NULL THEN
    RAISE EXCEPTION 'message % was never sent, so it cannot be %', m.id, $2
      USING ERRCODE = 'object_not_in_prerequisite_state', DETAIL = format('The message is %s.', m.status);
  END IF;
  IF $2 = 'bounced' THEN
    PERFORM outreach.report_delivery(m.id, 'bounced');
    SELECT max(i.id) INTO new_id FROM outreach.interaction i WHERE i.message_id = m.id AND i.kind = 'bounced';
    RETURN new_id;
  END IF;
  INSERT INTO outreach.interaction (message_id, contact_id, kind, url, occurred_at)
  VALUES (m.id, m.contact_id, $2, $3, coalesce($4, outreach.now()))
  RETURNING id INTO new_id;
  IF $2 IN ('opened', 'clicked') AND m.status = 'sent' THEN   -- an open proves delivery
    PERFORM outreach.report_delivery(m.id, 'delivered');
  ELSIF $2 = 'unsubscribed' THEN
    SELECT l.name INTO list_name FROM outreach.subscription_list l WHERE l.id = m.subscription_list_id;
    IF list_name IS NOT NULL THEN
      PERFORM outreach.unsubscribe(list_name, m.contact_id, 'message ' || m.id);
    ELSE
      PERFORM outreach._opt_out(m.contact_id, m.channel);
    END IF;
  ELSIF $2 = 'complained' THEN
    PERFORM outreach._opt_out(m.contact_id, m.channel);
  END IF;
  RETURN new_id;
END $$;
COMMENT ON FUNCTION outreach.report_interaction(bigint, text, text, timestamptz) IS
  'Records what a recipient did; unsubscribed leaves the message''s list (or opts out of the channel) at once, complained opts out';

CREATE OR REPLACE FUNCTION outreach.report_deliveries(message_ids bigint[], statuses text[], details text[] DEFAULT NULL,
                                           hard_bounces boolean[] DEFAULT NULL, worker text DEFAULT NULL)
RETURNS TABLE (message_id bigint, status text, outcome text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
#variable_conflict use_column
DECLARE
  clock timestamptz := outreach.now();
  n int := coalesce(cardinality($1), 0);
  bad text;
BEGIN
  IF n <> coalesce(cardinality($2), 0) OR ($3 IS NOT NULL AND cardinality($3) <> n)
     OR ($4 IS NOT NULL AND cardinality($4) <> n) THEN
    RAISE EXCEPTION 'report_deliveries needs arrays of one length' USING ERRCODE = 'invalid_parameter_value',
      DETAIL = format('%s message ids, %s statuses, %s details, %s hard_bounces.', n, coalesce(cardinality($2), 0),
                      coalesce(cardinality($3)::text, 'no'), coalesce(cardinality($4)::text, 'no')),
      HINT = 'Pass one status (and detail, hard_bounce when given) per message id.';
  END IF;
  SELECT coalesce(u.st, 'NULL') INTO bad FROM unnest($2) u(st)
   WHERE u.st IS NULL OR u.st NOT IN ('sent', 'delivered', 'bounced', 'failed') LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invalid delivery status "%"', bad USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Workers report sent, delivered, bounced or failed.';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest($2, $4) u(st, hard) WHERE u.hard AND u.st <> 'bounced') THEN
    RAISE EXCEPTION 'hard_bounce applies to status bounced only' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  SELECT u.id::text INTO bad FROM unnest($1) u(id) GROUP BY u.id HAVING count(*) > 1 OR u.id IS NULL LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'message % is listed twice', coalesce(bad, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Report each message once per call.';
  END IF;
  -- lock in id order: two workers reporting overlapping sets never deadlock
  PERFORM 1 FROM outreach.message x WHERE x.id = ANY ($1) ORDER BY x.id FOR UPDATE;

  RETURN QUERY
  WITH judged AS MATERIALIZED (
    SELECT u.id, u.st, u.det, coalesce(u.hard, false) AS hard, u.ord, m.status AS cur, m.contact_id,
           CASE WHEN m.id IS NULL THEN 'refused'
                WHEN $5 IS NOT NULL AND (m.status = 'sending' OR m.withdrawn_at IS NOT NULL) AND m.claimed_by IS DISTINCT FROM $5
                  THEN 'refused'
                WHEN m.status = u.st THEN 'unchanged'
                WHEN m.status = 'suppressed' AND m.withdrawn_at IS NOT NULL THEN 'late'
                WHEN m.status = 'sending' OR (m.status = 'sent' AND u.st IN ('delivered', 'bounced', 'failed')) THEN 'recorded'
                ELSE 'refused' END AS outcome,
           CASE WHEN m.id IS NULL THEN format('message %s does not exist', u.id)
                WHEN $5 IS NOT NULL AND (m.status = 'sending' OR m.withdrawn_at IS NOT NULL) AND m.claimed_by IS DISTINCT FROM $5
                  THEN format('worker "%s" no longer holds message %s', $5, m.id)
                WHEN m.status = u.st THEN NULL
                WHEN m.status = 'suppressed' AND m.withdrawn_at IS NOT NULL
                  THEN format('consent was withdrawn (%s) while the message was claimed; kept for audit', m.suppression_reason)
                WHEN m.status = 'sending' OR (m.status = 'sent' AND u.st IN ('delivered', 'bounced', 'failed')) THEN NULL
                ELSE format('cannot mark message %s as %s: it is %s', m.id, u.st, m.status) END AS why
      FROM unnest($1, $2, $3, $4) WITH ORDINALITY u(id, st, det, hard, ord)
      LEFT JOIN outreach.message m ON m.id = u.id),
  recorded AS (
    UPDATE outreach.message x
       SET status = b.st, detail = coalesce(b.det, x.detail), lease_expires_at = NULL, updated_at = clock,
           sent_at = CASE WHEN b.st IN ('sent', 'delivered') THEN coalesce(x.sent_at, clock) ELSE x.sent_at END,
           delivered_at = CASE WHEN b.st = 'delivered' THEN clock ELSE x.delivered_at END,
           finished_at = CASE WHEN b.st IN ('delivered', 'bounced', 'failed') THEN clock ELSE x.finished_at END
      FROM judged b
     WHERE x.id = b.id AND b.outcome = 'recorded'
    RETURNING x.id),
  late AS (
    UPDATE outreach.message x
       SET late_report = b.st, detail = coalesce(b.det, x.detail), updated_at = clock, finished_at = clock,
           sent_at = CASE WHEN b.st IN ('sent', 'delivered', 'bounced') THEN coalesce(x.sent_at, clock) ELSE x.sent_at END
      FROM judged b
     WHERE x.id = b.id AND b.outcome = 'late'
    RETURNING x.id),
  bounces AS (
    INSERT INTO outreach.interaction (message_id, contact_id, kind, url, occurred_at)
    SELECT b.id, b.contact_id, 'bounced', NULL, clock FROM judged b
     WHERE b.outcome = 'recorded' AND b.st = 'bounced' ORDER BY b.ord
    RETURNING 1)
  SELECT b.id, CASE WHEN b.outcome = 'recorded' THEN b.st ELSE b.cur END, b.outcome, b.why
    FROM judged b ORDER BY b.ord;

  -- a hard bounce opts the contact out of the channel (after the messages are written: the
  -- consent trigger then sees them)
  UPDATE outreach.contact c
     SET do_not_email = c.do_not_email OR h.email, do_not_sms = c.do_not_sms OR h.sms, do_not_mail = c.do_not_mail OR h.letter
    FROM (SELECT m.contact_id, bool_or(m.channel = 'email') AS email, bool_or(m.channel = 'sms') AS sms,
                 bool_or(m.channel = 'letter') AS letter
            FROM unnest($1, $4) u(id, hard) JOIN outreach.message m ON m.id = u.id
           WHERE u.hard AND m.status = 'bounced' GROUP BY m.contact_id) h
   WHERE c.id = h.contact_id;
END $$;
COMMENT ON FUNCTION outreach.report_deliveries(bigint[], text[], text[], boolean[], text) IS
  'Many delivery results in one call: one row per message says recorded, unchanged, late (withdrawn while claimed, kept for audit) or refused with the reason';

CREATE OR REPLACE FUNCTION outreach.report_interactions(message_ids bigint[], kinds text[], urls text[] DEFAULT NULL,
                                             ats timestamptz[] DEFAULT NULL)
RETURNS TABLE (message_id bigint, interaction_id bigint, outcome text, detail text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
#variable_conflict use_column
DECLARE
  clock timestamptz := outreach.now();
  n int := coalesce(cardinality($1), 0);
  bad text;
  r record;
BEGIN
  IF n <> coalesce(cardinality($2), 0) OR ($3 IS NOT NULL AND cardinality($3) <> n)
     OR ($4 IS NOT NULL AND cardinality($4) <> n) THEN
    RAISE EXCEPTION 'report_interactions needs arrays of one length' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Pass one kind (and url, time when given) per message id.';
  END IF;
  SELECT coalesce(u.k, 'NULL') INTO bad FROM unnest($2) u(k)
   WHERE u.k IS NULL OR u.k NOT IN ('opened', 'clicked', 'unsubscribed', 'bounced', 'complained') LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'invalid interaction kind "%"', bad USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: opened, clicked, unsubscribed, bounced, complained.';
  END IF;
  IF EXISTS (SELECT 1 FROM unnest($2, $3) u(k, url) WHERE u.k = 'clicked' AND coalesce(btrim(u.url), '') = '') THEN
    RAISE EXCEPTION 'a click needs the url that was clicked' USING ERRCODE = 'null_value_not_allowed';
  END IF;

  CREATE TEMP TABLE IF NOT EXISTS outreach_interaction_batch (
    id bigint, k text, url text, at timestamptz, ord bigint, iid bigint, outcome text, why text,
    contact_id bigint, cur text
  ) ON COMMIT DROP;
  TRUNCATE outreach_interaction_batch;
  INSERT INTO outreach_interaction_batch
  SELECT u.id, u.k, u.url, coalesce(u.at, clock), u.ord, NULL,
         CASE WHEN m.id IS NULL OR (m.status IN ('queued', 'suppressed', 'failed') AND m.late_report IS NULL) THEN 'refused'
              ELSE 'recorded' END,
         CASE WHEN m.id IS NULL THEN format('message %s does not exist', u.id)
              WHEN m.status IN ('queued', 'suppressed', 'failed') AND m.late_report IS NULL
                THEN format('message %s was never sent, so it cannot be %s', m.id, u.k) END,
         m.contact_id, m.status
    FROM unnest($1, $2, $3, $4) WITH ORDINALITY u(id, k, url, at, ord)
    LEFT JOIN outreach.message m ON m.id = u.id;

  -- opens and clicks, the bulk of the traffic: one insert, then one update for delivery
  UPDATE outreach_interaction_batch b SET iid = nextval(pg_get_serial_sequence('outreach.interaction', 'id'))
   WHERE b.outcome = 'recorded' AND b.k IN ('opened', 'clicked');
  INSERT INTO outreach.interaction (id, message_id, contact_id, kind, url, occurred_at)
  SELECT b.iid, b.id, b.contact_id, b.k, b.url, b.at FROM outreach_interaction_batch b
   WHERE b.iid IS NOT NULL ORDER BY b.ord;
  -- an open proves delivery
  PERFORM 1 FROM outreach.message x
   WHERE x.id IN (SELECT b.id FROM outreach_interaction_batch b WHERE b.iid IS NOT NULL) AND x.status = 'sent'
   ORDER BY x.id FOR UPDATE;
  UPDATE outreach.message x
     SET status = 'delivered', lease_expires_at = NULL, updated_at = clock, sent_at = coalesce(x.sent_at, clock),
         delivered_at = clock, finished_at = clock
   WHERE x.id IN (SELECT b.id FROM outreach_interaction_batch b WHERE b.iid IS NOT NULL) AND x.status = 'sent';

  -- unsubscribes, bounces and complaints change consent: one by one, through the same
  -- path as the single call, in the order given
  FOR r IN SELECT b.ord, b.id, b.k, b.url, b.at FROM outreach_interaction_batch b
            WHERE b.outcome = 'recorded' AND b.k NOT IN ('opened', 'clicked') ORDER BY b.ord LOOP
    UPDATE outreach_interaction_batch b SET iid = outreach.report_interaction(r.id, r.k, r.url, r.at) WHERE b.ord = r.ord;
  END LOOP;

  RETURN QUERY SELECT b.id, b.iid, b.outcome, b.why FROM outreach_interaction_batch b ORDER BY b.ord;
END $$;
COMMENT ON FUNCTION outreach.report_interactions(bigint[], text[], text[], timestamptz[]) IS
  'Many interactions in one call (opens and clicks set-based); one row per input says recorded (with the interaction id) or refused with the reason';

CREATE OR REPLACE FUNCTION outreach._render_batchable(tokens text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT NOT EXISTS (SELECT 1 FROM unnest($1) t
                      WHERE t !~ '^contact\.' AND t NOT IN ('unsubscribe_url', 'sender.postal_address'))
$$;

CREATE OR REPLACE FUNCTION outreach._enqueue_batch(requests outreach.message_request[], at timestamptz)
RETURNS TABLE (enrollment_id bigint, step_id bigint, message_id bigint, status text, error text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off
  SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET enable_material = off AS $$
#variable_conflict use_column
DECLARE
  base text;
  default_tz text;
BEGIN
  SELECT s.unsubscribe_base_url, s.default_time_zone INTO base, default_tz FROM outreach.messaging_settings s;
  PERFORM 1 FROM outreach.contact c
   WHERE c.id IN (SELECT r.contact_id FROM unnest($1) r) ORDER BY c.id FOR NO KEY UPDATE;
  -- The pacing rows of the marketing messages that may count against a cap: not those the
  -- contact's own row already suppresses (inactive, deceased, no or invalid address, opted
  -- out: that row is locked above, so the reason holds until commit and the message never
  -- counts); the subscription and cap checks come after, so those messages write it.
  INSERT INTO outreach.contact_pacing AS p (contact_id, channel, last_queued_at)
  SELECT DISTINCT r.contact_id, t.channel, $2 FROM unnest($1) r JOIN outreach.template t ON t.name = r.template
    JOIN outreach.contact c ON c.id = r.contact_id
   WHERE t.message_class = 'marketing' AND NOT (r.message_class = 'transactional')
     AND c.status = 'active' AND c.deceased_at IS NULL
     AND CASE t.channel
           WHEN 'email' THEN btrim(c.email) ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:].]+$' AND NOT c.do_not_email
           WHEN 'sms' THEN btrim(c.phone) ~ '^\+[1-9][0-9]{1,14}$' AND NOT c.do_not_sms
           ELSE coalesce(btrim(c.address_line), '') <> '' AND coalesce(btrim(c.city), '') <> ''
                AND coalesce(btrim(c.postal_code), '') <> '' AND coalesce(btrim(c.country), '') <> '' AND NOT c.do_not_mail END
     AND NOT EXISTS (SELECT 1 FROM outreach.message m WHERE m.enrollment_id = r.enrollment_id AND m.step_id = r.step_id)
   ORDER BY 1, 2
  ON CONFLICT (contact_id, channel) DO UPDATE SET last_queued_at = greatest(p.last_queued_at, excluded.last_queued_at);
  PERFORM 1 FROM outreach.subscription s
   WHERE (s.list_id, s.contact_id) IN (SELECT l.id, r.contact_id FROM unnest($1) r
                                         JOIN outreach.subscription_list l ON l.name = r.subscription_list)
   ORDER BY s.list_id, s.contact_id FOR SHARE;

  -- the templates of the batch, judged once each (not once per message)
  WITH tpl AS MATERIALIZED (
    SELECT t.*, outreach._render_batchable(t.tokens) AS batchable FROM outreach.template t
     WHERE t.name IN (SELECT DISTINCT r.template FROM unnest($1) r))
  INSERT INTO outreach.message AS x (contact_id, template_id, template_name, channel, message_class, subscription_list_id,
                                     journey_id, enrollment_id, step_id, status, suppression_reason, address,
                                     subject, body, sms_segments, unsubscribe_token, send_after, created_at, updated_at)
  SELECT q.contact_id, q.tid, q.tname, q.channel, q.cls, q.list_id, q.journey_id, q.enrollment_id, q.step_id,
         CASE WHEN q.reason IS NULL THEN 'queued' ELSE 'suppressed' END, q.reason, q.address,
         rd.subject, rd.body, CASE WHEN q.channel = 'sms' THEN outreach.sms_segments(rd.body) END, q.token,
         CASE WHEN q.reason IS NOT NULL OR q.qs IS NULL THEN $2
              WHEN q.qs > q.qe THEN CASE WHEN q.lt::time >= q.qs THEN ((q.lt::date + 1) + q.qe) AT TIME ZONE q.tz
                                         WHEN q.lt::time < q.qe THEN (q.lt::date + q.qe) AT TIME ZONE q.tz
                                         ELSE $2 END
              WHEN q.lt::time >= q.qs AND q.lt::time < q.qe THEN (q.lt::date + q.qe) AT TIME ZONE q.tz
              ELSE $2 END,
         $2, $2
    FROM (
      SELECT j.*,
             CASE WHEN j.pre IS NULL AND j.cls = 'marketing' AND EXISTS (
                    SELECT 1 FROM outreach.frequency_cap f
                     WHERE f.channel = j.channel
                       AND (SELECT count(*) FROM outreach.message m
                             WHERE m.contact_id = j.contact_id AND m.channel = j.channel AND m.message_class = 'marketing'
                               AND m.status IN ('queued', 'sending', 'sent', 'delivered')
                               AND m.send_after > $2 - f.per) + j.rank - 1 >= f.max_messages)
                  THEN 'frequency_cap' ELSE j.pre END AS reason
        FROM (
          -- rank: the place of a marketing message among those of its contact and channel in
          -- this batch that pass every other check (they count against the cap in order)
          SELECT j0.*, row_number() OVER (PARTITION BY j0.contact_id, j0.channel, (j0.pre IS NULL AND j0.cls = 'marketing')
                                          ORDER BY j0.ord) AS rank
            FROM (
          SELECT r.*, t.id AS tid, t.name AS tname, t.channel, t.message_class AS cls, t.subject AS t_subject,
                 t.body AS t_body, t.format = 'html' AS html, t.tokens, t.sender_postal_address AS postal,
                 t.batchable, l.id AS list_id, c AS c, a AS a,
                 replace(gen_random_uuid()::text, '-', '') AS token,
                 qh.starts AS qs, qh.ends AS qe,
                 coalesce(nullif(btrim(c.time_zone), ''), default_tz, 'UTC') AS tz,
                 $2 AT TIME ZONE coalesce(nullif(btrim(c.time_zone), ''), default_tz, 'UTC') AS lt,
                 CASE WHEN c.status <> 'active' OR c.deceased_at IS NOT NULL THEN NULL
                      WHEN t.channel = 'email' THEN nullif(btrim(c.email), '')
                      WHEN t.channel = 'sms' THEN nullif(btrim(c.phone), '')
                      WHEN coalesce(btrim(c.address_line), '') = '' OR coalesce(btrim(c.city), '') = ''
                           OR coalesce(btrim(c.postal_code), '') = '' OR coalesce(btrim(c.country), '') = '' THEN NULL
                      ELSE concat_ws(E'\n', concat_ws(' ', c.first_name, c.last_name), c.address_line,
                                     concat_ws(' ', c.postal_code, c.city, c.state), c.country) END AS address,
                 CASE WHEN c.status <> 'active' THEN 'contact_inactive'
                      WHEN c.deceased_at IS NOT NULL THEN 'contact_deceased'
                      WHEN t.channel = 'email' AND nullif(btrim(c.email), '') IS NULL THEN 'no_address'
                      WHEN t.channel = 'email' AND btrim(c.email) !~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:].]+$' THEN 'invalid_address'
                      WHEN t.channel = 'email' AND c.do_not_email THEN 'opted_out'
                      WHEN t.channel = 'sms' AND nullif(btrim(c.phone), '') IS NULL THEN 'no_address'
                      WHEN t.channel = 'sms' AND btrim(c.phone) !~ '^\+[1-9][0-9]{1,14}$' THEN 'invalid_address'
                      WHEN t.channel = 'sms' AND c.do_not_sms THEN 'opted_out'
                      WHEN t.channel = 'letter' AND coalesce(btrim(c.address_line), '') = '' AND coalesce(btrim(c.city), '') = ''
                           AND coalesce(btrim(c.postal_code), '') = '' AND coalesce(btrim(c.country), '') = '' THEN 'no_address'
                      WHEN t.channel = 'letter' AND (coalesce(btrim(c.address_line), '') = '' OR coalesce(btrim(c.city), '') = ''
                           OR coalesce(btrim(c.postal_code), '') = '' OR coalesce(btrim(c.country), '') = '') THEN 'invalid_address'
                      WHEN t.channel = 'letter' AND c.do_not_mail THEN 'opted_out'
                      WHEN t.message_class = 'transactional' THEN NULL
                      WHEN l.id IS NOT NULL AND s.status = 'unsubscribed' THEN 'unsubscribed'
                      WHEN l.id IS NOT NULL AND s.status IS DISTINCT FROM 'subscribed' THEN 'not_subscribed' END AS pre
            FROM unnest($1) WITH ORDINALITY r(enrollment_id, step_id, journey_id, contact_id, template, message_class,
                                              subscription_list, ord)
            JOIN tpl t ON t.name = r.template
            JOIN outreach.contact c ON c.id = r.contact_id
            LEFT JOIN outreach.account a ON a.id = c.account_id
            LEFT JOIN outreach.subscription_list l ON l.name = r.subscription_list
            LEFT JOIN outreach.subscription s ON s.list_id = l.id AND s.contact_id = r.contact_id
            LEFT JOIN outreach.quiet_hours qh ON qh.channel = t.channel
           WHERE NOT (r.message_class = 'transactional' AND t.message_class = 'marketing')
             AND (r.subscription_list IS NULL OR l.id IS NOT NULL)
             AND NOT EXISTS (SELECT 1 FROM outreach.message m WHERE m.enrollment_id = r.enrollment_id AND m.step_id = r.step_id)
          ) j0
        ) j
      OFFSET 0                                   -- judge each message once
    ) q
   CROSS JOIN LATERAL (
     SELECT CASE WHEN q.batchable THEN outreach._render_contact(q.t_subject, false, q.tokens, q.c, q.a, base || '?token=' || q.token, q.postal)
                 ELSE (SELECT (outreach._render_for(tt, q.c, q.token)).subject FROM outreach.template tt WHERE tt.id = q.tid) END AS subject,
            CASE WHEN q.batchable THEN outreach._render_contact(q.t_body, q.html, q.tokens, q.c, q.a, base || '?token=' || q.token, q.postal)
                 ELSE (SELECT (outreach._render_for(tt, q.c, q.token)).body FROM outreach.template tt WHERE tt.id = q.tid) END AS body) rd
   ORDER BY q.ord
  ON CONFLICT (enrollment_id, step_id) WHERE enrollment_id IS NOT NULL AND step_id IS NOT NULL DO NOTHING;

  RETURN QUERY
  SELECT r.enrollment_id, r.step_id, m.id, m.status,
         CASE WHEN m.id IS NOT NULL THEN NULL
              WHEN t.id IS NULL THEN format('template "%s" does not exist', r.template)
              WHEN r.message_class = 'transactional' AND t.message_class = 'marketing'
                THEN format('template "%s" is a marketing template and cannot be sent as transactional', t.name)
              WHEN r.subscription_list IS NOT NULL AND NOT EXISTS (SELECT 1 FROM outreach.subscription_list l WHERE l.name = r.subscription_list)
                THEN format('subscription list "%s" does not exist', r.subscription_list)
              WHEN NOT EXISTS (SELECT 1 FROM outreach.contact c WHERE c.id = r.contact_id)
                THEN format('contact %s does not exist', r.contact_id)
              ELSE 'the message was not stored' END
    FROM unnest($1) r
    LEFT JOIN outreach.template t ON t.name = r.template
    LEFT JOIN outreach.message m ON m.enrollment_id = r.enrollment_id AND m.step_id = r.step_id;
END $$;

-- Grants (0.3) ---------------------------------------------------------------------------
-- Delivery workers (outreach_sender) claim and report; marketers work with templates,
-- lists and the outbox; the admin does everything.  Internal _helpers get no grants.
-- (Table privileges and row-level security are the access part's, 98_access.sql.)
REVOKE ALL ON FUNCTION outreach.report_deliveries(bigint[], text[], text[], boolean[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.report_interactions(bigint[], text[], text[], timestamptz[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._render_contact(text, boolean, text[], outreach.contact, outreach.account, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._render_batchable(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._enqueue_batch(outreach.message_request[], timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  outreach.claim_messages(text, integer, interval, integer),
  outreach.report_delivery(bigint, text, text, boolean, text),
  outreach.report_deliveries(bigint[], text[], text[], boolean[], text),
  outreach.report_interaction(bigint, text, text, timestamptz),
  outreach.report_interactions(bigint[], text[], text[], timestamptz[]),
  outreach.unsubscribe_by_token(text)
  TO outreach_sender, outreach_admin;
GRANT EXECUTE ON FUNCTION
  outreach.create_template(text, text, text, text, text, text, text),
  outreach.alter_template(text, text, text, text, text, text, text),
  outreach.drop_template(text),
  outreach.template_tokens(),
  outreach.preview_template(text, bigint),
  outreach.sms_segments(text),
  outreach.create_subscription_list(text, boolean, interval),
  outreach.subscribe(text, bigint, text),
  outreach.confirm_subscription(text),
  outreach.unsubscribe(text, bigint, text),
  outreach.enqueue_message(bigint, text, text, text, bigint, bigint, bigint, timestamptz),
  outreach.quiet_hours_end(text, text, timestamptz)
  TO outreach_marketer, outreach_admin;
