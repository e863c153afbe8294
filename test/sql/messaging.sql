-- messaging: template syntax, token checks and their error messages, rendering, SMS segments
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS outreach CASCADE;
CREATE EXTENSION outreach CASCADE;
RESET client_min_messages;
\set VERBOSITY default
\set SHOW_CONTEXT never

INSERT INTO outreach.account (id, name, kind) VALUES (1, 'O''Brien & Sons <Clinic>', 'household');
INSERT INTO outreach.contact (id, first_name, last_name, email, phone, time_zone, account_id)
VALUES (1, 'Zoë', '<script>alert(1)</script>', 'zoe@example.org', '+14155550123', 'Europe/Paris', 1),
       (2, NULL, 'Doe', 'doe@example.org', NULL, NULL, NULL);

-- the tokens a template may use
SELECT t FROM unnest(outreach.template_tokens()) t WHERE t !~ '^contact\.(account\.)?[a-z_]+$' OR t ~ '(first_name|\.name)$';

-- a marketing email: tokens, defaults, one hop to account, unsubscribe link and postal address
SELECT outreach.create_template('welcome', 'email',
  '<p>Hello {{ contact.first_name | default: ''there'' }} {{contact.last_name}} of {{contact.account.name|default:"your family"}}</p>'
  || '<a href="{{unsubscribe_url}}">Unsubscribe</a> {{sender.postal_address}}',
  subject => 'Hi {{contact.first_name | default: ''friend''}} & {{contact.account.name}}', sender_postal_address => '1 Main St, Springfield');
SELECT tokens FROM outreach.template WHERE name = 'welcome';
-- HTML escaping in the body, plain text in the subject; the preview token stands in for the real one
SELECT * FROM outreach.preview_template('welcome', 1);
SELECT * FROM outreach.preview_template('welcome', 2);

-- SMS: plain text, no escaping, segment count
SELECT outreach.create_template('sms', 'sms', 'Hi {{contact.first_name|default:''there''}} <3 from {{contact.account.name}}');
SELECT * FROM outreach.preview_template('sms', 1);
SELECT * FROM outreach.preview_template('sms', 2);
SELECT n, outreach.sms_segments(repeat('a', n)) AS gsm7, outreach.sms_segments(repeat('ж', n)) AS ucs2
  FROM unnest(ARRAY[0, 1, 70, 71, 134, 135, 153, 160, 161, 306, 307]) n;
SELECT outreach.sms_segments(repeat('€', 80)) AS euro_is_two_septets, outreach.sms_segments(repeat('é', 160)) AS e_acute_is_gsm,
       outreach.sms_segments('😀') AS emoji, outreach.sms_segments(repeat('😀', 35)) AS emoji35, outreach.sms_segments(repeat('😀', 36)) AS emoji36;

-- refused at save: unknown tokens (with position and closest match), syntax errors, missing parts
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.frist_name}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Zoë ü {{contact.acount.name}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{patient.name}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi', subject => 'About {{contact.first_nam}}', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.first_name', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact..first_name}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.first_name.}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{{contact.first_name}}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.first_name | upper}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.first_name | default ''x''}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.first_name | default: x}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.first_name | default: ''x}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.first_name x}}', subject => 'x', message_class => 'transactional');
SELECT outreach.create_template('bad', 'email', 'Hi {{contact.first_name}}', subject => 'x');
SELECT outreach.create_template('bad', 'email', 'Hi {{unsubscribe_url}}', subject => 'x');
SELECT outreach.create_template('bad', 'email', 'Hi {{unsubscribe_url}} {{sender.postal_address}}', subject => 'x');
SELECT outreach.create_template('bad', 'email', 'Hi', message_class => 'transactional');
SELECT outreach.create_template('bad', 'sms', 'Hi', format => 'html');
SELECT outreach.create_template('bad', 'sms', 'Hi', subject => 'x');
SELECT outreach.create_template('bad', 'fax', 'Hi');
SELECT outreach.create_template('welcome', 'sms', 'Hi');
-- direct writes are checked the same way
INSERT INTO outreach.template (name, channel, format, body) VALUES ('raw', 'sms', 'text', 'Hi {{contact.nme}}');
-- quoted defaults may contain quotes and braces; text outside tokens is verbatim
SELECT outreach.create_template('quotes', 'letter', 'Dear {{contact.first_name | default: ''valued patient''''s family''}}, } "x" {',
                                format => 'text');
SELECT body FROM outreach.preview_template('quotes', 2);
SELECT outreach.create_template('braces', 'letter', 'Dear {{contact.first_name | default: "}} {{"}},', format => 'html') > 0 AS created;
SELECT body FROM outreach.preview_template('braces', 2);

-- alter_template checks again; messages keep what they rendered
SELECT outreach.alter_template('sms', body => 'Bye {{contact.last_nam}}');
SELECT outreach.alter_template('sms', body => 'Bye {{contact.last_name}}');
SELECT body, sms_segments FROM outreach.preview_template('sms', 1);
SELECT outreach.alter_template('welcome', body => 'no link');
SELECT outreach.alter_template('welcme');
SELECT outreach.preview_template('welcome', 99);
SELECT outreach.drop_template('quotes');
SELECT count(*) FROM outreach.template;

-- the renderer itself
SELECT outreach._render('{{a}}-{{b|default:''B''}}-{{c | default: ''C''}}', false, ARRAY['a', 'b', 'c'], ARRAY['1', '', NULL]);
SELECT outreach._render('{{a}}', true, NULL, NULL) IS NOT DISTINCT FROM '' AS no_values_renders_empty;
SELECT outreach._render('{{a}}', true, ARRAY['a'], ARRAY['x', 'y']);
SELECT outreach._render(NULL, true, NULL, NULL) IS NULL AS null_body;
