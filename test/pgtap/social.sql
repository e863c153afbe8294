-- social: sentiment (a hand-written test set, each sentence with its expected sign), social
-- posts and their lifecycle, engagement fed by a connector, social_overview, error paths.
BEGIN;
CREATE EXTENSION IF NOT EXISTS outreach CASCADE;
SELECT plan(42);

-- The sentiment test set: 65 sentences written by hand with the polarity a reader gives
-- them (+ positive, - negative, 0 neutral).  Negation, intensifiers, "but"/"however" clauses,
-- capitals and emoticons are all in it.  The scorer must agree on at least 90 %.
CREATE TEMP TABLE sentiment_case (expected text, body text);
INSERT INTO sentiment_case VALUES
  ('+', 'The nurses at the flu clinic were wonderful.'),
  ('+', 'Great event, very well organised!'),
  ('+', 'Thank you for the reminder, really helpful.'),
  ('+', 'The staff were friendly and the wait was short.'),
  ('+', 'I love how easy it was to book online :)'),
  ('+', 'Excellent information session, I learned a lot.'),
  ('+', 'So glad I got my flu shot today!'),
  ('+', 'The doctor was kind and patient with my daughter.'),
  ('+', 'Quick, painless and professional.'),
  ('+', 'Highly recommend the screening drive.'),
  ('+', 'Not bad at all, better than last year.'),
  ('+', 'The vaccine clinic was not terrible.'),
  ('+', 'Never had such a pleasant visit <3'),
  ('+', 'Thanks so much, you guys are amazing!'),
  ('+', 'It was a bit slow but the staff were lovely.'),
  ('+', 'The wait was long but it was worth it.'),
  ('+', 'I was worried, but everyone was reassuring.'),
  ('+', 'Happy with the care I received.'),
  ('+', 'Really appreciate the free screening :D'),
  ('+', 'Best clinic in town.'),
  ('+', 'The volunteers were extremely helpful.'),
  ('+', 'Clean, calm and comfortable waiting room.'),
  ('+', 'I feel much better after the session.'),
  ('+', 'What a lovely team ;)'),
  ('+', 'The booking app works perfectly.'),
  ('+', 'Such a supportive community event.'),
  ('+', 'I trust this clinic with my family.'),
  ('+', 'Thank you!'),
  ('+', 'No problems at all, smooth visit.'),
  ('+', 'The nurse was very gentle, no pain.'),
  ('-', 'The wait was terrible.'),
  ('-', 'Worst experience ever, nobody called back.'),
  ('-', 'The staff were rude and dismissive.'),
  ('-', 'I am so disappointed with the service :('),
  ('-', 'The website is confusing and slow.'),
  ('-', 'Not good enough.'),
  ('-', 'I did not like the way they spoke to me.'),
  ('-', 'The clinic was dirty and crowded.'),
  ('-', 'Three hours late, absolutely unacceptable!'),
  ('-', 'This is a waste of time.'),
  ('-', 'The nurse was nice but the wait was awful.'),
  ('-', 'Friendly staff, however the booking system is a nightmare.'),
  ('-', 'Never going back there.'),
  ('-', 'They cancelled my appointment again, so frustrating.'),
  ('-', 'Horrible parking and nobody to help.'),
  ('-', 'The shot was painful and the staff were careless.'),
  ('-', 'I feel ignored by the reception.'),
  ('-', 'Not happy with the results.'),
  ('-', 'This is ridiculous :/'),
  ('-', 'Ugh, lost my paperwork again.'),
  ('-', 'The information was unclear and misleading.'),
  ('-', 'I hate waiting on hold.'),
  ('-', 'Terrible, TERRIBLE service.'),
  ('-', 'The room was cold and the staff unfriendly.'),
  ('-', 'Useless phone line.'),
  ('-', 'I was scared and nobody explained anything, bad.'),
  ('-', 'Not helpful at all.'),
  ('-', 'The app keeps failing, what a mess.'),
  ('-', 'Honestly the worst clinic I have been to.'),
  ('-', 'Sad to see such poor care.'),
  ('0', 'The clinic opens at nine on Monday.'),
  ('0', 'Registration is on the second floor.'),
  ('0', 'Bring your insurance card.'),
  ('0', 'The event is on Saturday.'),
  ('0', 'Is parking available?');

