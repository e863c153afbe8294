-- 62_experiments: preferred-channel send steps and A/B(/n) experiment steps of journeys
-- (issue 18 items 4 and 6).  Owns: the 'message' and 'experiment' step kinds (their columns
-- on journey_step, outreach.journey_experiment), add_channel_step, add_experiment_step, the
-- tick's choice of template for those steps (_journey_chosen, _journey_held, called from
-- _journey_run_batch in 60_journeys), the decision (_experiment_decide), the statistics
-- helpers and the outreach.experiment_results view.  See docs/journeys.md.

-- Two more step kinds: 'message' sends on the contact's preferred channel with a fallback
-- order, 'experiment' sends one of several variants and then the winner.
ALTER TABLE outreach.journey_step DROP CONSTRAINT journey_step_kind_allowed;
ALTER TABLE outreach.journey_step ADD CONSTRAINT journey_step_kind_allowed
  CHECK (outreach.allowed_value(kind, 'journey_step.kind',
    '{email,sms,letter,message,experiment,wait,wait_until,branch_interaction,branch_segment,split,add_to_segment,remove_from_segment,subscribe,unsubscribe,end}'));
ALTER TABLE outreach.journey_step ADD COLUMN channel_templates jsonb;
ALTER TABLE outreach.journey_step ADD COLUMN channel_order text[];
COMMENT ON COLUMN outreach.journey_step.channel_templates IS
  'message steps: one template per channel, e.g. {"email": "t1", "sms": "t2"}';
COMMENT ON COLUMN outreach.journey_step.channel_order IS
  'message steps: the fallback order after the contact''s preferred channel (default email, sms, letter)';

CREATE TABLE outreach.journey_experiment (
  step_id         bigint PRIMARY KEY REFERENCES outreach.journey_step ON DELETE CASCADE,
  journey_id      bigint NOT NULL REFERENCES outreach.journey ON DELETE CASCADE,
  variants        text[] NOT NULL,
  templates       text[] NOT NULL,
  test_percent    numeric NOT NULL,
  metric          text NOT NULL CONSTRAINT journey_experiment_metric_allowed
                    CHECK (outreach.allowed_value(metric, 'journey_experiment.metric', '{opened,clicked,conversion}')),
  conversion_segment text,
  metric_window   interval NOT NULL,
  min_sample      int NOT NULL,
  confidence      numeric NOT NULL,
  decide_within   interval NOT NULL,
  default_variant text NOT NULL,
  started_at      timestamptz,
  decided_at      timestamptz,
  winner          text,
  decision        text CONSTRAINT journey_experiment_decision_allowed
                    CHECK (outreach.allowed_value(decision, 'journey_experiment.decision', '{winner,no winner}')),
  CONSTRAINT journey_experiment_variants_match CHECK (cardinality(variants) = cardinality(templates) AND cardinality(variants) >= 2),
  CONSTRAINT journey_experiment_decided CHECK ((decided_at IS NULL) = (decision IS NULL) AND (decision IS NULL) = (winner IS NULL))
);
CREATE INDEX ON outreach.journey_experiment (journey_id);
SELECT outreach._dump('outreach.journey_experiment');
COMMENT ON TABLE outreach.journey_experiment IS
  'The experiment of each experiment step: variants (template each), test share, metric, decision rule and the decision';

