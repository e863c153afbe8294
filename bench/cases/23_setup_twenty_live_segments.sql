-- setup (run once, not timed): 19 more live segments on condition, 20 in all.
SELECT count(*) FROM (
  SELECT outreach.create_segment(format('bench %s', i), format(
           'contact where status = ''active'' and age >= %s and has condition where code in (''38101003'', ''44054006'', ''59621000'')', i)::outreach.segment_query),
         outreach.go_live(format('bench %s', i))
  FROM generate_series(1, 19) AS i) s;
