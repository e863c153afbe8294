-- content_templates: the template language (src/template_lang.c): sections, comparisons,
-- loops, filters, content blocks, dates per language and time zone, bounds, and every
-- compile-time error with its SQLSTATE.  Plain 0.2 templates render as before.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SET LOCAL timezone = 'UTC';
SELECT plan(66);

-- r(body, keys, vals): render as text; h(...): as HTML; chk(body): the compile check.
CREATE FUNCTION pg_temp.r(body text, k text[], v text[]) RETURNS text LANGUAGE sql AS
  $$ SELECT outreach._render(body, false, k, v) $$;
CREATE FUNCTION pg_temp.h(body text, k text[], v text[]) RETURNS text LANGUAGE sql AS
  $$ SELECT outreach._render(body, true, k, v) $$;
CREATE FUNCTION pg_temp.chk(body text) RETURNS text[] LANGUAGE sql AS
  $$ SELECT outreach._template_check_tokens(body, outreach.template_tokens(), 'body') $$;

-- conditions on presence
SELECT is(pg_temp.r('{{#if contact.first_name}}Hi {{contact.first_name}}{{else}}Hello{{/if}}!',
                    '{contact.first_name}', '{Ann}'), 'Hi Ann!', 'if: present value takes the first branch');
SELECT is(pg_temp.r('{{#if contact.first_name}}Hi {{contact.first_name}}{{else}}Hello{{/if}}!',
                    '{contact.first_name}', '{""}'), 'Hello!', 'if: an empty value is absent');
SELECT is(pg_temp.r('{{#if contact.first_name}}Hi{{/if}}.', NULL, NULL), '.', 'if without else: nothing when absent');
SELECT is(pg_temp.r('{{#unless contact.email}}no email{{else}}email{{/unless}}', '{contact.email}', '{NULL}'),
          'no email', 'unless: absent value takes the first branch');
SELECT is(pg_temp.r('{{#unless contact.email}}no email{{else}}email{{/unless}}', '{contact.email}', '{a@b.c}'),
          'email', 'unless: else branch when present');
-- comparisons
SELECT is(pg_temp.r('{{#if contact.gender = ''female''}}F{{else if contact.gender = "male"}}M{{else}}?{{/if}}',
                    '{contact.gender}', '{male}'), 'M', 'else if: the first true branch');
SELECT is(pg_temp.r('{{#if contact.gender = ''female''}}F{{else if contact.gender = "male"}}M{{else}}?{{/if}}',
                    '{contact.gender}', '{other}'), '?', 'else: when no branch holds');
SELECT is(pg_temp.r('{{#if contact.gender != ''female''}}not F{{/if}}', '{contact.gender}', '{male}'), 'not F', '!=');
SELECT is(pg_temp.r('{{#if contact.account.size > 9}}big{{else}}small{{/if}}', '{contact.account.size}', '{10}'),
          'big', '> compares numbers numerically (10 > 9)');
SELECT is(pg_temp.r('{{#if contact.account.size < 9}}small{{else}}big{{/if}}', '{contact.account.size}', '{10}'),
          'big', '< compares numbers numerically');
SELECT is(pg_temp.r('{{#if contact.last_name < ''M''}}A-L{{else}}M-Z{{/if}}', '{contact.last_name}', '{Jones}'),
          'A-L', '< compares strings when a side is not a number');
SELECT is(pg_temp.r('{{#if contact.city = ''Boston''}}B{{else}}not B{{/if}}', NULL, NULL), 'not B',
          'a missing value equals nothing');
-- loops
SELECT is(pg_temp.r('{{#each registration.sessions as s}}[{{s.name}}]{{else}}none{{/each}}',
                    '{registration.sessions.#,registration.sessions.1.name,registration.sessions.2.name}', '{2,Morning,Afternoon}'),
          '[Morning][Afternoon]', 'each: every item in order, through its alias');
SELECT is(pg_temp.r('{{#each registration.sessions}}{{this.name}};{{/each}}',
                    '{registration.sessions.#,registration.sessions.1.name}', '{1,Only}'),
          'Only;', 'each without "as": the item is this');
SELECT is(pg_temp.r('{{#each registration.sessions as s}}x{{else}}none{{/each}}', '{registration.sessions.#}', '{0}'),
          'none', 'each: else when the list is empty');
SELECT is(pg_temp.r('{{#each registration.sessions as s}}{{#if s.name = ''B''}}*{{/if}}{{s.name}}{{/each}}',
                    '{registration.sessions.#,registration.sessions.1.name,registration.sessions.2.name}', '{2,A,B}'),
          'A*B', 'conditions inside loops see the item');
SELECT is(length(pg_temp.r('{{#each registration.sessions as s}}x{{/each}}', '{registration.sessions.#}', '{100000}')), 50,
          'a loop stops after 50 items');
-- filters
SELECT is(pg_temp.r('{{contact.first_name | upcase}} {{contact.last_name | downcase}} {{contact.city | capitalize}}',
                    '{contact.first_name,contact.last_name,contact.city}', '{ann,SMITH,nEW york}'),
          'ANN smith New york', 'upcase, downcase, capitalize');
