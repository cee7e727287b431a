DROP TABLE database_aggregate_counts;
DROP TABLE aggregate_period_counts;