COMMENT ON COLUMN outreach.journey_experiment.step_id IS 'The experiment step (journey_step.id)';
COMMENT ON COLUMN outreach.journey_experiment.journey_id IS 'The journey of the step';
COMMENT ON COLUMN outreach.journey_experiment.variants IS 'Variant names, in order (sorted by name)';
COMMENT ON COLUMN outreach.journey_experiment.templates IS 'The template of each variant, in the order of variants';
COMMENT ON COLUMN outreach.journey_experiment.test_percent IS 'Share of enrollments (percent) that get a variant; the rest wait for the winner';
COMMENT ON COLUMN outreach.journey_experiment.metric IS 'opened (a click counts), clicked, or conversion (joining conversion_segment)';
COMMENT ON COLUMN outreach.journey_experiment.conversion_segment IS 'conversion metric: the segment whose join counts as a conversion';
COMMENT ON COLUMN outreach.journey_experiment.metric_window IS 'How long after a test message its success is counted; it is observed once the window has passed';
COMMENT ON COLUMN outreach.journey_experiment.min_sample IS 'Observed test messages every variant needs before a decision';
COMMENT ON COLUMN outreach.journey_experiment.confidence IS 'Confidence level of the z-test (Bonferroni-corrected over the n - 1 comparisons) and of the Wilson intervals';
COMMENT ON COLUMN outreach.journey_experiment.decide_within IS 'Deadline after started_at: without a winner by then, the decision is no winner';
COMMENT ON COLUMN outreach.journey_experiment.default_variant IS 'What the held audience gets when no variant wins';
COMMENT ON COLUMN outreach.journey_experiment.started_at IS 'When the first enrollment reached the step';
COMMENT ON COLUMN outreach.journey_experiment.decided_at IS 'When the decision was made';
COMMENT ON COLUMN outreach.journey_experiment.winner IS 'The variant the held audience gets (the winner, or the default variant)';
COMMENT ON COLUMN outreach.journey_experiment.decision IS 'winner or no winner (NULL while undecided)';

-- Statistics -------------------------------------------------------------------------------

-- The standard normal distribution function, Phi(z) = erfc(-z / sqrt 2) / 2, with the
-- erfc approximation 7.1.26 of Abramowitz and Stegun (absolute error below 1.5e-7).
CREATE FUNCTION outreach._normal_cdf(z float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  x float8 := abs(z) / sqrt(2.0);
  t float8 := 1.0 / (1.0 + 0.3275911 * x);
  erfc float8 := t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
                 * exp(-x * x);
BEGIN
  RETURN CASE WHEN z >= 0 THEN 1.0 - erfc / 2.0 ELSE erfc / 2.0 END;
END $$;

-- The quantile of the standard normal distribution (bisection on _normal_cdf to 1e-9).
CREATE FUNCTION outreach._normal_quantile(p float8) RETURNS float8
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  lo float8 := -10;
  hi float8 := 10;
  mid float8;
BEGIN
  IF p <= 0 OR p >= 1 THEN
    RAISE EXCEPTION 'normal quantile needs a probability strictly between 0 and 1, not %', p
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  WHILE hi - lo > 1e-9 LOOP
    mid := (lo + hi) / 2;
    IF outreach._normal_cdf(mid) < p THEN lo := mid; ELSE hi := mid; END IF;
  END LOOP;
  RETURN (lo + hi) / 2;
END $$;

-- Wilson score interval of x successes in n trials at the confidence level.
CREATE FUNCTION outreach._wilson(x bigint, n bigint, confidence numeric, OUT low float8, OUT high float8)
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  z float8;
  p float8;
  centre float8;
  half float8;
BEGIN
  IF n IS NULL OR n = 0 THEN RETURN; END IF;
  z := outreach._normal_quantile(1 - (1 - confidence::float8) / 2);
  p := x::float8 / n;
  centre := (p + z * z / (2 * n)) / (1 + z * z / n);
  half := z / (1 + z * z / n) * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n));
  low := greatest(0, centre - half);
  high := least(1, centre + half);
END $$;

-- Two-sided p-value of the two-proportion z-test (pooled variance); 1 when undefined.
CREATE FUNCTION outreach._two_proportion_p(x1 bigint, n1 bigint, x2 bigint, n2 bigint) RETURNS float8
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p float8;
  se float8;
BEGIN
  IF coalesce(n1, 0) = 0 OR coalesce(n2, 0) = 0 THEN RETURN 1; END IF;
  p := (x1 + x2)::float8 / (n1 + n2);
  se := sqrt(p * (1 - p) * (1.0 / n1 + 1.0 / n2));
  IF se = 0 THEN RETURN 1; END IF;
  RETURN 2 * (1 - outreach._normal_cdf(abs(x1::float8 / n1 - x2::float8 / n2) / se));
END $$;

-- Which arm an enrollment is in at an experiment step: 1..n (a test variant), or NULL (the
-- held audience that waits for the winner).  Deterministic, so a retried tick agrees.
CREATE FUNCTION outreach._experiment_arm(enrollment_id bigint, step_key text, test_percent numeric, n int) RETURNS int
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN (hashtext($1::text || '/' || $2)::bigint + 2147483648) % 10000 < $3 * 100
              THEN 1 + ((hashtext($2 || '#' || $1::text)::bigint + 2147483648) % $4)::int END