SELECT is((SELECT count(*) FROM sentiment_case), 65::bigint, 'the test set has 65 sentences (at least 60)');
SELECT cmp_ok(
  (SELECT avg(CASE WHEN sign(outreach.sentiment(body)) = CASE expected WHEN '+' THEN 1 WHEN '-' THEN -1 ELSE 0 END
                   THEN 1.0 ELSE 0.0 END) FROM sentiment_case),
  '>=', 0.90, 'sentiment agrees with the hand-written polarity on at least 90 % of the test set');
-- Which sentences disagree (shown on failure, and as a diagnostic always).
SELECT diag(format('disagrees: expected %s, got %s: %s', expected, round(outreach.sentiment(body)::numeric, 3), body))
  FROM sentiment_case
 WHERE sign(outreach.sentiment(body)) <> CASE expected WHEN '+' THEN 1 WHEN '-' THEN -1 ELSE 0 END;
SELECT ok((SELECT bool_and(outreach.sentiment(body) BETWEEN -1 AND 1) FROM sentiment_case), 'every score lies in -1..1');

-- The rules one by one.
SELECT ok(outreach.sentiment('good') > 0 AND outreach.sentiment('not good') < 0, 'negation flips a word');
SELECT ok(outreach.sentiment('not bad') > 0 AND outreach.sentiment('not bad') < -outreach.sentiment('bad'),
          'a negated word is weaker than the plain opposite (x -0.74)');
SELECT ok(outreach.sentiment('very good') > outreach.sentiment('good'), 'an intensifier strengthens');
SELECT ok(outreach.sentiment('slightly good') < outreach.sentiment('good'), 'a diminisher weakens');
SELECT ok(outreach.sentiment('it was GOOD') > outreach.sentiment('it was good'), 'a word in capitals is stressed');
SELECT ok(outreach.sentiment('good!!') > outreach.sentiment('good'), 'exclamation marks amplify');
SELECT ok(outreach.sentiment('the food was good but the service was bad') < 0,
          'after "but" counts more than before');
SELECT ok(outreach.sentiment('the service was bad but the food was good') > 0, '"but" works both ways');
SELECT ok(outreach.sentiment(':)') > 0 AND outreach.sentiment(':(') < 0 AND outreach.sentiment('<3') > 0,
          'emoticons carry their own valence');
SELECT ok(outreach.sentiment('not :)') > 0, 'emoticons are not negated');
SELECT is(outreach.sentiment('The clinic opens at nine.'), 0::float8, 'no sentiment word: 0');
SELECT is(outreach.sentiment(''), 0::float8, 'empty text: 0');
SELECT is(outreach.sentiment(NULL), NULL::float8, 'NULL in, NULL out');
SELECT ok(outreach.sentiment(repeat('great ', 5000)) BETWEEN 0.99 AND 1, 'long text stays within 1');

-- Posts.
SET LOCAL outreach.now = '2026-03-02 09:00:00+00';
SELECT outreach.create_social_post('facebook', 'City Clinic', 'Flu shots this Saturday, free and quick!') AS p1 \gset
SELECT outreach.create_social_post('x', '@cityclinic', 'Screening drive next week', scheduled_at => '2026-03-03 10:00+00') AS p2 \gset
SELECT is((SELECT status FROM outreach.social_post WHERE id = :p1), 'draft', 'a post without a time is a draft');
SELECT is((SELECT status FROM outreach.social_post WHERE id = :p2), 'scheduled', 'a post with a time is scheduled');
SELECT ok((SELECT sentiment > 0 FROM outreach.social_post WHERE id = :p1), 'a post gets its sentiment');
SELECT is((SELECT count(*) FROM outreach.social_posts_due('2026-03-03 09:00+00')), 0::bigint, 'nothing due before its time');
SELECT is((SELECT array_agg(id) FROM outreach.social_posts_due('2026-03-03 10:00+00')), ARRAY[:p2]::bigint[], 'due at its time');
SELECT lives_ok(format('SELECT outreach.schedule_social_post(%s, %L)', :p1, '2026-03-02 10:00+00'), 'a draft can be scheduled');
SELECT outreach.report_social_post(:p1, 'published', 'fb_1001', '2026-03-02 10:00+00');
SELECT outreach.report_social_post(:p2, 'failed', detail => 'token expired');
SELECT is((SELECT status || '/' || external_id FROM outreach.social_post WHERE id = :p1), 'published/fb_1001', 'published with the network id');
SELECT is((SELECT status || '/' || detail FROM outreach.social_post WHERE id = :p2), 'failed/token expired', 'failed with the detail');
SELECT throws_ok(format('SELECT outreach.report_social_post(%s, %L, %L)', :p1, 'published', 'fb_2'), '55000', NULL,
                 'a published post cannot be published again');