SELECT is(pg_temp.r('{{contact.first_name | upcase}}', '{contact.first_name}', '{élise}'), 'ÉLISE', 'upcase is multibyte-aware');
SELECT is(pg_temp.r('{{contact.first_name | truncate: 6}}|{{contact.last_name | truncate: 6}}',
                    '{contact.first_name,contact.last_name}', '{Maximilian,Ng}'), 'Max...|Ng', 'truncate: n characters in all');
SELECT is(pg_temp.r('{{contact.first_name | escape}}', '{contact.first_name}', '{<b>&}'), '&lt;b&gt;&amp;', 'escape in a text body');
SELECT is(pg_temp.h('{{contact.first_name | escape}}|{{contact.last_name | upcase}}', '{contact.first_name,contact.last_name}', '{<b>,<i>}'),
          '&lt;b&gt;|&lt;I&gt;', 'HTML bodies escape once: not again after escape, always otherwise');
SELECT is(pg_temp.r('https://x.example/?q={{contact.city | url_encode}}', '{contact.city}', '{São Paulo & co}'),
          'https://x.example/?q=S%C3%A3o%20Paulo%20%26%20co', 'url_encode');
SELECT is(pg_temp.r('Hi {{contact.first_name | default: ''there'' | upcase}}', '{contact.first_name}', '{""}'), 'Hi THERE',
          'default then another filter');
SELECT is(pg_temp.r('{{contact.account.size | number}} {{contact.account.size | number: 2}}',
                    '{contact.language,contact.account.size}', '{de,1234567.5}'), '1.234.567,5 1.234.567,50', 'number per language (de)');
SELECT is(pg_temp.r('{{contact.account.size | number: 1}}', '{contact.account.size}', '{1234.56}'), '1,234.6', 'number (en default)');
-- dates: language and time zone
SELECT is(pg_temp.r('{{contact.birthdate | date: ''%A %e %B %Y''}}', '{contact.birthdate}', '{1980-03-04}'),
          'Tuesday 4 March 1980', 'date in English by default');
SELECT is(pg_temp.r('{{contact.birthdate | date: ''%A %e %B %Y''}}', '{contact.language,contact.birthdate}', '{es-MX,1980-03-04}'),
          'martes 4 marzo 1980', 'date in Spanish (primary subtag of es-MX)');
SELECT is(pg_temp.r('{{contact.birthdate | date: ''long''}}', '{contact.language,contact.birthdate}', '{fr,1980-02-04}'),
          '4 février 1980', 'long date in French');
SELECT is(pg_temp.r('{{contact.birthdate | date: ''long''}} / {{contact.birthdate | date: ''short''}}',
                    '{contact.language,contact.birthdate}', '{de,1980-03-04}'), '4. März 1980 / 04.03.1980', 'long and short in German');
SELECT is(pg_temp.r('{{contact.created_at | date: ''%Y-%m-%d %H:%M %Z''}}', '{contact.time_zone,contact.created_at}',
                    '{America/New_York,2026-01-02T03:30:00+00:00}'), '2026-01-01 22:30 EST', 'times shown in the contact''s time zone');
SELECT is(pg_temp.r('{{contact.created_at | date: ''%H:%M''}}', '{contact.created_at}', '{2026-01-02T03:30:00+00:00}'),
          '03:30', 'UTC without a time zone');
SELECT is(pg_temp.r('{{message.language}}: {{contact.birthdate | date: ''%B''}}', '{contact.language,message.language,contact.birthdate}',
                    '{fr,es,1980-01-04}'), 'es: enero', 'the message''s language (the variant''s) wins over the contact''s');
SELECT is(pg_temp.r('{{contact.city | date: ''%Y''}}', '{contact.city}', '{Boston}'), 'Boston', 'a value that is no date is shown as it is');
-- content blocks
SELECT lives_ok($$ SELECT outreach.create_content_block('sig', 'Kind regards, {{contact.account.name | default: ''the team''}}') $$,
                'create_content_block');
SELECT lives_ok($$ SELECT outreach.create_content_block('footer', '{{> sig}} -- {{#if contact.city}}{{contact.city}}{{/if}}') $$,
                'a block may include another block');
SELECT is(pg_temp.r('Hi{{> footer}}', '{contact.city}', '{Lyon}'), 'HiKind regards, the team -- Lyon', 'blocks render in place');
SELECT is(pg_temp.chk('{{contact.email}} {{> footer}}'), '{contact.email,contact.account.name,contact.city}',
          'the check returns the tokens of included blocks too');