$$;

-- Each variant's test messages, how many are observed (their metric window has passed) and
-- how many of those succeeded (opened -- a click counts as an open --, clicked, or the
-- contact joined the conversion segment within the window).  Suppressed, failed and
-- bounced messages are not in the sample.  Reads every message of the step: the ordinary
-- planner settings, not the tick's pins to index lookups; no JIT (it is called per tick and
-- variant, and its cost estimate under the tick's pins would compile it every call).
CREATE FUNCTION outreach._experiment_counts(step_id bigint, at timestamptz)
RETURNS TABLE (variant_no int, variant text, template text, assigned bigint, sent bigint, observed bigint, successes bigint)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET jit = off
  SET enable_seqscan = on SET enable_hashjoin = on SET enable_mergejoin = on SET enable_material = on AS $$
  SELECT v.i::int, v.name, v.template,
         count(m.id),
         count(m.id) FILTER (WHERE m.status NOT IN ('suppressed', 'failed', 'bounced')),
         count(m.id) FILTER (WHERE m.status NOT IN ('suppressed', 'failed', 'bounced') AND m.created_at + x.metric_window <= $2),
         count(m.id) FILTER (WHERE m.status NOT IN ('suppressed', 'failed', 'bounced') AND m.created_at + x.metric_window <= $2
           AND CASE x.metric
                 WHEN 'conversion' THEN EXISTS (
                   SELECT 1 FROM outreach.segment_change sc JOIN outreach.segment sg ON sg.id = sc.segment_id
                    WHERE sg.name = x.conversion_segment AND sc.contact_id = m.contact_id AND sc.change = 'added'
                      AND sc.changed_at >= m.created_at AND sc.changed_at <= m.created_at + x.metric_window)
                 ELSE EXISTS (
                   SELECT 1 FROM outreach.interaction i
                    WHERE i.message_id = m.id AND i.occurred_at <= m.created_at + x.metric_window
                      AND i.kind = ANY (CASE x.metric WHEN 'opened' THEN ARRAY['opened', 'clicked'] ELSE ARRAY['clicked'] END))
               END)
    FROM outreach.journey_experiment x
    JOIN outreach.journey_step s ON s.id = x.step_id
    CROSS JOIN LATERAL unnest(x.variants, x.templates) WITH ORDINALITY v(name, template, i)
    LEFT JOIN outreach.message m ON m.step_id = x.step_id
          AND outreach._experiment_arm(m.enrollment_id, s.key, x.test_percent, cardinality(x.variants)) = v.i
   WHERE x.step_id = $1
   GROUP BY v.i, v.name, v.template
   ORDER BY v.i
$$;

-- The decision rule, for each undecided experiment step among the given enrollments' steps.
-- Once every variant has min_sample observed messages, the variant with the best rate wins
-- when a two-sided two-proportion z-test against each other variant has a p-value below
-- (1 - confidence) / (n - 1) (Bonferroni over the n - 1 comparisons).  At the deadline
-- (started_at + decide_within) without a winner the decision is 'no winner' and the held
-- audience gets the default variant.  Decided once; later ticks keep the decision.
CREATE FUNCTION outreach._experiment_decide(ids bigint[], at timestamptz) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
DECLARE
  x outreach.journey_experiment;
  best record;
  other record;
  alpha float8;
  wins boolean;
