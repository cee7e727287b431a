DROP TABLE instance_size_stats;
DROP TABLE database_size_stats;
DROP TABLE instance_databases;
DROP TABLE instances;