SELECT throws_ok($$ SELECT pg_temp.chk('{{> foter}}') $$, '42704', NULL, 'unknown block: 42704');
SELECT throws_ok($$ SELECT outreach.create_content_block('loop', 'x {{> loop}}') $$, '42P19', NULL, 'a block including itself: 42P19');
SELECT throws_ok($$ SELECT outreach.create_content_block('sig', 'x') $$, '42710', NULL, 'duplicate block: 42710');
SELECT throws_ok($$ SELECT outreach.create_content_block('bad', '{{#if contact.city}}x') $$, '42601', NULL, 'a block must balance its sections');
SELECT lives_ok($$ SELECT outreach.create_template('t-block', 'sms', 'Hi {{> footer}}') $$, 'a template includes a block');
SELECT throws_ok($$ SELECT outreach.alter_content_block('sig', '{{contact.nope}}') $$, '42704', NULL,
                 'changing a block checks the templates that include it');
SELECT throws_ok($$ SELECT outreach.drop_content_block('footer') $$, '42704', NULL, 'a block in use cannot be dropped');
-- compile-time errors
SELECT throws_like($$ SELECT pg_temp.chk('{{#if contact.city}}x') $$, '%unclosed section {{#if}}%character 1%', 'unclosed section');
SELECT throws_ok($$ SELECT pg_temp.chk('{{#if contact.city}}x') $$, '42601', NULL, 'unclosed section: 42601');
SELECT throws_like($$ SELECT pg_temp.chk('x{{/if}}') $$, '%closes no open section%character 2%', 'stray close with its position');
SELECT throws_like($$ SELECT pg_temp.chk('{{#if contact.city}}{{/each}}') $$, '%syntax error%', 'mismatched close');
SELECT throws_ok($$ SELECT pg_temp.chk('{{else}}') $$, '42601', NULL, 'else outside a section');
SELECT throws_ok($$ SELECT pg_temp.chk('{{#unless contact.city}}a{{else if contact.email}}b{{/unless}}') $$, '42601', NULL,
                 'unless has no else if');
SELECT throws_ok($$ SELECT pg_temp.chk('{{#while contact.city}}{{/while}}') $$, '42601', NULL, 'unknown section kind');
SELECT throws_ok($$ SELECT pg_temp.chk('{{contact.city | upper}}') $$, '42883', NULL, 'unknown filter: 42883');
SELECT throws_like($$ SELECT pg_temp.chk('{{contact.city | upcas}}') $$, '%unknown template filter "upcas"%character 18%',
                   'unknown filter names the filter and its position');
SELECT throws_ok($$ SELECT pg_temp.chk('{{contact.city | truncate: 0}}') $$, '42601', NULL, 'truncate needs a positive count');
SELECT throws_ok($$ SELECT pg_temp.chk('{{contact.city | date}}') $$, '42601', NULL, 'date needs a format');
SELECT throws_ok($$ SELECT pg_temp.chk('{{contact.birthdate | date: ''%Q''}}') $$, '22007', NULL, 'unknown date directive: 22007');
SELECT throws_ok($$ SELECT pg_temp.chk('{{#if contact.citi}}x{{/if}}') $$, '42704', NULL, 'unknown token in a condition');
SELECT throws_ok($$ SELECT pg_temp.chk('{{#each contact.sessions as s}}x{{/each}}') $$, '42704', NULL, 'unknown list');
SELECT throws_ok($$ SELECT pg_temp.chk('{{#each registration.sessions as s}}{{s.room}}{{/each}}') $$, '42704', NULL,
                 'unknown field of a loop item');
SELECT is(pg_temp.chk('{{#each registration.sessions as s}}{{s.name}}{{/each}}'), '{registration.sessions.#.name}',
          'loop item fields are checked as list.#.field');
SELECT throws_ok($$ SELECT pg_temp.chk(repeat('{{#if contact.city}}', 17) || repeat('{{/if}}', 17)) $$, '54001', NULL,
                 'nesting deeper than 16: 54001');
SELECT throws_ok($$ SELECT pg_temp.r(repeat('{{#each registration.sessions as s}}', 4) || repeat('xxxxxxxxxx', 1) || repeat('{{/each}}', 4),
                                     '{registration.sessions.#}', '{50}') $$, '54000', NULL, 'output and steps are bounded: 54000');
-- the links marketing email must carry count only where they always render
SELECT throws_ok($$ SELECT outreach.create_template('hidden unsub', 'email',
  '{{#if contact.email}}<a href="{{unsubscribe_url}}">u</a>{{/if}} {{sender.postal_address}}', subject => 's',
  sender_postal_address => '1 Main St') $$, '23514', NULL, 'an unsubscribe link inside a section does not count');
SELECT lives_ok($$ SELECT outreach.create_template('shown unsub', 'email',
  '{{#if contact.first_name}}Hi {{contact.first_name | capitalize}}{{/if}} <a href="{{unsubscribe_url}}">u</a> {{sender.postal_address}}',
  subject => 's', sender_postal_address => '1 Main St') $$, 'outside sections it does');

-- plain templates are unchanged
SELECT is(pg_temp.h('Hi {{contact.first_name | default: ''there''}} <b>', '{contact.first_name}', '{<Ann>}'), 'Hi &lt;Ann&gt; <b>',
          'a plain template renders as in 0.2');

SELECT * FROM finish();
ROLLBACK;