BEGIN
  UPDATE outreach.journey_experiment ex SET started_at = at
   WHERE ex.started_at IS NULL AND ex.step_id IN (
     SELECT s.id FROM outreach.enrollment e JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
      WHERE e.id = ANY (ids) AND s.kind = 'experiment');
  FOR x IN SELECT ex.* FROM outreach.journey_experiment ex
            WHERE ex.decided_at IS NULL AND ex.step_id IN (
              SELECT s.id FROM outreach.enrollment e
                JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
               WHERE e.id = ANY (ids) AND s.kind = 'experiment')
            ORDER BY ex.step_id FOR UPDATE LOOP
    wins := false;
    IF NOT EXISTS (SELECT 1 FROM outreach._experiment_counts(x.step_id, at) c WHERE c.observed < x.min_sample) THEN
      alpha := (1 - x.confidence::float8) / (cardinality(x.variants) - 1);
      SELECT * INTO best FROM outreach._experiment_counts(x.step_id, at) c
       ORDER BY c.successes::float8 / c.observed DESC, c.variant_no LIMIT 1;
      wins := true;
      FOR other IN SELECT * FROM outreach._experiment_counts(x.step_id, at) c WHERE c.variant_no <> best.variant_no LOOP
        IF other.successes::float8 / other.observed >= best.successes::float8 / best.observed
           OR outreach._two_proportion_p(best.successes, best.observed, other.successes, other.observed) >= alpha THEN
          wins := false;
        END IF;
      END LOOP;
    END IF;
    IF wins THEN
      UPDATE outreach.journey_experiment SET decided_at = at, winner = best.variant, decision = 'winner'
       WHERE step_id = x.step_id;
    ELSIF at >= x.started_at + x.decide_within THEN
      UPDATE outreach.journey_experiment SET decided_at = at, winner = x.default_variant, decision = 'no winner'
       WHERE step_id = x.step_id;
    END IF;
  END LOOP;
END $$;

-- The message requests of the given enrollments at 'message' and 'experiment' steps:
--  * message: the first channel in (preferred channel, then channel_order) that has a
--    template in channel_templates and on which the contact is reachable and consents
--    (outreach._consent: address, opt-outs, list, caps); when there is none, the first
--    candidate channel, which _enqueue_batch stores suppressed with its reason;
--  * experiment: the test arms get their variant's template, the held audience the winner's
--    once decided (until then they wait: _journey_held).
CREATE FUNCTION outreach._journey_chosen(ids bigint[], at timestamptz) RETURNS SETOF outreach.message_request
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  RETURN QUERY SELECT (u.r).* FROM (
  SELECT ROW(e.id, s.id, j.id, e.contact_id,
             coalesce((SELECT cand.tpl FROM (
                         SELECT ch.channel, s.channel_templates ->> ch.channel AS tpl, ch.ord
                           FROM unnest(ARRAY[c.preferred_channel] || coalesce(s.channel_order, '{email,sms,letter}'))
                                  WITH ORDINALITY ch(channel, ord)
                          WHERE s.channel_templates ? ch.channel) cand
                        JOIN outreach.template t ON t.name = cand.tpl
                        LEFT JOIN outreach.subscription_list l ON l.name = j.subscription_list
                       WHERE (outreach._consent(c, cand.channel, t.message_class, l.id, at)).reason IS NULL
                       ORDER BY cand.ord LIMIT 1),
                      (SELECT s.channel_templates ->> ch.channel
                         FROM unnest(ARRAY[c.preferred_channel] || coalesce(s.channel_order, '{email,sms,letter}'))
                                WITH ORDINALITY ch(channel, ord)
                        WHERE s.channel_templates ? ch.channel ORDER BY ch.ord LIMIT 1)),
             j.message_class, j.subscription_list)::outreach.message_request AS r
    FROM outreach.enrollment e
    JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
    JOIN outreach.journey j ON j.id = e.journey_id
    JOIN outreach.contact c ON c.id = e.contact_id
   WHERE e.id = ANY (ids) AND s.kind = 'message'
  UNION ALL
  SELECT ROW(e.id, s.id, j.id, e.contact_id,
             CASE WHEN a.arm IS NOT NULL THEN x.templates[a.arm]
                  ELSE x.templates[array_position(x.variants, x.winner)] END,
             j.message_class, j.subscription_list)::outreach.message_request
    FROM outreach.enrollment e
    JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
    JOIN outreach.journey j ON j.id = e.journey_id
    JOIN outreach.journey_experiment x ON x.step_id = s.id
    CROSS JOIN LATERAL (SELECT outreach._experiment_arm(e.id, s.key, x.test_percent, cardinality(x.variants)) AS arm) a
   WHERE e.id = ANY (ids) AND s.kind = 'experiment' AND (a.arm IS NOT NULL OR x.winner IS NOT NULL)) u;
END $$;

