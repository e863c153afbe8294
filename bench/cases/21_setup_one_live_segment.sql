-- setup (run once, not timed): the seed segment goes live.
SELECT outreach.create_segment('bench seed', 'contact where status = ''active'' and has condition where description contains ''Hypermetropia''');
SELECT outreach.go_live('bench seed');
