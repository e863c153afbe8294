-- baseline: 10_seed_segment_sql
-- The seed exercise through the segment language: compile and run, outreach.evaluate.
SELECT count(*) FROM outreach.evaluate('contact where status = ''active'' and has condition where description contains ''Hypermetropia''');
