-- Demo section: the entity registry (dataset configuration).
\echo
\echo '== 2. What segments can use: the entity registry =='
\echo 'Registered entities (built in; your own tables join with outreach.register_entity):'
SELECT entity, table_name, link_column, link_entity, time_column, links FROM outreach.entity_overview ORDER BY entity;
\echo
\echo 'A few fields of condition, with types and allowed values (outreach.entity_field):'
SELECT field, data_type, links_to, is_time_column, allowed_values
FROM outreach.entity_field WHERE entity = 'condition' AND field IN ('patient_id','code','description','clinical_status','onset_date','encounter_id')
ORDER BY position;
