-- messaging_fuzz: the C renderer on thousands of random templates built from the characters
-- that matter to its parser (braces, pipes, quotes, dots, multibyte text).  Every input is
-- either accepted or refused with a syntax / unknown-token error; nothing else, no crash.
-- Accepted templates render; HTML rendering never lets a value's markup through.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(6);

CREATE TEMP TABLE fuzz (n int, body text, outcome text, sqlstate text, rendered text);

DO $$
DECLARE
  pieces text[] := ARRAY['{{', '}}', '{', '}', '|', ' | ', 'default', 'default:', ':', '''', '''''', '"', '.', 'a', 'b',
                         'contact', 'contact.first_name', 'unsubscribe_url', ' ', '{{a}}', '{{ contact.first_name | default: ''x'' }}',
                         '{{b|default:"y"}}', '{{a | default: ''<i>''}}', E'\n', 'é', 'ж', '😀', '<', '&', 'x'];
  body text;
  toks text[];
  out text;
BEGIN
  PERFORM setseed(0.5);
  FOR n IN 1..4000 LOOP
    body := '';
    FOR k IN 1..(1 + floor(random() * 14)::int) LOOP
      body := body || pieces[1 + floor(random() * array_length(pieces, 1))::int];
    END LOOP;
    BEGIN
      toks := outreach._template_check_tokens(body, ARRAY['a', 'b', 'contact.first_name', 'unsubscribe_url'], 'body');
      out := outreach._render(body, true, ARRAY['a', 'contact.first_name'], ARRAY['<b>&"''', NULL]);
      INSERT INTO fuzz VALUES (n, body, 'accepted', NULL, out);
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO fuzz VALUES (n, body, 'refused', SQLSTATE, NULL);
    END;
  END LOOP;
END $$;

SELECT is((SELECT count(*) FROM fuzz), 4000::bigint, 'every random template was tried');
SELECT is((SELECT count(*) FROM fuzz WHERE outcome = 'refused' AND sqlstate NOT IN ('42601', '42704')), 0::bigint,
          'refusals are syntax errors or unknown tokens only');
SELECT ok((SELECT count(*) FROM fuzz WHERE outcome = 'accepted' AND body LIKE '%{{%') > 50, 'many templates with tokens are accepted');
SELECT ok((SELECT count(*) FROM fuzz WHERE outcome = 'refused') > 50, 'many are refused');
SELECT is((SELECT count(*) FROM fuzz WHERE outcome = 'accepted' AND rendered LIKE '%<b>%' AND body NOT LIKE '%<b>%'), 0::bigint,
          'an HTML-rendered value never carries raw markup');
-- a template without "{{" renders as itself
SELECT is((SELECT count(*) FROM fuzz WHERE outcome = 'accepted' AND body NOT LIKE '%{{%' AND rendered <> body), 0::bigint,
          'text without tokens renders unchanged');

SELECT * FROM finish();
ROLLBACK;
