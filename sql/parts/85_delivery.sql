-- 85_delivery.sql: the database side of outreach-gateway, the delivery daemon (DESIGN §9,
-- docs/delivery.md, C in src/gateway/).
--
-- Owns: delivery settings (double opt-in confirmation mail, SMS HELP reply), per-template
-- tracking switches, the confirmation mail that outreach.subscribe() asks for on a double
-- opt-in list (queued into the outbox as a transactional email by a trigger), and the
-- outreach.gateway_* functions the gateway and its HTTP endpoints call.
--
-- The gateway logs in as a member of outreach_sender and calls only the gateway_* functions
-- below; they are SECURITY DEFINER so that role needs no table privileges.  Links are signed
-- by the gateway (HMAC-SHA256 with a secret that stays in the gateway's configuration), so
-- these functions trust the message id they are given: only outreach_sender may call them.
-- The placeholder unsubscribe URL that the renderer writes
-- (messaging_settings.unsubscribe_base_url || '?token=' || message.unsubscribe_token) is
-- rewritten by the gateway at send time into a signed URL under its public base URL;
-- gateway_claim returns that placeholder so the gateway can find it.

-- Settings ------------------------------------------------------------------------------

CREATE TABLE outreach.delivery_settings (
  singleton            boolean PRIMARY KEY DEFAULT true CONSTRAINT delivery_settings_one_row CHECK (singleton),
  confirmation_subject text NOT NULL DEFAULT 'Please confirm your subscription to {{list.name}}',
  confirmation_body    text NOT NULL DEFAULT
    '<p>Hello {{contact.first_name}},</p><p>Please confirm that you want to receive "{{list.name}}":</p>'
    '<p><a href="{{confirm_url}}">Confirm my subscription</a></p>'
    '<p>If you did not ask for this, ignore this message and nothing will happen.</p>',
  sms_help_reply       text NOT NULL DEFAULT
    'Reply STOP to stop messages, START to receive them again.',
  sms_stop_reply       text NOT NULL DEFAULT 'You will receive no more text messages from us. Reply START to undo.',
  sms_start_reply      text NOT NULL DEFAULT 'You will receive our text messages again. Reply STOP to stop.'
);
INSERT INTO outreach.delivery_settings DEFAULT VALUES;
SELECT outreach._dump('outreach.delivery_settings');
COMMENT ON TABLE outreach.delivery_settings IS
  'One row: the double opt-in confirmation mail ({{list.name}}, {{contact.first_name}}, {{confirm_url}}) and the SMS keyword replies';

CREATE TABLE outreach.template_tracking (
  template_id    bigint PRIMARY KEY REFERENCES outreach.template ON DELETE CASCADE,
  open_pixel     boolean NOT NULL DEFAULT true,
  click_tracking boolean NOT NULL DEFAULT true
);
SELECT outreach._dump('outreach.template_tracking');
COMMENT ON TABLE outreach.template_tracking IS
  'Per template, whether the gateway adds an open pixel and rewrites links to tracked click URLs (no row: both on)';

CREATE FUNCTION outreach.set_template_tracking(template text, open_pixel boolean DEFAULT true,
                                               click_tracking boolean DEFAULT true)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  t outreach.template := outreach._template($1);
BEGIN
  IF $2 IS NULL OR $3 IS NULL THEN
    RAISE EXCEPTION 'open_pixel and click_tracking must not be null' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  INSERT INTO outreach.template_tracking AS x (template_id, open_pixel, click_tracking) VALUES (t.id, $2, $3)
  ON CONFLICT (template_id) DO UPDATE SET open_pixel = excluded.open_pixel, click_tracking = excluded.click_tracking;
END $$;
COMMENT ON FUNCTION outreach.set_template_tracking(text, boolean, boolean) IS
  'Turns the open pixel and click tracking of a template''s email on or off';

-- Double opt-in confirmation mail ----------------------------------------------------------

-- The placeholder the gateway rewrites into a signed public URL (like the unsubscribe URL).
CREATE FUNCTION outreach._confirm_placeholder(token text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT 'https://outreach.invalid/confirm?token=' || $1
$$;

-- Whenever a subscription becomes pending with a new token, queue the confirmation email.
-- It is transactional (the contact asked for it) but still needs a usable address; without
-- one it is stored suppressed with the reason, like every other message.
CREATE FUNCTION outreach._queue_confirmation_mail() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c outreach.contact;
  l outreach.subscription_list;
  s outreach.delivery_settings;
  chk record;
  keys text[];
  vals text[];
  clock timestamptz := outreach.now();
BEGIN
  SELECT * INTO c FROM outreach.contact x WHERE x.id = NEW.contact_id;
  SELECT * INTO l FROM outreach.subscription_list x WHERE x.id = NEW.list_id;
  SELECT * INTO s FROM outreach.delivery_settings x;
  SELECT * INTO chk FROM outreach._consent(c, 'email', 'transactional', NULL, clock);
  keys := ARRAY['list.name', 'contact.first_name', 'contact.last_name', 'confirm_url'];
  vals := ARRAY[l.name, c.first_name, c.last_name, outreach._confirm_placeholder(NEW.confirmation_token)];
  INSERT INTO outreach.message (contact_id, template_id, template_name, channel, message_class, subscription_list_id,
                                status, suppression_reason, address, subject, body, unsubscribe_token,
                                send_after, created_at, updated_at)
  VALUES (c.id, NULL, 'outreach:confirm_subscription', 'email', 'transactional', l.id,
          CASE WHEN chk.reason IS NULL THEN 'queued' ELSE 'suppressed' END, chk.reason, chk.address,
          outreach._render(s.confirmation_subject, false, keys, vals),
          outreach._render(s.confirmation_body, true, keys, vals),
          replace(gen_random_uuid()::text, '-', ''), clock, clock, clock);
  RETURN NULL;
END $$;
CREATE TRIGGER subscription_confirmation_mail AFTER INSERT OR UPDATE OF confirmation_token ON outreach.subscription
  FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.confirmation_token IS NOT NULL)
  EXECUTE FUNCTION outreach._queue_confirmation_mail();

-- The gateway's send loop ---------------------------------------------------------------

-- Claims a batch (outreach.claim_messages: SKIP LOCKED, leases) and returns what the gateway
-- needs to send each message, attachments included (outreach.message_attachment, e.g. an
-- event's invite.ics), all in this one statement: no per-message round trip.  attachments is
-- NULL or one item per attachment (in id order) joined by U+001E; an item is
-- filename U+001F content_type U+001F content, the content base64 in 76-character lines
-- (ready for a Content-Transfer-Encoding: base64 part), control characters in the filename
-- and content type replaced by spaces, so the separators cannot occur inside an item.
CREATE FUNCTION outreach.gateway_claim(worker text, batch_size integer DEFAULT 100,
                                       lease interval DEFAULT '5 minutes', max_attempts integer DEFAULT 5)
RETURNS TABLE (id bigint, channel text, message_class text, address text, subject text, body text,
               html boolean, unsubscribe_url text, list_name text, contact_name text,
               open_pixel boolean, click_tracking boolean, attempts integer, contact_id bigint, attachments text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  base text;
BEGIN
  SELECT s.unsubscribe_base_url INTO base FROM outreach.messaging_settings s;
  RETURN QUERY
  WITH claimed AS MATERIALIZED (
    SELECT * FROM outreach.claim_messages(worker => $1, batch_size => $2, lease => $3, max_attempts => $4)),
  files AS (
    SELECT a.message_id,
           string_agg(regexp_replace(a.filename, '[[:cntrl:]]', ' ', 'g') || chr(31)
                      || regexp_replace(a.content_type, '[[:cntrl:]]', ' ', 'g') || chr(31)
                      || encode(convert_to(a.content, 'UTF8'), 'base64'), chr(30) ORDER BY a.id) AS packed
      FROM outreach.message_attachment a
     WHERE a.message_id IN (SELECT c.id FROM claimed c WHERE c.channel = 'email')
     GROUP BY a.message_id)
  SELECT m.id, m.channel, m.message_class, m.address, m.subject, m.body,
         CASE WHEN m.template_id IS NULL THEN m.channel = 'email' ELSE coalesce(t.format = 'html', false) END,
         base || '?token=' || m.unsubscribe_token, l.name,
         nullif(btrim(concat_ws(' ', c.first_name, c.last_name)), ''),
         coalesce(tt.open_pixel, true), coalesce(tt.click_tracking, true), m.attempts, m.contact_id, f.packed
    FROM claimed m
    JOIN outreach.contact c ON c.id = m.contact_id
    LEFT JOIN outreach.template t ON t.id = m.template_id
    LEFT JOIN outreach.template_tracking tt ON tt.template_id = m.template_id
    LEFT JOIN outreach.subscription_list l ON l.id = m.subscription_list_id
    LEFT JOIN files f ON f.message_id = m.id
   ORDER BY m.id;
END $$;
COMMENT ON FUNCTION outreach.gateway_claim(text, integer, interval, integer) IS
  'The gateway''s claim: a batch from outreach.claim_messages with the format, placeholder unsubscribe URL, list, name, tracking switches and attachments';

-- Reports the results of a batch in one call and one transaction.  statuses: sent,
-- delivered, bounced, failed, or retry (a temporary failure: the message goes back to
-- queued, due at retry_at, unless it has had max_attempts claims, then it fails).  Each
-- row's outcome is 'ok', or why it was not applied (e.g. the lease was lost to another
-- worker); one bad row never undoes the others.
CREATE FUNCTION outreach.gateway_report(ids bigint[], statuses text[], details text[], hard_bounces boolean[],
                                        worker text, retry_at timestamptz[] DEFAULT NULL, max_attempts integer DEFAULT 5)
RETURNS TABLE (id bigint, outcome text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
#variable_conflict use_column
DECLARE
  i integer;
  m outreach.message;
  clock timestamptz := outreach.now();
BEGIN
  IF coalesce(btrim($5), '') = '' THEN
    RAISE EXCEPTION 'a worker name is required' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF cardinality($1) IS DISTINCT FROM cardinality($2) OR cardinality($1) IS DISTINCT FROM cardinality($3)
     OR cardinality($1) IS DISTINCT FROM cardinality($4)
     OR ($6 IS NOT NULL AND cardinality($1) IS DISTINCT FROM cardinality($6)) THEN
    RAISE EXCEPTION 'gateway_report needs arrays of one length' USING ERRCODE = 'array_subscript_error',
      DETAIL = format('ids has %s elements, statuses %s, details %s, hard_bounces %s.',
                      cardinality($1), cardinality($2), cardinality($3), cardinality($4));
  END IF;
  FOR i IN 1 .. coalesce(cardinality($1), 0) LOOP
    id := $1[i];
    BEGIN
      IF $2[i] = 'retry' THEN
        SELECT * INTO m FROM outreach.message x WHERE x.id = $1[i] FOR UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'message % does not exist', $1[i] USING ERRCODE = 'no_data_found';
        END IF;
        IF m.status <> 'sending' OR m.claimed_by IS DISTINCT FROM $5 THEN
          RAISE EXCEPTION 'worker "%" no longer holds message %', $5, m.id USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        IF m.attempts >= $7 THEN
          PERFORM outreach.report_delivery(m.id, 'failed', format('gave up after %s attempts: %s', m.attempts, $3[i]), false, $5);
        ELSE
          UPDATE outreach.message x
             SET status = 'queued', lease_expires_at = NULL, detail = $3[i], updated_at = clock,
                 send_after = greatest(coalesce($6[i], clock), clock)
           WHERE x.id = m.id;
        END IF;
      ELSE
        PERFORM outreach.report_delivery($1[i], $2[i], $3[i], coalesce($4[i], false), $5);
      END IF;
      outcome := 'ok';
    EXCEPTION WHEN object_not_in_prerequisite_state OR no_data_found OR invalid_parameter_value THEN
      outcome := SQLERRM;
    END;
    RETURN NEXT;
  END LOOP;
END $$;
COMMENT ON FUNCTION outreach.gateway_report(bigint[], text[], text[], boolean[], text, timestamptz[], integer) IS
  'The gateway''s batch report: outreach.report_delivery per row, or retry later; one outcome per row';

-- Extends the leases of messages still being sent (a slow provider).
CREATE FUNCTION outreach.gateway_renew(ids bigint[], worker text, lease interval DEFAULT '5 minutes')
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  UPDATE outreach.message m SET lease_expires_at = outreach.now() + $3, updated_at = outreach.now()
   WHERE m.id = ANY ($1) AND m.status = 'sending' AND m.claimed_by = $2;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- A worker that starts (after a crash) or stops gives back what it claimed and did not
-- report, so nothing waits for a lease to run out.  Worker names must be unique per process.
CREATE FUNCTION outreach.gateway_release(worker text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  IF coalesce(btrim($1), '') = '' THEN
    RAISE EXCEPTION 'a worker name is required' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  UPDATE outreach.message m
     SET status = 'queued', lease_expires_at = NULL, updated_at = outreach.now(), send_after = least(m.send_after, outreach.now())
   WHERE m.status = 'sending' AND m.claimed_by = $1;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- When the send loop must wake up at the latest: the first queued message's send_after or
-- the first lease that runs out (NULL: nothing pending).
CREATE FUNCTION outreach.gateway_next_due() RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT least((SELECT min(m.send_after) FROM outreach.message m WHERE m.status = 'queued'),
               (SELECT min(m.lease_expires_at) FROM outreach.message m WHERE m.status = 'sending'))
$$;

-- For /metrics: messages per channel and status that are not final yet, and the age of the
-- oldest due one.
CREATE FUNCTION outreach.gateway_queue_depth()
RETURNS TABLE (channel text, status text, messages bigint, oldest_due_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT m.channel, m.status, count(*),
         coalesce(extract(epoch FROM outreach.now() - min(m.send_after) FILTER (WHERE m.send_after <= outreach.now())), 0)::float8
    FROM outreach.message m
   WHERE m.status IN ('queued', 'sending')
   GROUP BY m.channel, m.status
$$;

-- HTTP endpoints ------------------------------------------------------------------------

CREATE FUNCTION outreach._gateway_message(message_id bigint) RETURNS outreach.message
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message;
BEGIN
  SELECT * INTO m FROM outreach.message x WHERE x.id = $1;
  IF NOT FOUND OR m.status IN ('queued', 'suppressed') THEN
    RAISE EXCEPTION 'message % was not sent', coalesce($1::text, 'NULL') USING ERRCODE = 'no_data_found',
      HINT = 'Links work only for messages that were sent.';
  END IF;
  RETURN m;
END $$;

-- The open pixel: records an open (an open also proves delivery).
CREATE FUNCTION outreach.gateway_open(message_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message := outreach._gateway_message($1);
BEGIN
  IF m.status = 'failed' THEN RETURN false; END IF;
  PERFORM outreach.report_interaction(m.id, 'opened');
  RETURN true;
END $$;

-- A click: the url must be one the message contained (as written, or HTML-escaped in an
-- HTML body); records the click and returns where to redirect.
CREATE FUNCTION outreach.gateway_click(message_id bigint, url text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message := outreach._gateway_message($1);
BEGIN
  IF coalesce($2, '') !~* '^https?://[^[:space:]"<>]+$'
     OR (strpos(m.body, $2) = 0 AND strpos(m.body, replace($2, '&', '&amp;')) = 0) THEN
    RAISE EXCEPTION 'the link is not in message %', m.id USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Click redirects go only to http(s) links that were in the message.';
  END IF;
  IF m.status <> 'failed' THEN
    PERFORM outreach.report_interaction(m.id, 'clicked', $2);
  END IF;
  RETURN $2;
END $$;

-- What the unsubscribe page says will happen, and whether it already has.
CREATE FUNCTION outreach.gateway_unsubscribe_info(message_id bigint,
                                                  OUT channel text, OUT list_name text, OUT done boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message := outreach._gateway_message($1);
  c outreach.contact;
BEGIN
  SELECT * INTO c FROM outreach.contact x WHERE x.id = m.contact_id;
  channel := m.channel;
  SELECT l.name INTO list_name FROM outreach.subscription_list l WHERE l.id = m.subscription_list_id;
  IF list_name IS NOT NULL THEN
    done := EXISTS (SELECT 1 FROM outreach.subscription s WHERE s.list_id = m.subscription_list_id
                     AND s.contact_id = m.contact_id AND s.status = 'unsubscribed');
  ELSE
    done := CASE m.channel WHEN 'email' THEN c.do_not_email WHEN 'sms' THEN c.do_not_sms ELSE c.do_not_mail END;
  END IF;
END $$;

-- Unsubscribes (the unsubscribe page's POST and RFC 8058 one-click): from the message's list,
-- or from the channel when it has none.  Doing it twice records it once.
CREATE FUNCTION outreach.gateway_unsubscribe(message_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  info record;
BEGIN
  SELECT * INTO info FROM outreach.gateway_unsubscribe_info($1);
  IF info.done THEN RETURN false; END IF;
  PERFORM outreach.report_interaction($1, 'unsubscribed');
  RETURN true;
END $$;

-- The preference centre, reached from a signed link in a message.
CREATE FUNCTION outreach.gateway_preferences(message_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message := outreach._gateway_message($1);
  c outreach.contact;
BEGIN
  SELECT * INTO c FROM outreach.contact x WHERE x.id = m.contact_id;
  RETURN jsonb_build_object(
    'first_name', c.first_name,
    'preferred_channel', c.preferred_channel,
    'channels', jsonb_build_object(
      'email', jsonb_build_object('reachable', coalesce(btrim(c.email), '') <> '', 'allowed', NOT c.do_not_email),
      'sms', jsonb_build_object('reachable', coalesce(btrim(c.phone), '') <> '', 'allowed', NOT c.do_not_sms),
      'letter', jsonb_build_object('reachable', coalesce(btrim(c.address_line), '') <> '', 'allowed', NOT c.do_not_mail)),
    'lists', coalesce((SELECT jsonb_agg(jsonb_build_object('name', l.name, 'status', s.status) ORDER BY l.name)
                         FROM outreach.subscription s JOIN outreach.subscription_list l ON l.id = s.list_id
                        WHERE s.contact_id = c.id), '[]'::jsonb));
END $$;

-- Applies the preference centre's form: {"email": true|false, "sms": ..., "letter": ...,
-- "preferred_channel": "email"|"sms"|"letter"|"", "lists": {"name": true|false}}.  Keys left
-- out change nothing; lists may only be ones the contact already has a subscription row for.
CREATE FUNCTION outreach.gateway_update_preferences(message_id bigint, prefs jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message := outreach._gateway_message($1);
  src text := 'preference centre (message ' || $1 || ')';
  k text;
  v jsonb;
  st text;
BEGIN
  IF $2 IS NULL OR jsonb_typeof($2) <> 'object' THEN
    RAISE EXCEPTION 'preferences must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF $2 ? 'preferred_channel' AND coalesce($2->>'preferred_channel', '') NOT IN ('', 'email', 'sms', 'letter') THEN
    RAISE EXCEPTION 'invalid preferred channel "%"', $2->>'preferred_channel' USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed values are: email, sms, letter.';
  END IF;
  FOR k, v IN SELECT * FROM jsonb_each(coalesce($2->'lists', '{}')) LOOP
    SELECT s.status INTO st FROM outreach.subscription s JOIN outreach.subscription_list l ON l.id = s.list_id
     WHERE l.name = k AND s.contact_id = m.contact_id;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'list "%" is not one of this contact''s lists', k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v = 'true'::jsonb AND st = 'unsubscribed' THEN
      PERFORM outreach.subscribe(k, m.contact_id, src);
    ELSIF v = 'false'::jsonb AND st <> 'unsubscribed' THEN
      PERFORM outreach.unsubscribe(k, m.contact_id, src);
    END IF;
  END LOOP;
  UPDATE outreach.contact c
     SET do_not_email = CASE WHEN $2 ? 'email' THEN NOT ($2->>'email')::boolean ELSE c.do_not_email END,
         do_not_sms = CASE WHEN $2 ? 'sms' THEN NOT ($2->>'sms')::boolean ELSE c.do_not_sms END,
         do_not_mail = CASE WHEN $2 ? 'letter' THEN NOT ($2->>'letter')::boolean ELSE c.do_not_mail END,
         preferred_channel = CASE WHEN $2 ? 'preferred_channel' THEN nullif($2->>'preferred_channel', '')
                                  ELSE c.preferred_channel END
   WHERE c.id = m.contact_id;
  RETURN outreach.gateway_preferences($1);
END $$;

-- Double opt-in: the confirmation link.  Returns the list's name.
CREATE FUNCTION outreach.gateway_confirm(token text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s outreach.subscription := outreach.confirm_subscription($1);
BEGIN
  RETURN (SELECT l.name FROM outreach.subscription_list l WHERE l.id = s.list_id);
END $$;

-- Inbound SMS keywords (CTIA): STOP and its synonyms opt every contact with that number out
-- of SMS, START and its synonyms opt them back in, HELP answers.  Returns the reply to send,
-- NULL for any other text (no reply).
CREATE FUNCTION outreach.gateway_inbound_sms(from_phone text, body text) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  word text := upper(btrim(coalesce($2, '')));
  s outreach.delivery_settings;
BEGIN
  IF coalesce($1, '') !~ '^\+[1-9][0-9]{1,14}$' THEN
    RAISE EXCEPTION 'invalid sender number "%"', coalesce($1, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Inbound numbers are E.164, e.g. +15551230000.';
  END IF;
  SELECT * INTO s FROM outreach.delivery_settings;
  IF word IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT') THEN
    UPDATE outreach.contact c SET do_not_sms = true WHERE c.phone = $1 AND NOT c.do_not_sms;
    RETURN s.sms_stop_reply;
  ELSIF word IN ('START', 'UNSTOP', 'YES', 'OPTIN') THEN
    UPDATE outreach.contact c SET do_not_sms = false WHERE c.phone = $1 AND c.do_not_sms;
    RETURN s.sms_start_reply;
  ELSIF word IN ('HELP', 'INFO') THEN
    RETURN s.sms_help_reply;
  END IF;
  RETURN NULL;
END $$;

-- An SMS provider's delivery receipt for a message (the callback URL the gateway gave it).
CREATE FUNCTION outreach.gateway_sms_receipt(message_id bigint, provider_status text, detail text DEFAULT NULL)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  m outreach.message := outreach._gateway_message($1);
  st text := CASE lower(coalesce($2, ''))
               WHEN 'delivered' THEN 'delivered'
               WHEN 'undelivered' THEN 'bounced'
               WHEN 'failed' THEN 'failed'
               WHEN 'sent' THEN 'sent'
               WHEN 'queued' THEN NULL WHEN 'accepted' THEN NULL WHEN 'sending' THEN NULL
               ELSE 'unknown' END;
BEGIN
  IF st = 'unknown' OR m.channel <> 'sms' THEN
    RAISE EXCEPTION 'invalid delivery receipt "%" for message %', coalesce($2, 'NULL'), m.id
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'Receipts are for SMS messages, with status queued, accepted, sending, sent, delivered, undelivered or failed.';
  END IF;
  IF st IS NULL OR m.status = st OR m.status IN ('delivered', 'bounced', 'failed') THEN
    RETURN m.status;                              -- intermediate, repeated or late receipt
  END IF;
  RETURN (outreach.report_delivery(m.id, st, $3)).status;
END $$;

-- Event registration page (DESIGN §9, docs/events.md) -----------------------------------
-- {{event.registration_url}} renders 'https://outreach.invalid/event-registration?event=ID'
-- (64_events.sql); the gateway rewrites it at send time into a link signed for the event and
-- the message's contact, so these functions trust the (event, contact) pair they are given.

-- What the registration page shows: the event in its own time zone, whether it takes
-- registrations now (and if not, why), its sessions with free seats, and the contact's
-- live registration if they have one.
CREATE FUNCTION outreach.gateway_event_info(event_id bigint, contact_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  e outreach.event;
  r outreach.event_registration;
  clock timestamptz := outreach.now();
  state text;
  taken integer;
BEGIN
  SELECT * INTO e FROM outreach.event x WHERE x.id = $1;
  IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM outreach.contact c WHERE c.id = $2) THEN
    RAISE EXCEPTION 'event % or contact % does not exist', coalesce($1::text, 'NULL'), coalesce($2::text, 'NULL')
      USING ERRCODE = 'no_data_found', HINT = 'Registration links work only for existing events and contacts.';
  END IF;
  SELECT * INTO r FROM outreach.event_registration x
   WHERE x.event_id = e.id AND x.contact_id = $2 AND x.status <> 'cancelled';
  state := CASE
    WHEN e.status = 'cancelled' THEN 'cancelled'
    WHEN e.status = 'draft' THEN 'not_published'
    WHEN e.status = 'completed' OR e.ends_at <= clock THEN 'over'
    WHEN e.registration_opens_at IS NOT NULL AND clock < e.registration_opens_at THEN 'not_open_yet'
    WHEN clock >= coalesce(e.registration_closes_at, e.starts_at) THEN 'closed'
    ELSE 'open' END;
  SELECT s.taken INTO taken FROM outreach.event_seats s WHERE s.event_id = e.id AND s.session_id = 0;
  RETURN jsonb_build_object(
    'name', e.name, 'kind', e.kind, 'state', state, 'description', e.description,
    'starts_at', outreach.format_event_time(e.starts_at, e.time_zone),
    'ends_at', outreach.format_event_time(e.ends_at, e.time_zone),
    'venue', e.venue, 'online_url', e.online_url,
    'opens_at', CASE WHEN e.registration_opens_at IS NOT NULL THEN outreach.format_event_time(e.registration_opens_at, e.time_zone) END,
    'free_seats', CASE WHEN e.capacity IS NOT NULL THEN greatest(e.capacity - coalesce(taken, 0), 0) END,
    'sessions', coalesce((SELECT jsonb_agg(jsonb_build_object(
                   'name', x.name, 'starts_at', outreach.format_event_time(x.starts_at, e.time_zone),
                   'ends_at', outreach.format_event_time(x.ends_at, e.time_zone),
                   'free_seats', CASE WHEN x.capacity IS NOT NULL THEN greatest(x.capacity - coalesce(st.taken, 0), 0) END)
                   ORDER BY x.starts_at, x.name)
                   FROM outreach.event_session x
                   LEFT JOIN outreach.event_seats st ON st.event_id = x.event_id AND st.session_id = x.id
                  WHERE x.event_id = e.id), '[]'::jsonb),
    'registration', CASE WHEN r.id IS NOT NULL THEN jsonb_build_object(
                      'code', r.registration_code, 'status', r.status,
                      'waitlist_position', outreach._waitlist_position(r)) END);
END $$;
COMMENT ON FUNCTION outreach.gateway_event_info(bigint, bigint) IS
  'The gateway''s event registration page: the event in its time zone, whether registration is open, sessions with free seats, the contact''s registration';

-- The registration page's POST: outreach.register for the contact of the signed link (source
-- 'gateway'); registering twice returns the first code.  Returns the code, the status and the
-- position on the waitlist.
CREATE FUNCTION outreach.gateway_register(event_id bigint, contact_id bigint, sessions text[] DEFAULT NULL,
                                          OUT code text, OUT status text, OUT waitlist_position integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ev text;
BEGIN
  SELECT e.name INTO ev FROM outreach.event e WHERE e.id = $1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'event % does not exist', coalesce($1::text, 'NULL') USING ERRCODE = 'no_data_found';
  END IF;
  code := outreach.register(ev, $2, nullif($3, '{}'::text[]), 'gateway');
  SELECT s.status, s.waitlist_position INTO status, waitlist_position FROM outreach.registration_status(code) s;
END $$;
COMMENT ON FUNCTION outreach.gateway_register(bigint, bigint, text[]) IS
  'The gateway''s event registration: outreach.register for the contact of a signed link; the code, status and waitlist position';

-- Privileges: the gateway (outreach_sender) calls the gateway_* functions only.
REVOKE ALL ON FUNCTION outreach.set_template_tracking(text, boolean, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._confirm_placeholder(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._queue_confirmation_mail() FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach._gateway_message(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_claim(text, integer, interval, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_report(bigint[], text[], text[], boolean[], text, timestamptz[], integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_renew(bigint[], text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_release(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_next_due() FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_queue_depth() FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_open(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_click(bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_unsubscribe_info(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_unsubscribe(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_preferences(bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_update_preferences(bigint, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_confirm(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_inbound_sms(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_sms_receipt(bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_event_info(bigint, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION outreach.gateway_register(bigint, bigint, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  outreach.gateway_claim(text, integer, interval, integer),
  outreach.gateway_report(bigint[], text[], text[], boolean[], text, timestamptz[], integer),
  outreach.gateway_renew(bigint[], text, interval),
  outreach.gateway_release(text),
  outreach.gateway_next_due(),
  outreach.gateway_queue_depth(),
  outreach.gateway_open(bigint),
  outreach.gateway_click(bigint, text),
  outreach.gateway_unsubscribe_info(bigint),
  outreach.gateway_unsubscribe(bigint),
  outreach.gateway_preferences(bigint),
  outreach.gateway_update_preferences(bigint, jsonb),
  outreach.gateway_confirm(text),
  outreach.gateway_inbound_sms(text, text),
  outreach.gateway_sms_receipt(bigint, text, text),
  outreach.gateway_event_info(bigint, bigint),
  outreach.gateway_register(bigint, bigint, text[])
  TO outreach_sender, outreach_admin;
GRANT EXECUTE ON FUNCTION outreach.set_template_tracking(text, boolean, boolean) TO outreach_admin, outreach_marketer;
GRANT SELECT, UPDATE ON outreach.delivery_settings TO outreach_admin;
GRANT SELECT ON outreach.delivery_settings TO outreach_marketer;
GRANT SELECT, INSERT, UPDATE, DELETE ON outreach.template_tracking TO outreach_admin;
GRANT SELECT ON outreach.template_tracking TO outreach_marketer;