SELECT throws_ok(format('SELECT outreach.report_social_post(%s, %L)', :p2, 'published'), '22004', NULL,
                 'published needs the network id');
SELECT throws_ok(format('SELECT outreach.report_social_post(%s, %L)', :p2, 'deleted'), '22023', NULL, 'unknown result');
SELECT throws_ok('SELECT outreach.report_social_post(-1, ''failed'')', 'P0002', NULL, 'unknown post');
SELECT throws_ok('SELECT outreach.create_social_post(''myspace'', ''a'', ''b'')', '23514', NULL, 'unknown channel');
SELECT throws_ok('SELECT outreach.create_social_post(''x'', ''a'', '''')', '22004', NULL, 'a post needs text or media');
SELECT throws_ok(format('SELECT outreach.schedule_social_post(%s, NULL)', :p2), '22004', NULL, 'scheduling needs a time');
SELECT throws_ok(format('SELECT outreach.schedule_social_post(%s, now())', :p1), '55000', NULL, 'a published post is not rescheduled');

-- Engagement.
SELECT outreach.record_social_engagement(:p1, 'like', 12);
SELECT outreach.record_social_engagement('facebook', 'fb_1001', 'share', 3);
SELECT outreach.record_social_engagement(:p1, 'comment', body => 'Great, thank you!', author => 'ann', external_id => 'c1') AS c1 \gset
SELECT is(outreach.record_social_engagement(:p1, 'comment', body => 'Great, thank you!', author => 'ann', external_id => 'c1'),
          :c1::bigint, 'a repeated report (same external id) is recorded once');
SELECT outreach.record_social_engagement(:p1, 'reply', body => 'The wait last time was terrible and the staff rude', external_id => 'r1');
SELECT outreach.record_social_engagement(:p1, 'reply', body => 'Not helpful at all', external_id => 'r2');
SELECT outreach.record_social_engagement(:p1, 'reply', body => 'See you there', external_id => 'r3');
SELECT throws_ok(format('SELECT outreach.record_social_engagement(%s, %L)', :p2, 'like'), '55000', NULL, 'no engagement on an unpublished post');
SELECT throws_ok(format('SELECT outreach.record_social_engagement(%s, %L)', :p1, 'dislike'), '22023', NULL, 'unknown kind');
SELECT throws_ok(format('SELECT outreach.record_social_engagement(%s, %L)', :p1, 'reply'), '22004', NULL, 'a reply needs text');
SELECT throws_ok(format('SELECT outreach.record_social_engagement(%s, %L, 0)', :p1, 'like'), '22023', NULL, 'a count is positive');
SELECT throws_ok('SELECT outreach.record_social_engagement(''x'', ''nope'', ''like'')', 'P0002', NULL, 'unknown network id');

SELECT results_eq(
  'SELECT channel, week, posts, likes, shares, comments, replies, engagement FROM outreach.social_overview',
  $$VALUES ('facebook'::text, date '2026-03-02', 1::bigint, 12::bigint, 3::bigint, 1::bigint, 3::bigint, 19::bigint)$$,
  'social_overview: posts and engagement per channel and week');
SELECT is((SELECT most_negative_replies FROM outreach.social_overview),
          ARRAY['The wait last time was terrible and the staff rude', 'Not helpful at all'],
          'social_overview lists the most negative replies, worst first');
SELECT ok((SELECT avg_reply_sentiment < 0 AND avg_post_sentiment > 0 FROM outreach.social_overview),
          'average sentiment of posts and of replies');

SELECT * FROM finish();
ROLLBACK;