-- First the decisions, then: the held audience of undecided experiments waits, looked at
-- again in an hour, or at the deadline when that is sooner.  The tick calls this before
-- _journey_chosen.
CREATE FUNCTION outreach._journey_held(ids bigint[], at timestamptz) RETURNS SETOF outreach.journey_decision
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp SET jit = off AS $$
BEGIN
  PERFORM outreach._experiment_decide(ids, at);
  RETURN QUERY SELECT (u.d).* FROM (
  SELECT ROW(e.id, e.journey_id, s.id, s.key, 'experiment', NULL, NULL, NULL,
             CASE WHEN x.started_at + x.decide_within > at
                  THEN least(at + interval '1 hour', x.started_at + x.decide_within) ELSE at + interval '1 hour' END,
             NULL)::outreach.journey_decision AS d
    FROM outreach.enrollment e
    JOIN outreach.journey_step s ON s.journey_id = e.journey_id AND s.key = e.current_step
    JOIN outreach.journey_experiment x ON x.step_id = s.id
   WHERE e.id = ANY (ids) AND s.kind = 'experiment' AND x.winner IS NULL
     AND outreach._experiment_arm(e.id, s.key, x.test_percent, cardinality(x.variants)) IS NULL) u;
END $$;

-- API ----------------------------------------------------------------------------------------

