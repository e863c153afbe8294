-- 0.2.0 -> 0.3.0, events (64_events.sql): templates may use {{event.*}} and
-- {{registration.*}}; _render_for takes their values from outreach._event_tokens (defined by
-- 64_events.sql, later in this script).  Same text as in 50_messaging.sql.
CREATE OR REPLACE FUNCTION outreach.template_tokens() RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT array_agg(t ORDER BY ord, t) FROM (
    SELECT 1 AS ord, 'contact.' || a.attname AS t FROM pg_attribute a
     WHERE a.attrelid = 'outreach.contact'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 2, 'contact.account.' || a.attname FROM pg_attribute a
     WHERE a.attrelid = 'outreach.account'::regclass AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 3, x FROM unnest(ARRAY['unsubscribe_url', 'sender.postal_address']) x
    UNION ALL                                    -- events (64_events.sql, outreach._event_tokens)
    SELECT 4, x FROM unnest(ARRAY['event.name', 'event.starts_at', 'event.ends_at', 'event.venue', 'event.online_url',
                                  'registration.code', 'registration.status', 'event.registration_url']) x
    UNION ALL                                    -- content (55_content.sql, outreach._content_tokens)
    SELECT 5, x FROM unnest(ARRAY['message.language',
      'registration.sessions.#.name', 'registration.sessions.#.starts_at', 'registration.sessions.#.ends_at',
      'contact.registrations.#.event', 'contact.registrations.#.starts_at', 'contact.registrations.#.ends_at',
      'contact.registrations.#.venue', 'contact.registrations.#.status', 'contact.registrations.#.code']) x) s
$$;

CREATE OR REPLACE FUNCTION outreach._render_for(t outreach.template, c outreach.contact, unsubscribe_token text,
                                     OUT subject text, OUT body text, OUT sms_segments integer)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  keys text[];
  vals text[];
  base text;
  lang text;
BEGIN
  SELECT s.unsubscribe_base_url, v.subject, v.body, v.language INTO base, t.subject, t.body, lang
    FROM outreach.messaging_settings s, outreach._template_variant_for(t, c) v;  -- languages (55_content.sql)
  SELECT array_agg(k), array_agg(v) INTO keys, vals FROM (
    SELECT 'contact.' || e.key AS k, e.value AS v FROM jsonb_each_text(to_jsonb(c)) e
    UNION ALL
    SELECT 'contact.account.' || e.key, e.value
      FROM outreach.account a, jsonb_each_text(to_jsonb(a)) e WHERE a.id = c.account_id
    UNION ALL
    VALUES ('unsubscribe_url', base || '?token=' || $3), ('sender.postal_address', t.sender_postal_address)
    UNION ALL
    SELECT * FROM outreach._event_tokens(t.id, c.id)
    UNION ALL                                    -- content (55_content.sql): language, loop lists
    VALUES ('message.language', lang)
    UNION ALL
    SELECT * FROM outreach._content_tokens(t.id, c.id, concat(t.subject, t.body))
     WHERE strpos(concat(t.subject, t.body), 'registration') > 0) x;
  subject := outreach._render(t.subject, false, keys, vals);
  body := outreach._render(t.body, t.format = 'html', keys, vals);
  sms_segments := CASE WHEN t.channel = 'sms' THEN outreach.sms_segments(body) END;
END $$;

