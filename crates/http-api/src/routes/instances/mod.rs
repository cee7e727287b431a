//! Monitored instances and the options of the filter boxes: the inventory of instances
//! (`inventory`) and the checks of their bodies (`input`), the filter-box options
//! (`options`), database capacity limits (`capacity_limit`) and collect now (`collection`).

mod capacity_limit;
mod collection;
mod input;
mod inventory;
mod options;

pub use capacity_limit::set_database_capacity_limit;
pub use collection::collect_instance;
pub use inventory::{
    InstanceQuery, create_instance, delete_instance, get_instance, list_instances, update_instance,
};
pub use options::{DatabaseOptionsQuery, OptionsQuery, database_options, instance_options};
