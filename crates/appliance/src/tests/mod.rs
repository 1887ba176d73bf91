//! The crate's specification, as tests: the reference devices, one realistic observation per
//! table entry, mappings, manual reports, version normalization, the CSV import, the
//! embedded table itself and, when the NVD sample is present, its agreement with NVD.

mod csv;
mod identify;
mod manual;
mod mapping;
mod normalize;
mod props;
mod table;

use crate::{EntityRow, Observation};

/// An observation with a sysDescr, a sysObjectID and optionally one chassis row.
pub(crate) fn obs(descr: &str, oid: &str, chassis: Option<EntityRow>) -> Observation {
    Observation {
        sys_descr: descr.into(),
        sys_object_id: oid.into(),
        sys_name: "dev".into(),
        entities: chassis.into_iter().collect(),
    }
}

/// A chassis row (class 3) with a model name and a software revision.
pub(crate) fn chassis(model: &str, software: &str) -> EntityRow {
    EntityRow {
        index: 1,
        class: Some(3),
        model_name: model.into(),
        software_rev: software.into(),
        ..Default::default()
    }
}