CREATE FUNCTION outreach._check_step_template(template text, channel text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ch text;
BEGIN
  SELECT t.channel INTO ch FROM outreach.template t WHERE t.name = template;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'template "%" does not exist', template USING ERRCODE = 'undefined_object',
      HINT = 'Create it with outreach.create_template(); outreach.template lists the templates.';
  END IF;
  IF channel IS NOT NULL AND ch <> channel THEN
    RAISE EXCEPTION 'template "%" is for %, not %', template, ch, channel USING ERRCODE = 'invalid_parameter_value',
      HINT = 'Name one template per channel, each made for that channel.';
  END IF;
END $$;

-- A send step on the contact's preferred channel, falling back along fallback.
CREATE FUNCTION outreach.add_channel_step(journey text, key text, templates jsonb,
                                          fallback text[] DEFAULT '{email,sms,letter}', next text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  sid bigint;
  ch text;
BEGIN
  IF templates IS NULL OR jsonb_typeof(templates) <> 'object' OR templates = '{}' THEN
    RAISE EXCEPTION 'a message step needs one template per channel' USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'templates must be a JSON object such as {"email": "welcome_email", "sms": "welcome_sms"}.';
  END IF;
  FOR ch IN SELECT k FROM jsonb_object_keys(templates) k LOOP
    IF ch NOT IN ('email', 'sms', 'letter') THEN
      RAISE EXCEPTION 'unknown channel "%" in the templates of step "%"', ch, key USING ERRCODE = 'invalid_parameter_value',
        DETAIL = 'Allowed channels are: email, sms, letter.';
    END IF;
    IF jsonb_typeof(templates -> ch) <> 'string' THEN
      RAISE EXCEPTION 'the % template of step "%" must be a template name', ch, key USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM outreach._check_step_template(templates ->> ch, ch);
  END LOOP;
  IF fallback IS NULL OR EXISTS (SELECT 1 FROM unnest(fallback) f WHERE f IS NULL OR f NOT IN ('email', 'sms', 'letter')) THEN
    RAISE EXCEPTION 'invalid fallback order %', coalesce(fallback::text, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'The fallback order lists channels among email, sms, letter.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM unnest(fallback) f WHERE templates ? f) THEN
    RAISE EXCEPTION 'the fallback order of step "%" names no channel with a template', key
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A contact without a preferred channel (or one without a template) would have no message.',
            HINT = 'Put at least one channel of templates in fallback.';
  END IF;
  sid := outreach.add_step(journey, key, 'message', next => next);
  UPDATE outreach.journey_step SET channel_templates = templates, channel_order = fallback WHERE id = sid;
  RETURN sid;
END $$;
COMMENT ON FUNCTION outreach.add_channel_step(text, text, jsonb, text[], text) IS
  'Add a send step that uses the contact''s preferred channel, then the fallback order, honouring consent on each; one template per channel';

-- An A/B(/n) experiment step.
CREATE FUNCTION outreach.add_experiment_step(journey text, key text, variants jsonb, test_percent numeric,
                                             metric text DEFAULT 'opened', metric_window interval DEFAULT '3 days',
                                             min_sample int DEFAULT 100, confidence numeric DEFAULT 0.95,
                                             decide_within interval DEFAULT '14 days', default_variant text DEFAULT NULL,
                                             conversion_segment text DEFAULT NULL, next text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  sid bigint;
  names text[];
  tpls text[];
  v text;
BEGIN
  IF variants IS NULL OR jsonb_typeof(variants) <> 'object'
     OR (SELECT count(*) FROM jsonb_object_keys(variants)) < 2 THEN
    RAISE EXCEPTION 'an experiment step needs at least two variants' USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'variants must be a JSON object of variant name to template, such as {"a": "offer_a", "b": "offer_b"}.';
  END IF;
  SELECT array_agg(k ORDER BY k), array_agg(variants ->> k ORDER BY k) INTO names, tpls FROM jsonb_object_keys(variants) k;
  FOREACH v IN ARRAY names LOOP
    IF jsonb_typeof(variants -> v) <> 'string' THEN
      RAISE EXCEPTION 'variant "%" of step "%" must name a template', v, key USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM outreach._check_step_template(variants ->> v, NULL);
  END LOOP;
  IF test_percent IS NULL OR test_percent <= 0 OR test_percent > 100 THEN
    RAISE EXCEPTION 'an experiment step needs a test_percent above 0 and at most 100' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'The test share gets the variants; the rest waits for the winner (100: no one waits).';
  END IF;
  IF metric IS NULL OR metric NOT IN ('opened', 'clicked', 'conversion') THEN
    RAISE EXCEPTION 'invalid experiment metric "%"', coalesce(metric, 'NULL') USING ERRCODE = 'invalid_parameter_value',
      DETAIL = 'Allowed metrics are: opened, clicked, conversion.';
  END IF;
  IF (metric = 'conversion') <> (conversion_segment IS NOT NULL) THEN
    RAISE EXCEPTION 'the conversion metric, and only it, takes a conversion_segment' USING ERRCODE = 'invalid_parameter_value',
      HINT = 'A conversion is the contact joining conversion_segment within the metric window of the message.';
  END IF;
  IF conversion_segment IS NOT NULL AND NOT EXISTS (SELECT 1 FROM outreach.segment sg WHERE sg.name = conversion_segment) THEN
    RAISE EXCEPTION 'segment "%" does not exist', conversion_segment USING ERRCODE = 'undefined_object';
  END IF;
  IF metric_window IS NULL OR metric_window <= interval '0' OR decide_within IS NULL OR decide_within <= interval '0' THEN
    RAISE EXCEPTION 'metric_window and decide_within must be positive intervals' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF min_sample IS NULL OR min_sample < 1 THEN
    RAISE EXCEPTION 'min_sample must be at least 1' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF confidence IS NULL OR confidence <= 0.5 OR confidence >= 1 THEN
    RAISE EXCEPTION 'confidence must be between 0.5 and 1 (exclusive), e.g. 0.95' USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF default_variant IS NOT NULL AND NOT default_variant = ANY (names) THEN
    RAISE EXCEPTION 'default variant "%" is not one of the variants', default_variant USING ERRCODE = 'invalid_parameter_value',
      DETAIL = format('The variants are: %s.', array_to_string(names, ', '));
  END IF;
  sid := outreach.add_step(journey, key, 'experiment', next => next);
  INSERT INTO outreach.journey_experiment (step_id, journey_id, variants, templates, test_percent, metric, conversion_segment,
                                           metric_window, min_sample, confidence, decide_within, default_variant)
  SELECT sid, s.journey_id, names, tpls, test_percent, metric, conversion_segment, metric_window, min_sample, confidence,
         decide_within, coalesce(default_variant, names[1])
    FROM outreach.journey_step s WHERE s.id = sid;
  RETURN sid;
END $$;
COMMENT ON FUNCTION outreach.add_experiment_step(text, text, jsonb, numeric, text, interval, int, numeric, interval, text, text, text) IS
  'Add an A/B(/n) experiment step: variants (name -> template) for a test share, a metric, and the decision rule; the rest gets the winner';

CREATE VIEW outreach.experiment_results AS
SELECT j.name AS journey, s.key AS step, x.metric, c.variant, c.template, c.assigned, c.sent, c.observed, c.successes,
       CASE WHEN c.observed > 0 THEN round(c.successes::numeric / c.observed, 4) END AS rate,
       round(w.low::numeric, 4) AS ci_low, round(w.high::numeric, 4) AS ci_high, x.confidence,
       coalesce(x.decision, 'undecided') AS decision,
       x.winner IS NOT NULL AND c.variant = x.winner AS chosen,
       x.winner, x.decided_at
  FROM outreach.journey_experiment x
  JOIN outreach.journey_step s ON s.id = x.step_id
  JOIN outreach.journey j ON j.id = x.journey_id
  CROSS JOIN LATERAL outreach._experiment_counts(x.step_id, outreach.now()) c
  CROSS JOIN LATERAL outreach._wilson(c.successes, c.observed, x.confidence) w;
COMMENT ON VIEW outreach.experiment_results IS
  'Each experiment variant: test messages, observed, successes, rate, Wilson interval, and the decision (winner, no winner, undecided)';

COMMENT ON COLUMN outreach.experiment_results.journey IS 'Journey name';
COMMENT ON COLUMN outreach.experiment_results.step IS 'Step key';
COMMENT ON COLUMN outreach.experiment_results.metric IS 'The experiment metric';
COMMENT ON COLUMN outreach.experiment_results.variant IS 'Variant name';
COMMENT ON COLUMN outreach.experiment_results.template IS 'The variants template';
COMMENT ON COLUMN outreach.experiment_results.assigned IS 'Test messages of the variant';
COMMENT ON COLUMN outreach.experiment_results.sent IS 'Test messages not suppressed, failed or bounced';
COMMENT ON COLUMN outreach.experiment_results.observed IS 'Sent test messages whose metric window has passed (the sample)';
COMMENT ON COLUMN outreach.experiment_results.successes IS 'Observed messages that succeeded on the metric';
COMMENT ON COLUMN outreach.experiment_results.rate IS 'successes / observed';
COMMENT ON COLUMN outreach.experiment_results.ci_low IS 'Lower end of the Wilson score interval of the rate';
COMMENT ON COLUMN outreach.experiment_results.ci_high IS 'Upper end of the Wilson score interval of the rate';
COMMENT ON COLUMN outreach.experiment_results.confidence IS 'Confidence level of the interval and the test';
COMMENT ON COLUMN outreach.experiment_results.decision IS 'winner, no winner or undecided';
COMMENT ON COLUMN outreach.experiment_results.chosen IS 'This variant is what the held audience gets';
COMMENT ON COLUMN outreach.experiment_results.winner IS 'The chosen variant (winner or default)';
COMMENT ON COLUMN outreach.experiment_results.decided_at IS 'When the decision was made';

REVOKE ALL ON FUNCTION outreach._normal_cdf(float8), outreach._normal_quantile(float8),
  outreach._wilson(bigint, bigint, numeric), outreach._two_proportion_p(bigint, bigint, bigint, bigint),
  outreach._experiment_arm(bigint, text, numeric, int), outreach._experiment_counts(bigint, timestamptz),
  outreach._experiment_decide(bigint[], timestamptz), outreach._journey_chosen(bigint[], timestamptz),
  outreach._journey_held(bigint[], timestamptz), outreach._check_step_template(text, text),
  outreach.add_channel_step(text, text, jsonb, text[], text),
  outreach.add_experiment_step(text, text, jsonb, numeric, text, interval, int, numeric, interval, text, text, text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outreach.add_channel_step(text, text, jsonb, text[], text),
  outreach.add_experiment_step(text, text, jsonb, numeric, text, interval, int, numeric, interval, text, text, text)
  TO outreach_admin, outreach_marketer;
-- experiment_results runs with its reader's rights (98_access): the marketer reads it.
GRANT EXECUTE ON FUNCTION outreach._normal_cdf(float8), outreach._normal_quantile(float8),
  outreach._wilson(bigint, bigint, numeric), outreach._experiment_arm(bigint, text, numeric, int),
  outreach._experiment_counts(bigint, timestamptz)
  TO outreach_admin, outreach_marketer;
GRANT SELECT ON outreach.journey_experiment, outreach.experiment_results TO outreach_admin, outreach_marketer;
