//! Test support shared by the property tests, the corpus replay test and the
//! fuzz targets (which include these files with `#[path]`).

#![allow(dead_code)]

pub mod harness;
pub mod ops;
