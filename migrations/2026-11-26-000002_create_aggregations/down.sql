DROP TABLE aggregation_ledger;
DROP TABLE instance_size_aggregations;
DROP TABLE database_size_aggregations;
