//! Joins diesel cannot infer from the schema: the aggregation tables have no foreign key to
//! `instances` (they are derived data; see the migration), but reads join them.

use crate::schema::{database_size_aggregations, instance_size_aggregations, instances};

diesel::joinable!(database_size_aggregations -> instances (instance_id));
diesel::joinable!(instance_size_aggregations -> instances (instance_id));
