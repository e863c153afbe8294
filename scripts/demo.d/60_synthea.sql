-- Demo section: importing Synthea CSV exports, care-gap segments from templates.
\echo
\echo '== 6. Importing real-shaped data: a Synthea sample =='
\ir ../../data/synthea-sample/demo.sql
